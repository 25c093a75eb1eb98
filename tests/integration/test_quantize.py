"""``adam quantize`` (issue 30): llama.cpp's quantizer through llama-cpp-python, on the
random-weight Qwen3 fixtures (F32 GGUFs made by llama.cpp's converter) and the embedded
SmolLM2 (already quantized: refused unless asked). Each output is checked by what reads
it: its header's file type, llama.cpp generating from it, Ollama's store
listing it. The command line runs in-process (``cli.main``), as the console script
calls it."""

from __future__ import annotations

import pytest

from adam_integrations import InvalidRequestError, ModelManager
from adam_integrations.cli import main
from adam_integrations.core.stores.gguf_header import read_gguf_header
from adam_integrations.core.stores.ollama_store import find_model_blob, model_layers
from adam_integrations.tools import quantize

HELLO = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("kind", ["Q8_0", "Q4_K_M"])
def test_quantize_writes_the_type_asked_for_and_llamacpp_runs_it(qwen3, tmp_path, kind):
    output = tmp_path / f"qwen3-{kind}.gguf"
    result = quantize(qwen3.dense_gguf, kind.lower(), output=output, progress=False)
    assert result.path == output and result.quantization == kind
    assert read_gguf_header(output).quantization == kind
    assert result.output_bytes < result.source_bytes / 2  # from F32
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial left
    # llama.cpp runs it (transformers reads the same GGUFs, see test_evaluate.py; turning
    # this 151k-token vocabulary into a transformers tokenizer would cost ~25 s here)
    manager = ModelManager(model_type="llamacpp", model=str(output))
    try:
        answer = manager.chat(HELLO, max_tokens=3, temperature=0.0, think=False)
        assert answer.usage.completion_tokens == 3
    finally:
        manager.unload()


def test_a_quantized_source_is_refused_unless_requantizing_is_asked_for(chat_gguf_path,
                                                                       tmp_path):
    with pytest.raises(InvalidRequestError, match=r"already quantized \(Q4_1\).*"
                                                  r"allow_requantize"):
        quantize(chat_gguf_path, "Q8_0", output=tmp_path / "x.gguf", progress=False)
    assert not (tmp_path / "x.gguf").exists()
    result = quantize(chat_gguf_path, "Q8_0", output=tmp_path / "x.gguf",
                      allow_requantize=True, progress=False)
    assert read_gguf_header(result.path).quantization == "Q8_0"


def test_nothing_is_overwritten_and_bad_arguments_say_what_to_do(qwen3, tmp_path):
    mine = tmp_path / "mine.gguf"
    mine.write_bytes(b"my own file")
    with pytest.raises(InvalidRequestError, match="already exists"):
        quantize(qwen3.dense_gguf, "Q8_0", output=mine, progress=False)
    assert mine.read_bytes() == b"my own file"
    with pytest.raises(InvalidRequestError, match=r"not a quantization.*Q4_K_M"):
        quantize(qwen3.dense_gguf, "Q4_K_X", output=tmp_path / "y.gguf", progress=False)
    with pytest.raises(InvalidRequestError, match="does not exist"):
        quantize(qwen3.dense_gguf, "Q8_0", output=tmp_path / "no" / "y.gguf", progress=False)
    with pytest.raises(InvalidRequestError, match="not both"):
        quantize(qwen3.dense_gguf, "Q8_0", output=tmp_path / "z.gguf", name="z",
                 progress=False)
    with pytest.raises(InvalidRequestError, match="not a GGUF file on this machine"):
        quantize(qwen3.dense_folder, "Q8_0", output=tmp_path / "z.gguf", progress=False)


def test_quantize_into_ollamas_store_keeps_the_source_models_layers(qwen3):
    from adam_integrations.sharing.ollama_create import create_model

    create_model("qwen3-fixture:f32", qwen3.dense_gguf, system="Answer briefly.")
    result = quantize("ollama:qwen3-fixture:f32", "Q8_0", name="qwen3-fixture:q8_0", progress=False)
    assert result.ollama_name == "qwen3-fixture:q8_0"
    blob = find_model_blob("qwen3-fixture:q8_0")
    assert blob is not None and read_gguf_header(blob).quantization == "Q8_0"
    assert model_layers("qwen3-fixture:q8_0").system == "Answer briefly."
    assert not [p for p in blob.parent.iterdir() if "quantize" in p.name]


def test_adam_quantize_on_the_command_line(qwen3, tmp_path, capsys):
    output = tmp_path / "cli.gguf"
    assert main(["quantize", str(qwen3.dense_gguf), "q8_0", "-o", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "Q8_0" in printed and str(output) in printed
    assert read_gguf_header(output).quantization == "Q8_0"
    assert main(["quantize", str(qwen3.dense_gguf), "q8_0", "-o", str(output)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_ollamas_create_with_quantize_goes_through_adam_serve(server, qwen3):
    """The ``ollama`` package's own client, as users call it."""
    import ollama

    from adam_integrations.sharing.ollama_create import create_model

    create_model("qwen3-served:f32", qwen3.dense_gguf)
    client = ollama.Client(host=server)
    done = client.create(model="qwen3-served:q4", from_="qwen3-served:f32", quantize="q4_K_M")
    assert done.status == "success"
    blob = find_model_blob("qwen3-served:q4")
    assert blob is not None and read_gguf_header(blob).quantization == "Q4_K_M"
    with pytest.raises(ollama.ResponseError) as refused:  # a 400, in Ollama's shape
        client.create(model="x", from_="qwen3-served:f32", quantize="q9_bogus")
    assert refused.value.status_code == 400 and "not a quantization" in str(refused.value)


def test_adam_create_with_quantize_as_ollama_create_q(qwen3, tmp_path, capsys):
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f"FROM {qwen3.dense_gguf}\nSYSTEM Be short.\n", encoding="utf-8")
    assert main(["create", "qwen3-created:q8", "-f", str(modelfile), "-q", "q8_0"]) == 0
    printed = capsys.readouterr().out
    assert "quantizing F32 model to Q8_0" in printed and "success" in printed
    blob = find_model_blob("qwen3-created:q8")
    assert blob is not None and read_gguf_header(blob).quantization == "Q8_0"
    assert model_layers("qwen3-created:q8").system == "Be short."
