"""``adam prune`` and ``adam distill`` (issue 41) on the tiny random-weight Llama with
SmolLM2's tokenizer: blocks and MLP channels cut by measured importance into a checkpoint
the other commands take (transformers, the GGUF writer, llama.cpp), and a student taught
by a teacher's distribution, its held-out loss falling. Real-weight figures (pruning
SmolLM2-135M by importance against at random, and distillation recovering it) are in
benchmarks/tune.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adam_integrations import InvalidRequestError
from adam_integrations.backends.local.huggingface import HuggingFaceModel
from adam_integrations.backends.local.llamacpp import LlamaCppModel
from adam_integrations.cli import main
from adam_integrations.sharing.checkpoint_gguf import write_gguf
from adam_integrations.tools.distill import distill
from adam_integrations.tools.prune import prune
from tests.fixtures.tiny_models import FFN, LAYERS, tiny_llama

TEXT = ("The lighthouse keeper climbed the stairs each evening to light the lamp. Ships "
        "passing the rocks saw the beam and kept their course. ") * 30
ASK = [{"role": "user", "content": "Where is the lighthouse?"}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, smollm2_checkpoint) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny-prune") / "tiny-llama",
                      smollm2_checkpoint)


@pytest.fixture(scope="module")
def calibration(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "lighthouse.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_prune_cuts_blocks_and_channels_into_a_checkpoint_every_engine_runs(
        tiny, calibration, tmp_path):
    done = prune(tiny, calibration, drop_layers=1, mlp_ratio=0.5, output=tmp_path / "p")
    assert len(done.importance) == LAYERS and all(v > 0 for v in done.importance)
    assert len(done.dropped) == 1
    assert done.dropped[0] == min(range(LAYERS), key=lambda i: done.importance[i])
    assert (done.intermediate_before, done.intermediate_after) == (FFN, FFN // 2)
    assert done.parameters_after < done.parameters_before
    config = json.loads((done.path / "config.json").read_text())
    assert config["num_hidden_layers"] == LAYERS - 1 and config["intermediate_size"] == FFN // 2
    pruned = HuggingFaceModel(str(done.path), dtype="float32")
    try:
        assert pruned.chat(ASK, max_tokens=3, temperature=0.0).usage.completion_tokens == 3
    finally:
        pruned.unload()
    gguf = tmp_path / "pruned.gguf"
    write_gguf(done.path, gguf, "F32")  # adam convert takes it, and llama.cpp runs it
    on_llamacpp = LlamaCppModel(str(gguf))
    try:
        assert on_llamacpp.chat(ASK, max_tokens=3, temperature=0.0).usage.completion_tokens \
            == 3
    finally:
        on_llamacpp.unload()
    chosen = [prune(tiny, calibration, drop_layers=1, output=tmp_path / f"r{i}",
                    strategy="random", seed=7).dropped for i in range(2)]
    assert chosen[0] == chosen[1]  # the baseline is reproducible


@pytest.mark.parametrize(("options", "message"), [
    ({}, "say how much to prune"),
    ({"drop_layers": LAYERS}, f"has {LAYERS} blocks; drop fewer"),
    ({"drop_layers": 1, "layer_ratio": 0.5}, "not both"),
    ({"layer_ratio": 1.5}, "layer_ratio must be a share between 0 and 1"),
    ({"mlp_ratio": 0}, "mlp_ratio must be a share between 0 and 1"),
])
def test_bad_pruning_requests_are_refused_and_write_nothing(tiny, calibration, tmp_path,
                                                            options, message):
    with pytest.raises(InvalidRequestError, match=message):
        prune(tiny, calibration, output=tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_calibration_must_be_text(tiny, tmp_path):
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"messages": [{"role": "user", "content": "x"},
                                             {"role": "assistant", "content": "y"}]}) + "\n")
    with pytest.raises(InvalidRequestError, match="calibration is plain text"):
        prune(tiny, chat, drop_layers=1, output=tmp_path / "out")


def test_the_command_line_prints_every_blocks_importance(tiny, calibration, tmp_path,
                                                        capsys):
    assert main(["prune", str(tiny), "--calibration", str(calibration), "--drop-layers",
                 "1", "-o", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "importance" in out and out.count("dropped") == 1 and "pruned:" in out


def test_distillation_teaches_the_pruned_student_and_records_its_teacher(
        tiny, calibration, tmp_path):
    student = prune(tiny, calibration, drop_layers=1, output=tmp_path / "student").path
    done = distill(tiny, student, calibration, output=tmp_path / "distilled",
                   eval_data=calibration, max_steps=8, learning_rate=5e-3, batch_size=4,
                   max_length=64, epochs=2, progress=False)
    assert done.method == "full" and done.steps == 8
    assert done.eval_loss < done.eval_loss_before
    record = json.loads((done.path / "adam-tune.json").read_text())
    assert record["distilled_from"] == str(tiny) and record["temperature"] == 2.0
    assert (done.path / "model.safetensors").is_file()
    with pytest.raises(InvalidRequestError, match="alpha must be between 0 and 1"):
        distill(tiny, student, calibration, output=tmp_path / "x", alpha=1.5)
    with pytest.raises(InvalidRequestError, match="temperature must be a positive number"):
        distill(tiny, student, calibration, output=tmp_path / "x", temperature=0)


def test_a_teacher_with_another_tokenizer_is_refused_naming_both(qwen3, tiny, calibration,
                                                                 tmp_path):
    with pytest.raises(InvalidRequestError, match=r"the teacher .* and the student "
                                                  r"tiny-llama have different tokenizers"):
        distill(qwen3.dense_folder, tiny, calibration, output=tmp_path / "x", max_steps=1)
    assert not (tmp_path / "x").exists()
