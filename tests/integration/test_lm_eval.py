"""EleutherAI's evaluation harness (``lm-eval``) scoring a model served by ``adam serve``
(issue 30): the harness's own ``local-completions`` (its command line, as users run it)
and ``local-chat-completions`` (its Python API) model types, on task files of our own
(``data/lm_eval``: three questions to answer, three to choose an answer for; read with the
``datasets`` json loader, nothing from the hub). Each answer the harness scored must be
the one the server gives the same request directly: the harness really asked this
server. Multiple choice reads the log probabilities of the prompt (``echo``) and the
server's own tokenizer (vLLM's ``/tokenize`` endpoints)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.conftest import ServeProcess

TASKS = Path(__file__).parent / "data" / "lm_eval"
MODEL = "smollm2:135m"


@pytest.fixture
def task_folder(tmp_path, monkeypatch) -> Path:
    """The task, its data file named by its whole path (the file names it from the
    repository root); the datasets cache in ``tmp_path``, offline."""
    folder = tmp_path / "tasks"
    folder.mkdir()
    for task in TASKS.glob("*.yaml"):
        (folder / task.name).write_text(task.read_text(encoding="utf-8").replace(
            "tests/integration/data/lm_eval/", f"{TASKS}/"), encoding="utf-8")
    for name, value in (("HF_DATASETS_CACHE", str(tmp_path / "datasets")),
                        ("HF_DATASETS_OFFLINE", "1"), ("HF_HUB_OFFLINE", "1")):
        monkeypatch.setenv(name, value)
    return folder


def _questions() -> list[str]:
    lines = (TASKS / "tiny_qa.jsonl").read_text(encoding="utf-8").splitlines()
    return [f"Question: {json.loads(line)['question']}\nAnswer:" for line in lines]


def test_the_harness_command_line_scores_a_served_model(server, task_folder, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--model", "local-completions", "--model_args",
         f"base_url={server}/v1/completions,model={MODEL},tokenizer_backend=None,"
         "tokenized_requests=False", "--tasks", "adam_tiny_qa", "--include_path",
         str(task_folder), "--log_samples", "--output_path", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "adam_tiny_qa" in done.stdout and "exact_match" in done.stdout
    samples = [json.loads(line) for path in (tmp_path / "out").rglob("samples_*.jsonl")
               for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(samples) == 3
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    for sample in samples:
        prompt = sample["arguments"]["gen_args_0"]["arg_0"]
        assert prompt in _questions()
        direct = client.completions.create(model=MODEL, prompt=prompt, max_tokens=16,
                                           temperature=0, stop=["\n"], seed=1234)
        assert sample["resps"] == [[direct.choices[0].text]]


def test_the_harness_scores_chat_completions_with_the_models_template(server, task_folder):
    import lm_eval
    from lm_eval.tasks import TaskManager

    results = lm_eval.simple_evaluate(
        model="local-chat-completions",
        model_args={"base_url": f"{server}/v1/chat/completions", "model": MODEL},
        tasks=["adam_tiny_qa"], task_manager=TaskManager(include_path=str(task_folder)),
        apply_chat_template=True, log_samples=True)
    assert results is not None
    assert 0.0 <= results["results"]["adam_tiny_qa"]["exact_match,none"] <= 1.0
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    for sample in results["samples"]["adam_tiny_qa"]:
        (context,), _ = sample["arguments"][0]
        messages = json.loads(context)
        assert messages[-1]["content"] in _questions()
        direct = client.chat.completions.create(model=MODEL, messages=messages,
                                                max_tokens=16, temperature=0, stop=["\n"],
                                                seed=1234)
        assert sample["resps"] == [[direct.choices[0].message.content]]


@pytest.fixture(scope="module")
def two_model_server(tmp_path_factory, thinking_gguf):
    """``adam serve`` with two chat models listed (the embedded one, and a copy with
    another template in an Ollama store of its own): the tokenizer endpoints, which
    lm-eval calls without a model name, must refuse to guess until one is loaded."""
    from adam_integrations.sharing.ollama_share import share_gguf

    folder = tmp_path_factory.mktemp("two-models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OLLAMA_MODELS", str(folder / "ollama"))
        share_gguf(thinking_gguf, "smollm2-thinking:latest")
    running = ServeProcess(folder / "server.log",
                           env={"OLLAMA_MODELS": str(folder / "ollama")})
    yield running.url
    running.stop()


def test_the_harness_chooses_answers_by_the_servers_log_likelihoods(two_model_server,
                                                                    task_folder):
    import lm_eval
    from lm_eval.tasks import TaskManager

    server = two_model_server
    refused = httpx.get(f"{server}/tokenizer_info")  # two chat models, neither loaded
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "model"
    httpx.post(f"{server}/api/generate", json={"model": MODEL}, timeout=120)  # loads it
    assert httpx.get(f"{server}/tokenizer_info").json()["model"] == MODEL
    results = lm_eval.simple_evaluate(
        model="local-completions",
        model_args={"base_url": f"{server}/v1/completions", "model": MODEL},
        tasks=["adam_tiny_choice"], task_manager=TaskManager(include_path=str(task_folder)),
        log_samples=True)
    assert results is not None
    assert 0.0 <= results["results"]["adam_tiny_choice"]["acc,none"] <= 1.0
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    for sample in results["samples"]["adam_tiny_choice"]:
        for (context, continuation), [(loglikelihood, _)] in zip(
                sample["arguments"], sample["resps"], strict=True):
            scored = client.completions.create(model=MODEL, prompt=context + continuation,
                                               max_tokens=1, temperature=0, logprobs=1,
                                               echo=True).choices[0].logprobs
            context_tokens = httpx.post(f"{server}/tokenize", json={
                "prompt": context, "add_special_tokens": False}).json()["count"]
            expected = sum(scored.token_logprobs[context_tokens:-1])
            assert loglikelihood == pytest.approx(expected, abs=1e-4)
