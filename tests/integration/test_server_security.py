"""A real ``adam serve`` subprocess on loopback, probed as the issue's user probed it, and
used through real clients with an API key; then stopped with SIGTERM mid-stream."""

from __future__ import annotations

import json
import signal
import threading
import time

import anthropic
import httpx
import ollama
import openai
import pytest
from langchain_ollama import ChatOllama

from tests.helpers import error_message
from tests.integration.conftest import ServeProcess

KEY = "sk-integration"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = {"model": "smollm2:135m", "stream": False, "options": {"num_predict": 4},
        "messages": [{"role": "user", "content": "Say hi."}]}


@pytest.fixture(scope="module")
def keyed(session_cache, tmp_path_factory):
    own_cache = tmp_path_factory.mktemp("keyed-cache")  # its aliases are its own
    running = ServeProcess(session_cache / "keyed-server.log", "--api-key", KEY,
                           env={"ADAM_CACHE_DIR": str(own_cache)})
    yield running.url
    running.stop()


def test_the_three_probes_are_refused(keyed):
    rebinding = httpx.get(f"{keyed}/api/tags", headers={**AUTH, "Host": "evil.example.com"})
    assert rebinding.status_code == 403
    simple_post = httpx.post(f"{keyed}/api/chat", content=json.dumps(CHAT), headers={
        **AUTH, "Origin": "http://evil.example.com", "Content-Type": "text/plain"})
    assert simple_post.status_code == 403
    for path in ("/api/copy", "/api/pull"):
        assert httpx.post(f"{keyed}{path}", content=b"{}", headers={
            **AUTH, "Origin": "http://evil.example.com",
            "Content-Type": "text/plain"}).status_code == 403
    traversal = httpx.post(f"{keyed}/api/copy", headers=AUTH, json={
        "source": "smollm2:135m", "destination": "../../x"})
    assert traversal.status_code == 400
    names = [m["name"] for m in httpx.get(f"{keyed}/api/tags", headers=AUTH).json()["models"]]
    assert not any(".." in name for name in names)


def test_without_the_key_only_the_root_answers(keyed):
    assert httpx.get(keyed).text == "Ollama is running"
    refused = httpx.post(f"{keyed}/api/chat", json=CHAT)
    assert refused.status_code == 401 and "Authorization: Bearer" in error_message(refused)
    assert httpx.get(f"{keyed}/metrics").status_code == 401


def test_real_clients_send_the_key(keyed):
    client = openai.OpenAI(base_url=f"{keyed}/v1", api_key=KEY)
    answer = client.chat.completions.create(model="smollm2:135m", max_tokens=4,
                                            messages=[{"role": "user", "content": "Hi"}])
    assert answer.choices[0].message.content
    chat = ChatOllama(model="smollm2:135m", base_url=keyed, num_predict=4,
                      client_kwargs={"headers": AUTH})
    assert chat.invoke("Hi").content
    with pytest.raises(ollama.ResponseError) as refused:
        ChatOllama(model="smollm2:135m", base_url=keyed, num_predict=4).invoke("Hi")
    assert refused.value.status_code == 401
    messages = anthropic.Anthropic(base_url=keyed, api_key=KEY).messages  # as x-api-key
    assert messages.create(model="smollm2:135m", max_tokens=4,
                           messages=[{"role": "user", "content": "Hi"}]).content
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=keyed, api_key="wrong").messages.create(
            model="smollm2:135m", max_tokens=4, messages=[{"role": "user", "content": "Hi"}])


def test_sigterm_ends_running_streams_with_an_error_line_and_exits(session_cache):
    running = ServeProcess(session_cache / "sigterm-server.log")
    lines = []
    with httpx.stream("POST", f"{running.url}/api/generate", timeout=60, json={
            "model": "smollm2:135m", "raw": True, "prompt": "1, 2, 3, 4, 5, 6, 7, 8,",
            "options": {"num_predict": 3000, "temperature": 0}}) as response:
        for line in response.iter_lines():
            lines.append(json.loads(line))
            if len(lines) == 3:
                running.process.send_signal(signal.SIGTERM)
                stopped_at = time.monotonic()
    assert not lines[-1].get("done") and "shutting down" in lines[-1]["error"], lines[-3:]
    assert running.process.wait(timeout=30) == 0
    assert time.monotonic() - stopped_at < 15


def test_sigterm_during_a_long_prefill_answers_it_and_exits_0(session_cache):
    """The request is still reading its prompt when the signal comes: it gets a 503 at
    once (nothing generated yet), not a dropped connection, and the server exits 0."""
    running = ServeProcess(session_cache / "prefill-server.log")
    warm = httpx.post(f"{running.url}/api/generate", timeout=60, json={
        "model": "smollm2:135m", "prompt": "hi", "stream": False,
        "options": {"num_predict": 1}})
    assert warm.status_code == 200
    answers: list[httpx.Response] = []
    long_prompt = "Count the words of this text. " + "lorem ipsum dolor sit amet " * 600
    reader = threading.Thread(target=lambda: answers.append(httpx.post(
        f"{running.url}/api/generate", timeout=120, json={
            "model": "smollm2:135m", "prompt": long_prompt, "stream": False,
            "options": {"num_predict": 8}})))
    reader.start()
    time.sleep(1.0)  # reading 6,000 tokens takes seconds on this model
    running.process.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    reader.join(timeout=60)
    [answer] = answers
    assert answer.status_code == 503 and "shutting down" in error_message(answer)
    assert answer.headers["Retry-After"]
    assert running.process.wait(timeout=30) == 0
    assert time.monotonic() - stopped_at < 10
