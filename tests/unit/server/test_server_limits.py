"""adam serve's API keys, name checks, bounded work and metrics, on the scripted backend
in process (the real ``openai`` and ``ollama`` clients over httpx's ASGI transport)."""

from __future__ import annotations

import asyncio
import json
import os
import time

import httpx
import ollama
import openai
import pytest

from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.streaming import iterate_in_thread
from adam_integrations.server import create_app
from adam_integrations.server.models import ServedModels
from adam_integrations.server.names import check_alias, check_model_name
from adam_integrations.server.settings import ServerSettings, api_keys_from, max_queue_from
from tests.helpers import error_message
from tests.unit.scripted import NAME

BASE = "http://127.0.0.1:11434"
CHAT = {"model": NAME, "messages": [{"role": "user", "content": "say: hi"}], "stream": False}


def _app(tmp_path, **settings):
    return create_app(ServedModels(tmp_path / "aliases.json", model_type=NAME),
                      ServerSettings(**settings))


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


def _slow(words: int, **extra) -> dict:
    text = " ".join(f"w{i}" for i in range(words))
    return {"model": NAME, "messages": [{"role": "user", "content": f"slow: say: {text}"}],
            **extra}


# -- API keys -------------------------------------------------------------------------------
async def test_keys_guard_every_route_but_the_root(tmp_path, backend):
    app = _app(tmp_path, api_keys=("sk-one", "sk-two"))
    async with _client(app) as http:
        assert (await http.get("/")).status_code == 200
        for path in ("/api/tags", "/api/version", "/v1/models", "/metrics"):
            missing = await http.get(path)
            assert missing.status_code == 401, path
            assert "Authorization: Bearer" in error_message(missing)
            assert missing.headers["www-authenticate"] == "Bearer"
        wrong = await http.post("/api/chat", json=CHAT,
                                headers={"Authorization": "Bearer sk-three"})
        assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid API key"})
        for key in ("sk-one", "sk-two"):
            ok = await http.post("/api/chat", json=CHAT,
                                 headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200 and ok.json()["message"]["content"] == "hi"


async def test_the_openai_and_ollama_clients_send_the_key(tmp_path, backend):
    app = _app(tmp_path, api_keys=("sk-test",))
    transport = httpx.ASGITransport(app=app)
    client = openai.AsyncOpenAI(base_url=f"{BASE}/v1", api_key="sk-test",
                                http_client=httpx.AsyncClient(transport=transport))
    answer = await client.chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": "say: keyed"}])
    assert answer.choices[0].message.content == "keyed"
    with pytest.raises(openai.AuthenticationError):
        await openai.AsyncOpenAI(base_url=f"{BASE}/v1", api_key="wrong", max_retries=0,
                                 http_client=httpx.AsyncClient(transport=transport)
                                 ).models.list()
    keyed = ollama.AsyncClient(host=BASE, transport=transport,
                               headers={"Authorization": "Bearer sk-test"})
    assert (await keyed.chat(model=NAME, messages=[{"role": "user", "content": "say: o"}])
            ).message.content == "o"
    with pytest.raises(ollama.ResponseError) as refused:
        await ollama.AsyncClient(host=BASE, transport=transport).list()
    assert refused.value.status_code == 401


async def test_preflights_need_no_key_and_refusals_carry_cors_headers(tmp_path, backend):
    app = _app(tmp_path, api_keys=("sk-test",))
    origin = "http://localhost:3000"
    async with _client(app) as http:
        preflight = await http.options("/api/chat", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert preflight.status_code == 200
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        refused = await http.post("/api/chat", json=CHAT, headers={"Origin": origin})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == origin


def test_keys_come_from_flags_the_environment_and_a_file(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("# team keys\nsk-file\n\n  sk-file-2  \n")
    keys = api_keys_from(["sk-flag"], key_file, {"ADAM_API_KEY": "sk-env,sk-env-2"})
    assert keys == ("sk-flag", "sk-env", "sk-env-2", "sk-file", "sk-file-2")
    with pytest.raises(InvalidRequestError, match="cannot read the API key file"):
        api_keys_from([], tmp_path / "missing", {})
    with pytest.raises(InvalidRequestError, match="printable ASCII"):
        api_keys_from(["two words"], None, {})
    assert max_queue_from({}) == 512 and max_queue_from({"OLLAMA_MAX_QUEUE": "7"}) == 7
    with pytest.raises(InvalidRequestError, match="OLLAMA_MAX_QUEUE"):
        max_queue_from({"OLLAMA_MAX_QUEUE": "-1"})


# -- names ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [
    "smollm2:135m", "qwen3_small", "Qwen/Qwen3-0.6B", "hf.co/Qwen/Qwen3-8B-GGUF:Q4_K_M",
    "hf:Qwen/Qwen3-0.6B", "hf:unsloth/Qwen3-8B-GGUF:Q4_K_M", "ollama:qwen3:0.6b",
    "registry.example.com:5000/team/model:v1", "_private"])
def test_valid_names_pass(name):
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", [
    "../../x", "/etc/passwd", "./model.gguf", "~/.ssh/id_rsa", "C:\\models\\x.gguf",
    "a/b/c/d", "x..y", "model:tag:more", "-rf", "a b", "hf:../x", "ollama:../x",
    "na\nme", "x" * 600, "", "   ", 7, None, ["smollm2"]])
def test_invalid_names_are_refused(name):
    with pytest.raises(InvalidRequestError):
        check_model_name(name)


def test_paths_are_served_only_under_the_folders_allowed(tmp_path):
    allowed = tmp_path / "models"
    (allowed / "sub").mkdir(parents=True)
    (tmp_path / "secret.gguf").write_bytes(b"x")
    (allowed / "escape.gguf").symlink_to(tmp_path / "secret.gguf")
    inside = str(allowed / "sub" / "m.gguf")
    assert check_model_name(inside, [allowed]) == inside
    for outside in (str(tmp_path / "secret.gguf"), f"{allowed}/../secret.gguf",
                    str(allowed / "escape.gguf")):
        with pytest.raises(InvalidRequestError, match="outside the folders"):
            check_model_name(outside, [allowed])
    with pytest.raises(InvalidRequestError, match="--models-dir"):
        check_model_name(inside)
    with pytest.raises(InvalidRequestError):
        check_alias("hf:Qwen/Qwen3-0.6B")  # an alias is a plain name


@pytest.mark.parametrize(("method", "path", "field"), [
    ("POST", "/api/show", "model"), ("POST", "/api/chat", "model"),
    ("POST", "/api/generate", "model"), ("POST", "/api/embed", "model"),
    ("POST", "/api/pull", "model"), ("DELETE", "/api/delete", "model"),
    ("POST", "/api/copy", "source"), ("POST", "/api/copy", "destination"),
    ("POST", "/v1/chat/completions", "model"), ("POST", "/v1/embeddings", "model")])
async def test_every_route_that_takes_a_name_refuses_bad_ones(tmp_path, backend, method,
                                                              path, field):
    body = {"model": NAME, "source": NAME, "destination": "mine", "prompt": "hi",
            "input": "hi", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    body[field] = "../../x"
    async with _client(_app(tmp_path)) as http:
        response = await http.request(method, path, json=body)
        assert response.status_code == 400, response.text
        assert "'../../x'" in error_message(response)
        names = [m["name"] for m in (await http.get("/api/tags")).json()["models"]]
        assert not any(".." in n for n in names)


async def test_a_file_in_the_working_directory_is_not_read_as_a_model(tmp_path, backend,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").write_text("private")
    async with _client(_app(tmp_path)) as http:
        response = await http.post("/api/show", json={"model": "notes"})
        assert response.status_code == 404


# -- bounded work ---------------------------------------------------------------------------
async def test_past_the_queue_limit_requests_get_503_and_then_are_served(tmp_path, backend):
    app = _app(tmp_path, max_queue=2)
    async with _client(app) as http:
        running = [asyncio.create_task(http.post("/api/chat", json=_slow(5, stream=False)))
                   for _ in range(2)]
        while app.state.service.workload.in_flight < 2:
            await asyncio.sleep(0.01)
        busy = await http.post("/api/chat", json=CHAT)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "OLLAMA_MAX_QUEUE" in error_message(busy)
        assert (await http.get("/api/tags")).status_code == 200  # reading state is free
        assert [r.status_code for r in await asyncio.gather(*running)] == [200, 200]
        assert (await http.post("/api/chat", json=CHAT)).status_code == 200
        assert app.state.service.workload.in_flight == 0


async def test_prompt_length_and_generated_tokens_are_bounded(tmp_path, backend):
    app = _app(tmp_path, max_prompt_chars=20, max_tokens=2)
    async with _client(app) as http:
        long = {**CHAT, "messages": [{"role": "user", "content": "say: " + "a" * 30}]}
        refused = await http.post("/api/chat", json=long)
        assert refused.status_code == 400 and "--max-prompt-chars" in error_message(refused)
        refused = await http.post("/api/embed", json={"model": NAME, "input": ["b" * 30]})
        assert refused.status_code == 400
        answer = await http.post("/api/chat", json={
            **CHAT, "messages": [{"role": "user", "content": "say: a b c d"}],
            "options": {"num_predict": 100}})
        assert answer.json()["message"]["content"] == "a b"
        assert answer.json()["done_reason"] == "length"
        assert backend.requests[-1].config.max_tokens == 2


async def test_a_request_past_the_time_limit_ends_with_an_error(tmp_path, backend):
    app = _app(tmp_path, request_timeout=0.35)
    async with _client(app) as http:
        streamed = await http.post("/api/chat", json=_slow(20))
        lines = [json.loads(line) for line in streamed.text.splitlines()]
        assert streamed.status_code == 200 and 1 <= len(lines) < 20
        assert "--request-timeout" in lines[-1]["error"]
        whole = await http.post("/api/chat", json=_slow(20, stream=False))
        assert whole.status_code == 503 and "--request-timeout" in error_message(whole)
        events = await http.post("/v1/chat/completions", json=_slow(20, stream=True))
        data = [e.removeprefix("data: ") for e in events.text.split("\n\n") if e]
        assert data[-1] == "[DONE]" and "--request-timeout" in json.loads(data[-2])[
            "error"]["message"]


async def test_on_shutdown_streams_end_with_an_error_line_and_new_work_is_refused(
        tmp_path, backend):
    app = _app(tmp_path)
    workload = app.state.service.workload
    async with _client(app) as http:
        asyncio.get_running_loop().call_later(0.35, workload.close)
        response = await http.post("/api/chat", json=_slow(30))
        lines = [json.loads(line) for line in response.text.splitlines()]
        assert 2 <= len(lines) < 30 and "shutting down" in lines[-1]["error"]
        refused = await http.post("/api/chat", json=CHAT)
        assert refused.status_code == 503 and "shutting down" in error_message(refused)


async def test_generation_runs_ahead_of_a_reader_that_does_not_read():
    """A slow client never holds the model: the generation's thread finishes on its own
    time, whatever the reader does, and only the buffer waits for the reader."""
    produced = []

    def tokens():
        for i in range(50):
            produced.append(i)
            yield i

    stream = iterate_in_thread(tokens)
    assert await anext(stream) == 0
    deadline = time.monotonic() + 5
    while len(produced) < 50 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # the reader reads nothing more meanwhile
    assert len(produced) == 50
    assert [i async for i in stream] == list(range(1, 50))


# -- metrics --------------------------------------------------------------------------------
async def test_metrics_count_requests_tokens_and_latency(tmp_path, backend):
    app = _app(tmp_path)
    async with _client(app) as http:
        await http.post("/api/chat", json={**CHAT, "messages": [
            {"role": "user", "content": "say: one two three"}]})
        await http.get("/no/such/route")
        await http.get("/api/tags", headers={"Origin": "http://evil.example.com"})
        response = await http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for line in ['adam_requests_total{method="POST",route="/api/chat",status="200"} 1.0',
                 'adam_requests_total{method="GET",route="unmatched",status="404"} 1.0',
                 'adam_requests_total{method="GET",route="/api/tags",status="403"} 1.0',
                 'adam_generation_tokens_total{model="scripted-model"} 3.0',
                 'adam_prompt_tokens_total{model="scripted-model"} 4.0',
                 'adam_time_to_first_token_seconds_count{model="scripted-model"} 1.0',
                 'adam_generation_tokens_per_second_count{model="scripted-model"} 1.0',
                 "adam_queue_depth 0.0"]:
        assert line in text, line
    assert "adam_models_loaded" in text and "adam_request_duration_seconds_bucket" in text


def test_the_serve_command_warns_when_exposed_without_a_key(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "ADAM_CACHE_DIR": str(tmp_path)}
    env.pop("ADAM_API_KEY", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "adam_integrations.cli", "serve", "--host", "0.0.0.0",
         "--port", "0"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        warning = process.stderr.readline()
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert "no API key is set" in warning and "--api-key" in warning


async def test_a_client_cannot_make_aliases_without_bound(tmp_path, backend, monkeypatch):
    from adam_integrations.server import models

    monkeypatch.setattr(models, "MAX_ALIASES", 3)
    app = _app(tmp_path)
    async with _client(app) as http:
        for i in range(3):
            made = await http.post("/api/copy", json={"source": NAME,
                                                      "destination": f"alias-{i}"})
            assert made.status_code == 200
        refused = await http.post("/api/copy", json={"source": NAME, "destination": "one-more"})
        assert refused.status_code == 400 and "/api/delete" in error_message(refused)
        again = await http.post("/api/copy", json={"source": NAME, "destination": "alias-0"})
        assert again.status_code == 200  # renaming an existing alias is not a new one
