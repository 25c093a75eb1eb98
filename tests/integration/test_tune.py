"""``adam tune`` (issue 41): LoRA and full fine-tuning with PEFT and TRL on a tiny
random-weight Llama with SmolLM2's real tokenizer and template (``tests/fixtures/
tiny_models.py``), fast enough for the main suite; the data rendered by real chat
templates (SmolLM2's, and Qwen3's official one on the fixtures), the loss on the
assistant's tokens; every bad input refused before anything is written. Real-weight runs
are benchmarks (benchmarks/tune.py)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest

from adam_integrations import InvalidRequestError
from adam_integrations.cli import main
from adam_integrations.tools import tune
from adam_integrations.tools.tune import TUNE_RECORD
from adam_integrations.tools.tune_data import read_training_data, tokenize_training_data
from tests.fixtures.tiny_models import tiny_llama

QUICK = {"max_steps": 6, "rank": 4, "learning_rate": 1e-2, "batch_size": 4,
         "max_length": 64, "progress": False}


def _chat_rows(count: int = 24) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"Add {i} and {i}."},
                          {"role": "assistant", "content": f"Arr! {i} and {i} make {2 * i}."}]}
            for i in range(count)]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, smollm2_checkpoint) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama", smollm2_checkpoint)


@pytest.fixture(scope="session")
def chat_data(tmp_path_factory) -> Path:
    return _write_jsonl(tmp_path_factory.mktemp("data") / "chat.jsonl", _chat_rows())


def test_lora_lowers_the_held_out_loss_and_writes_an_adapter_with_its_record(tiny, chat_data,
                                                                           tmp_path):
    done = tune(tiny, chat_data, output=tmp_path / "out", eval_data=chat_data, **QUICK)
    assert done.method == "lora" and done.steps == 6 and not done.interrupted
    assert done.eval_loss < done.eval_loss_before
    assert done.tokens > 0 and done.tokens_per_second > 0
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json",
            TUNE_RECORD, "checkpoints"} <= files
    assert not [name for name in files if name.startswith(".")]  # no staging left
    record = json.loads((tmp_path / "out" / TUNE_RECORD).read_text())
    assert record["base"] == str(tiny) and record["settings"]["rank"] == 4
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["lora_alpha"] == 8
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj",
                                             "gate_proj", "up_proj", "down_proj"}


def test_the_loss_is_on_the_assistants_tokens_with_the_end_of_turn(smollm2_checkpoint,
                                                                  tmp_path):
    from transformers import AutoTokenizer

    data = _write_jsonl(tmp_path / "c.jsonl", [{"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye."}]}])
    tokenizer = AutoTokenizer.from_pretrained(smollm2_checkpoint)
    tokens = tokenize_training_data(read_training_data(data), tokenizer, max_length=512,
                                    model_name="smollm2")
    (sequence,) = tokens.sequences
    learnt = [t for t, m in zip(sequence["input_ids"], sequence["assistant_masks"],
                                strict=True) if m]
    assert tokenizer.decode(learnt) == "Hello!<|im_end|>\nGoodbye.<|im_end|>\n"


def test_qwen3s_template_keeps_the_last_turns_reasoning_and_finds_earlier_turns(qwen3,
                                                                                tmp_path):
    from transformers import AutoTokenizer

    data = _write_jsonl(tmp_path / "c.jsonl", [{"messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>greet</think>Hello!"},
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "weather",
                                              "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": "12C"},
        {"role": "assistant", "content": "It is 12C.", "reasoning_content": "easy"}],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}}}}]}])
    tokenizer = AutoTokenizer.from_pretrained(qwen3.dense_folder)
    tokens = tokenize_training_data(read_training_data(data), tokenizer, max_length=2048,
                                    model_name="qwen3")
    (sequence,) = tokens.sequences
    learnt = tokenizer.decode([t for t, m in zip(sequence["input_ids"],
                                                 sequence["assistant_masks"], strict=True) if m])
    # the earlier turn as the template shows it in history (reasoning dropped), the tool
    # call in Qwen3's format, the last turn with its reasoning; never the user's or tool's
    assert learnt == ('Hello!<|im_end|>\n<tool_call>\n{"name": "weather", "arguments": '
                      '{"city": "Oslo"}}\n</tool_call><|im_end|>\n<think>\neasy\n</think>\n\n'
                      'It is 12C.<|im_end|>\n')


def test_prompt_completion_and_text_data_train(tiny, tmp_path):
    pairs = _write_jsonl(tmp_path / "p.jsonl", [
        {"prompt": f"Q{i}: ", "completion": f"A{i}"} for i in range(8)])
    done = tune(tiny, pairs, output=tmp_path / "pairs", **QUICK)
    assert done.steps == 6
    text = tmp_path / "notes.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 40, encoding="utf-8")
    tokens = tokenize_training_data(read_training_data(text), _tokenizer(tiny),
                                    max_length=64, model_name="tiny")
    assert len(tokens.sequences) > 3  # cut into max_length pieces, every token learnt
    assert tokens.trained_tokens == tokens.tokens
    assert tune(tiny, text, output=tmp_path / "text", **QUICK).steps == 6


def _tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def test_full_fine_tuning_writes_a_checkpoint_the_backend_runs(tiny, chat_data, tmp_path):
    from adam_integrations import ModelManager

    done = tune(tiny, chat_data, output=tmp_path / "full", full=True,
                **{**QUICK, "learning_rate": 1e-3})
    assert done.method == "full"
    assert (tmp_path / "full" / "model.safetensors").is_file()
    manager = ModelManager(model=str(tmp_path / "full"), model_type="huggingface")
    try:
        answer = manager.chat([{"role": "user", "content": "Add 1 and 1."}], max_tokens=3,
                              temperature=0.0)
        assert answer.usage.completion_tokens == 3
    finally:
        manager.unload()


def test_a_run_resumes_from_its_last_whole_checkpoint(tiny, chat_data, tmp_path):
    out = tmp_path / "run"
    tune(tiny, chat_data, output=out, save_steps=2, **{**QUICK, "max_steps": 4})
    # a kill while the step-4 checkpoint was written: its trainer state never landed
    (out / "checkpoints" / "checkpoint-4" / "trainer_state.json").unlink()
    resumed = tune(tiny, chat_data, output=out, resume=True, save_steps=2, **QUICK)
    assert resumed.steps == 6
    state = json.loads((out / "checkpoints" / "checkpoint-6" / "trainer_state.json")
                       .read_text())
    assert next(log["step"] for log in state["log_history"] if "loss" in log) <= 2  # kept
    with pytest.raises(InvalidRequestError, match="no run of adam tune to resume"):
        tune(tiny, chat_data, output=tmp_path / "never", resume=True, **QUICK)


@pytest.mark.parametrize(("options", "message"), [
    ({"rank": 0}, "rank must be a whole number of at least 1"),
    ({"max_steps": 0}, "max_steps must be"),
    ({"learning_rate": -1.0}, "learning_rate must be a positive number"),
    ({"learning_rate": float("nan")}, "learning_rate must be a positive number"),
    ({"epochs": 0}, "epochs must be a positive number"),
    ({"target_modules": "q_proj,nope"}, r"no linear layers named nope; its layers are"),
])
def test_bad_settings_are_refused_before_anything_is_written(tiny, chat_data, tmp_path,
                                                              options, message):
    with pytest.raises(InvalidRequestError, match=message):
        tune(tiny, chat_data, output=tmp_path / "out", **{**QUICK, **options})
    assert not (tmp_path / "out").exists()


def test_bad_data_and_an_existing_output_are_refused_naming_them(tiny, chat_data, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_chat_rows(1)[0]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(InvalidRequestError, match=r"bad.jsonl:line 2: not valid JSON"):
        tune(tiny, bad, output=tmp_path / "out", **QUICK)
    unanswered = _write_jsonl(tmp_path / "u.jsonl", [
        {"messages": [{"role": "user", "content": "Hi"}]}])
    with pytest.raises(InvalidRequestError, match=r"u.jsonl:line 1: .*no assistant turn"):
        tune(tiny, unanswered, output=tmp_path / "out", **QUICK)
    assert not (tmp_path / "out").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my own", encoding="utf-8")
    with pytest.raises(InvalidRequestError, match="already exists"):
        tune(tiny, chat_data, output=mine, **QUICK)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_a_run_that_would_not_fit_is_refused_with_a_setting_that_does(tiny, chat_data,
                                                                      tmp_path):
    with mock.patch("adam_integrations.tools.tune.available_memory",
                    return_value=int(1.5 * 1024**3)), \
            pytest.raises(InvalidRequestError,
                          match=r"needs about .* GiB of RAM is free; --batch-size \d+ "
                                r"--grad-accum \d+.* fits"):
        tune(tiny, chat_data, output=tmp_path / "out", **{**QUICK, "batch_size": 64,
                                                          "max_length": 2048})
    assert not (tmp_path / "out").exists()


def test_the_command_line_trains_and_ctrl_c_leaves_a_usable_adapter(tiny, chat_data,
                                                                   tmp_path, capsys):
    assert main(["tune", str(tiny), "--data", str(chat_data), "-o", str(tmp_path / "cli"),
                 "--max-steps", "3", "--rank", "2", "--max-length", "64",
                 "--eval-data", str(chat_data)]) == 0
    out = capsys.readouterr().out
    assert "LoRA adapter:" in out and "3 steps" in out and "held-out loss" in out
    # long runs stopped with Ctrl-C, and with SIGTERM (kill, docker stop): saved at the end
    # of the step, reported, resumable
    runs = {number: (tmp_path / f"stopped-{number.name}", subprocess.Popen(
        [sys.executable, "-m", "adam_integrations.cli", "tune", str(tiny), "--data",
         str(chat_data), "-o", str(tmp_path / f"stopped-{number.name}"), "--max-steps",
         "100000", "--max-length", "64", "--save-steps", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})) for number in (signal.SIGINT,
                                                                      signal.SIGTERM)}
    deadline = time.monotonic() + 120
    while not all((target / "checkpoints").is_dir() for target, _ in runs.values()) and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # training under way
    for number, (_, process) in runs.items():
        process.send_signal(number)
    for target, process in runs.values():
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr[-2000:]
        assert "stopped early" in stdout
        record = json.loads((target / TUNE_RECORD).read_text())
        assert record["interrupted"] and 0 < record["steps"] < 100000
        assert (target / "adapter_model.safetensors").is_file()
        assert math.isfinite(record["train_loss"])
        assert not list(target.glob(".result-*"))
