"""``adam convert`` (issue 30): transformers checkpoints written as GGUFs with the gguf
package's writer, run on llama.cpp, and compared token by token with the checkpoint on
transformers (``evaluate(..., reference_backend="huggingface")``): the converted file
must predict the same next-token distribution. Wrong tensor names, a missing reordering
of llama's query/key rows or a misplaced expert would show as a divergence of nats, not
thousandths."""

from __future__ import annotations

import importlib.metadata
import shutil

import pytest

from adam_integrations import InvalidRequestError, ModelManager
from adam_integrations.cli import main
from adam_integrations.core.paths import cache_root
from adam_integrations.core.stores.gguf_header import read_gguf_header
from adam_integrations.core.stores.ollama_store import find_model_blob
from adam_integrations.tools import convert, evaluate

TEXT = importlib.metadata.metadata("transformers").get_payload()


def test_the_qwen3_checkpoint_becomes_the_gguf_llama_cpp_runs_alike(qwen3, tmp_path):
    done = convert(qwen3.dense_folder, "f16", output=tmp_path / "qwen3.gguf", progress=False)
    assert done.file_type == "F16" and done.path.is_file()
    header = read_gguf_header(done.path)
    assert (header.architecture, header.quantization) == ("qwen3", "F16")
    # every setting of the fixture's hand-built GGUF (Qwen3's shape, tokenizer, special
    # tokens, template) is in the converted one; its tokens and merges are checked by
    # evaluate below: llama.cpp must read the text as the checkpoint's tokenizer does
    built = read_gguf_header(qwen3.dense_gguf).metadata
    assert {key: header.metadata.get(key) for key in built
            if key not in ("general.name", "general.file_type")} == {
        key: value for key, value in built.items()
        if key not in ("general.name", "general.file_type")}
    result, = evaluate([done.path], TEXT, reference=qwen3.dense_folder,
                       reference_backend="huggingface", context=128, chunks=1,
                       decode_tokens=4)
    assert result.kl_divergence < 1e-4 and result.top1_agreement > 0.9


def test_a_qwen3_moe_checkpoint_converts_with_its_experts_stacked(qwen3, tmp_path):
    import torch
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    torch.manual_seed(0)
    folder = tmp_path / "qwen3-moe"
    config = Qwen3MoeConfig(vocab_size=151_936, hidden_size=32, intermediate_size=64,
                            moe_intermediate_size=32, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, head_dim=128,
                            num_experts=4, num_experts_per_tok=2, norm_topk_prob=True,
                            tie_word_embeddings=False)
    Qwen3MoeForCausalLM(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(qwen3.dense_folder / name, folder / name)
    done = convert(folder, "q8_0", output=tmp_path / "moe.gguf", progress=False)
    assert read_gguf_header(done.path).architecture == "qwen3moe"
    assert read_gguf_header(done.path).field("expert_count") == 4
    result, = evaluate([done.path], TEXT, reference=folder, reference_backend="huggingface",
                       context=128, chunks=1, decode_tokens=4)
    assert result.kl_divergence < 1e-3 and result.top1_agreement > 0.9


def test_the_smollm2_checkpoint_converts_to_what_it_computes(smollm2_checkpoint, tmp_path):
    """Real weights on the llama architecture (llama.cpp's interleaved RoPE rows). The
    remaining divergence is llama.cpp's own arithmetic (F16 KV cache, its kernels): an F32
    conversion diverges as much as the F16 one (0.0014 nats when measured)."""
    done = convert(smollm2_checkpoint, output=tmp_path / "smollm2.gguf", progress=False)
    assert done.file_type == "F16"  # auto: an F32 checkpoint becomes F16
    # split as its tokenizer.json splits (transformers wrote it from the GGUF: GPT-2's)
    assert read_gguf_header(done.path).metadata["tokenizer.ggml.pre"] == "gpt-2"
    result, = evaluate([done.path], TEXT, reference=smollm2_checkpoint,
                       reference_backend="huggingface", chunks=2, decode_tokens=4)
    assert result.kl_divergence < 0.005 and result.top1_agreement > 0.95
    # and on transformers, which reads the GGUF back: the checkpoint within F16 rounding
    # (both run in the backend's dtype; 0.0021 nats, 96.9% when measured)
    on_torch, = evaluate([done.path], TEXT, reference=smollm2_checkpoint,
                         backend="huggingface", chunks=1, decode_tokens=4)
    assert on_torch.kl_divergence < 0.005 and on_torch.top1_agreement > 0.95


def test_what_cannot_be_converted_is_refused_and_nothing_is_overwritten(
        qwen3, embedding_folder, chat_gguf_path, tmp_path):
    with pytest.raises(InvalidRequestError, match=r"'q4_k_m': a GGUF converts to f16, "
                                                  r"bf16, f32, q8_0 GGUF.*adam quantize"):
        convert(chat_gguf_path, "q4_k_m", output=tmp_path / "x.gguf")
    with pytest.raises(InvalidRequestError, match="transformers checkpoint already"):
        convert(qwen3.dense_folder, to="transformers")
    with pytest.raises(InvalidRequestError, match="a bert model; convert writes llama"):
        convert(embedding_folder, "f16")
    with pytest.raises(InvalidRequestError, match="'q4_k_m' is not a type convert writes"):
        convert(qwen3.dense_folder, "q4_k_m", output=tmp_path / "x.gguf")
    existing = tmp_path / "mine.gguf"
    existing.write_text("my file")
    with pytest.raises(InvalidRequestError, match="already exists"):
        convert(qwen3.dense_folder, "f16", output=existing)
    assert existing.read_text() == "my file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.gguf"]  # no partial file


def test_the_command_line_converts_into_ollamas_store(qwen3, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama"))
    assert main(["convert", str(qwen3.dense_folder), "--type", "q8_0",
                 "--name", "qwen3-tiny:q8_0"]) == 0
    assert "Ollama model qwen3-tiny:q8_0" in capsys.readouterr().out
    blob = find_model_blob("qwen3-tiny:q8_0")
    assert blob is not None and read_gguf_header(blob).quantization == "Q8_0"
    monkeypatch.chdir(tmp_path)  # no -o: <model>-<type>.gguf here, auto made F16
    assert main(["convert", str(qwen3.dense_folder)]) == 0
    assert read_gguf_header(tmp_path / "qwen3-dense-F16.gguf").quantization == "F16"


def test_sharing_a_safetensors_model_with_ollama_converts_it_once(qwen3, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama"))
    first = ModelManager(model_type="huggingface", model=str(qwen3.dense_folder),
                         share_with_ollama=True)
    assert first.shared_as == "qwen3-dense:latest"
    assert first.source.kind == "folder"  # transformers still runs the checkpoint itself
    blob = find_model_blob("qwen3-dense:latest")
    converted = list((cache_root() / "checkpoint-ggufs").glob("*.gguf"))
    assert blob is not None and any(c.samefile(blob) for c in converted)  # stored once
    count = len(converted)
    again = ModelManager(model_type="huggingface", model=str(qwen3.dense_folder),
                         share_with_ollama=True)
    assert again.shared_as == first.shared_as
    assert len(list((cache_root() / "checkpoint-ggufs").glob("*.gguf"))) == count


def test_the_embedded_gguf_converts_to_a_higher_precision_gguf_and_a_checkpoint(
        chat_gguf_path, tmp_path, monkeypatch, capsys):
    """``adam convert smollm2 --type f16`` (issue 39): the shipped Q4_1 model dequantized
    by llama.cpp into an F16 GGUF that predicts as the original does, and into a
    transformers checkpoint, so the tools and tuning can start from the shipped model."""
    monkeypatch.chdir(tmp_path)
    assert main(["convert", "smollm2", "--type", "f16"]) == 0
    (f16,) = tmp_path.glob("*-F16.gguf")
    assert read_gguf_header(f16).quantization == "F16"
    assert "F16: " in capsys.readouterr().out
    result, = evaluate([f16], TEXT, reference=chat_gguf_path, chunks=1, decode_tokens=4)
    assert result.kl_divergence < 0.005 and result.top1_agreement > 0.95  # the same model
    done = convert("smollm2", "bf16", to="transformers", output=tmp_path / "smol-bf16",
                   progress=False)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in done.path.iterdir()}
    on_torch, = evaluate([done.path], TEXT, reference=chat_gguf_path, backend="huggingface",
                         chunks=1, decode_tokens=4)
    assert on_torch.kl_divergence < 0.02 and on_torch.top1_agreement > 0.9  # BF16 rounding
    with pytest.raises(InvalidRequestError, match="already exists"):
        convert("smollm2", "f16", to="transformers", output=done.path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
