"""``adam eval`` (issue 30) on real weights: the embedded SmolLM2 as a transformers
checkpoint, converted to an F16 GGUF and quantized from there to Q8_0 and Q4_K_M, scored
over a real English text that is on every machine that installed this package's
dependencies (transformers' README, in its package metadata). More rounding must cost more: the
perplexity and the divergence from F16 rise from F16 to Q8_0 to Q4_K_M."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

from adam_integrations import InvalidRequestError
from adam_integrations.core.measurements import measurements_of
from adam_integrations.tools import convert, evaluate, quantize

TEXT = importlib.metadata.metadata("transformers").get_payload()


@pytest.fixture(scope="module")
def quantized(smollm2_checkpoint, tmp_path_factory):
    """The SmolLM2 checkpoint converted to F16 (``adam convert``), and quantized from there."""
    folder = tmp_path_factory.mktemp("quantized")
    f16 = convert(smollm2_checkpoint, "f16", output=folder / "smollm2-f16.gguf",
                  progress=False).path
    return {"F16": f16, **{kind: quantize(f16, kind, output=folder / f"smollm2-{kind}.gguf",
                                          progress=False).path
                           for kind in ("Q8_0", "Q4_K_M")}}


def test_more_rounding_costs_more_perplexity_and_divergence(quantized):
    f16, q8, q4 = evaluate([quantized["F16"], quantized["Q8_0"], quantized["Q4_K_M"]], TEXT,
                           reference=quantized["F16"], chunks=1, decode_tokens=8)
    assert [r.quantization for r in (f16, q8, q4)] == ["F16", "Q8_0", "Q4_K_M"]
    assert f16.scored_tokens == 255 and 1 < f16.perplexity < 50  # real text, real model
    assert f16.kl_divergence == pytest.approx(0, abs=1e-6) and f16.top1_agreement == 1.0
    assert f16.perplexity * 0.995 <= q8.perplexity < q4.perplexity
    assert 0 < q8.kl_divergence < q4.kl_divergence
    assert 1.0 > q8.top1_agreement > q4.top1_agreement > 0.5
    assert all(r.prefill_tokens_per_s > 0 and r.decode_tokens_per_s > 0 for r in (f16, q8, q4))
    # kept for the model pick (catalog.selection reads them for the catalog's files)
    kept = measurements_of([quantized["Q8_0"]])[quantized["Q8_0"]][-1]
    assert (kept.quantization, kept.perplexity, kept.backend) == ("Q8_0", q8.perplexity,
                                                                  "llamacpp")
    assert kept.decode_tokens_per_s == q8.decode_tokens_per_s


def test_both_backends_score_the_same_file_alike(chat_gguf_path):
    """The embedded Q4_1 GGUF on llama.cpp (quantized kernels) and on transformers
    (dequantized to bf16): the same perplexity within a few percent."""
    llama, transformers = (evaluate([chat_gguf_path], TEXT, chunks=2, decode_tokens=8,
                                    backend=backend)[0]
                           for backend in ("llamacpp", "huggingface"))
    assert (llama.backend, transformers.backend) == ("llamacpp", "huggingface")
    assert llama.scored_tokens == transformers.scored_tokens
    assert transformers.perplexity == pytest.approx(llama.perplexity, rel=0.05)
    assert transformers.decode_tokens_per_s > 0
    with pytest.raises(InvalidRequestError, match="threads= sets llama"):
        evaluate([chat_gguf_path], TEXT, backend="huggingface", threads=2)


def test_what_cannot_be_evaluated_is_refused(quantized, qwen3):
    with pytest.raises(InvalidRequestError, match="needs at least one chunk"):
        evaluate([quantized["Q8_0"]], "A few words only.")
    with pytest.raises(InvalidRequestError, match="different tokens"):
        evaluate([qwen3.dense_gguf], TEXT, reference=quantized["F16"], chunks=1)
    with pytest.raises(InvalidRequestError, match="not a GGUF file"):
        evaluate([qwen3.dense_folder], TEXT)


HELD_OUT = importlib.metadata.metadata("pydantic").get_payload()
"""Another real English text (pydantic's README): the importance matrix is computed over
``TEXT`` and judged here, on text it has not seen."""


def test_an_importance_matrix_keeps_a_low_bit_quantization_closer(quantized, tmp_path,
                                                                  smollm2_checkpoint):
    from adam_integrations.tools import importance_matrix
    from adam_integrations.tools.imatrix import read_importance_matrix

    matrix = importance_matrix(smollm2_checkpoint, TEXT, output=tmp_path / "m.gguf",
                               chunks=2, progress=False)
    values = read_importance_matrix(matrix.path)
    # every linear layer of the 30 blocks, and the tied embedding llama.cpp multiplies by
    assert matrix.entries == len(values) == 30 * 7 + 1 and matrix.tokens == 1024
    assert values["blk.0.attn_q.weight"].shape == (576,)
    assert values["blk.0.ffn_down.weight"].shape == (1536,)
    assert "token_embd.weight" in values and all((v >= 0).all() for v in values.values())
    with pytest.raises(InvalidRequestError, match="IQ2_XS needs an importance matrix"):
        quantize(quantized["F16"], "IQ2_XS", output=tmp_path / "iq2.gguf")
    plain, weighted = (quantize(quantized["F16"], "Q3_K_S", output=tmp_path / f"{name}.gguf",
                                imatrix=imatrix, progress=False).path
                       for name, imatrix in (("plain", None), ("weighted", matrix.path)))
    plain_result, weighted_result = evaluate([plain, weighted], HELD_OUT,
                                             reference=quantized["F16"], chunks=2,
                                             decode_tokens=4)
    assert weighted_result.kl_divergence < plain_result.kl_divergence
    assert weighted_result.perplexity < plain_result.perplexity


def test_adam_imatrix_writes_a_file_adam_quantize_reads(quantized, tmp_path, capsys,
                                                        smollm2_checkpoint):
    from adam_integrations.cli import main

    text = tmp_path / "text.md"
    text.write_text(TEXT, encoding="utf-8")
    matrix = tmp_path / "m.gguf"
    assert main(["imatrix", str(smollm2_checkpoint), "--text", str(text), "-o", str(matrix),
                 "--chunks", "1", "--context", "128"]) == 0
    assert "211 matrices over 128 tokens" in capsys.readouterr().out
    assert main(["quantize", str(quantized["F16"]), "Q4_0", "-o", str(tmp_path / "q.gguf"),
                 "--imatrix", str(matrix)]) == 0
    assert main(["quantize", str(quantized["F16"]), "Q4_0", "-o", str(tmp_path / "r.gguf"),
                 "--imatrix", str(text)]) == 1
    assert "cannot read the importance matrix" in capsys.readouterr().err


def test_adam_eval_prints_one_table_or_json(quantized, tmp_path, capsys):
    from adam_integrations.cli import main

    text = tmp_path / "text.md"
    text.write_text(TEXT, encoding="utf-8")
    command = ["eval", str(quantized["Q8_0"]), "--text", str(text), "--reference",
               str(quantized["F16"]), "--chunks", "1"]
    assert main([*command, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["quantization"] == "Q8_0" and row["kl_divergence"] > 0
    assert main([*command, "--context", "256"]) == 0  # the table
    table = capsys.readouterr().out
    assert "perplexity" in table and "Q8_0" in table and "chunks of 256" in table
    assert main(["eval", str(quantized["Q8_0"]), "--text", str(tmp_path / "none.md")]) == 1
    assert "cannot read the text" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["adam_integrations.tools.convert",
                                    "adam_integrations.tools.evaluate",
                                    "adam_integrations.tools.imatrix",
                                    "adam_integrations.tools.quantize"])
def test_the_tools_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
