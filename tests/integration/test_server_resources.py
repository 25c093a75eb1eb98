"""What a hostile client cannot take from ``adam serve``: its connections (slowloris, idle
sockets by the thousand), its memory (a template that builds gigabytes, a body of
millions of tiny values), its disk (uploads past a limit or a free-space reserve), and
its files (an upload cut off by a shutdown, a crash's leftovers). Each case once took the
server down or left files behind (issue 38); each test runs a real ``adam serve`` on
loopback with tight limits, and checks it still answers afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import wait_until
from tests.integration.conftest import ServeProcess

CHAT = "smollm2:135m"
UPLOAD_LIMIT = 200_000  # bytes: --max-upload-gb below
HEADER_TIMEOUT = 1.0
MAX_CONNECTIONS = 20


@pytest.fixture(scope="module")
def tight(session_cache, tmp_path_factory) -> Iterator[tuple[ServeProcess, Path]]:
    """A server with tight limits and a model store of its own; the store's blobs folder
    is given with it."""
    home = tmp_path_factory.mktemp("tight")
    running = ServeProcess(
        session_cache / "tight-server.log", "--max-tokens", "4", "--request-timeout", "3",
        "--max-prompt-chars", "20000", "--header-timeout", str(HEADER_TIMEOUT),
        "--body-timeout", "1", "--max-connections", str(MAX_CONNECTIONS),
        "--max-upload-gb", str(UPLOAD_LIMIT / 1024**3), "--min-free-gb", "0",
        env={"ADAM_CACHE_DIR": str(home / "cache"), "OLLAMA_MODELS": str(home / "ollama")})
    warm = _chat(running, CHAT, [{"role": "user", "content": "hi"}])
    assert warm.status_code == 200, warm.text  # loaded: memory is measured from here
    yield running, home / "ollama" / "blobs"
    assert running.stop() == 0


def _rss(process: subprocess.Popen, field: str = "VmRSS") -> int:
    """The server's resident memory now (``VmHWM``: its peak so far), in bytes."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


def _memory_now(process: subprocess.Popen) -> int:
    """The server's memory now, its peak reset to it (Linux: ``clear_refs`` 5)."""
    Path(f"/proc/{process.pid}/clear_refs").write_text("5")
    return _rss(process)


def _peak_within(running: ServeProcess, before: int, limit: float, what: str) -> None:
    """The server's peak memory rose less than ``limit`` bytes above ``before``
    (``_memory_now``); both are printed, for the record."""
    peak = max(0, _rss(running.process, "VmHWM") - before)
    print(f"\n{what}: server memory {before / 1e6:.0f} MB, its peak +{peak / 1e6:.0f} MB")
    assert peak < limit, f"{what}: the server's peak rose by {peak / 1e6:.0f} MB"


def _refused_for_its_template(answer: httpx.Response) -> None:
    assert answer.status_code == 400, answer.text
    assert "chat template" in answer.json()["error"]


def _alive(running: ServeProcess) -> None:
    assert running.process.poll() is None, running.log.read_text()[-3000:]
    assert httpx.get(f"{running.url}/api/version", timeout=30).status_code == 200


def _raw(url: str, request: bytes, *, pause: float = 0.0, rest: bytes = b"") -> bytes:
    """``request`` sent on a socket of its own (then ``rest`` after ``pause`` seconds);
    everything the server answers until it closes the connection."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        if pause:
            time.sleep(pause)
            with contextlib.suppress(OSError):  # closed by the server meanwhile
                sock.sendall(rest)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def _json_of(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


# -- connections ----------------------------------------------------------------------------
def test_a_client_trickling_its_headers_gets_408_and_is_closed(tight):
    running, _ = tight
    started = time.monotonic()
    answer = _raw(running.url, b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n",
                  pause=HEADER_TIMEOUT * 3, rest=b"X-Slow: 1\r\n")
    status, body = _json_of(answer)
    assert status == 408 and "--header-timeout" in body["error"]["message"]  # OpenAI's
    assert time.monotonic() - started < 30  # closed, not held


def test_thousands_of_idle_connections_never_lock_out_a_prompt_client(tight):
    """Past --max-connections, the connection waiting longest for its request is closed:
    300 half-sent requests take no place from a client that asks at once."""
    running, _ = tight
    host, port = running.url.removeprefix("http://").split(":")
    idle = []
    try:
        for _ in range(300):
            sock = socket.create_connection((host, int(port)), timeout=30)
            sock.sendall(b"GET /api/version HTTP/1.1\r\n")  # and never the rest
            idle.append(sock)
        for _ in range(5):
            assert httpx.get(f"{running.url}/api/version", timeout=30).status_code == 200
    finally:
        for sock in idle:
            sock.close()
    _alive(running)


def test_the_file_limit_is_raised_to_the_hard_limit_at_start(tight):
    running, _ = tight
    limits = Path(f"/proc/{running.process.pid}/limits").read_text()
    [line] = [line for line in limits.splitlines() if line.startswith("Max open files")]
    soft, hard = line.split()[3:5]
    assert soft == hard, line


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
@pytest.mark.parametrize("headers", [
    b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
], ids=["length-and-chunked", "two-lengths", "bad-chunk-size"])
def test_malformed_http_gets_a_400_in_the_routes_shape(tight, path, headers):
    running, _ = tight
    answer = _raw(running.url, b"POST " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
                  + headers)
    status, body = _json_of(answer)
    assert status == 400
    message = body["error"]["message"] if path.startswith("/v1") else body["error"]
    assert "invalid HTTP request" in message
    _alive(running)


def test_a_client_pausing_mid_body_gets_408(tight):
    running, _ = tight
    answer = _raw(running.url, b"POST /api/chat HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mo",
                  pause=3, rest=b"del\": 1}")
    status, body = _json_of(answer)
    assert status == 408 and "--body-timeout" in body["error"]


# -- memory -----------------------------------------------------------------------------------
def test_millions_of_tiny_values_are_refused_before_they_are_read(tight):
    """11 million empty arrays in 31 MiB froze every connection for 10 s and took 2.2 GB;
    they are counted first now."""
    running, _ = tight
    body = b'{"model": "smollm2:135m", "a": [' + b",".join([b"[]"] * 11_000_000) + b"]}"
    before = _memory_now(running.process)
    answers: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: answers.append(httpx.post(
        f"{running.url}/api/chat", content=body, timeout=120)))
    sender.start()
    while sender.is_alive():  # the others are answered meanwhile
        assert httpx.get(f"{running.url}/api/version", timeout=60).status_code == 200
        time.sleep(0.05)
    sender.join()
    assert answers[0].status_code == 400 and "values" in answers[0].json()["error"]
    _peak_within(running, before, 400e6, "an 11-million-value body")


TEMPLATE_BOMBS = {
    # never in the sample conversations a template is tried on at create time...
    "text": "{% if messages | length > 6 %}{{ messages[0].content * 100000000 }}{% endif %}"
            "{% for m in messages %}{{ m.content }}{% endfor %}",
    "time": "{% if messages | length > 6 %}{% for i in range(100000) %}{% for j in "
            "range(100000) %}{% endfor %}{% endfor %}{% endif %}"
            "{% for m in messages %}{{ m.content }}{% endfor %}",
}
LONG_CONVERSATION = [{"role": "user", "content": f"turn {i}"} for i in range(7)]


def _create_with_template(running: ServeProcess, name: str, template: str) -> httpx.Response:
    return httpx.post(f"{running.url}/api/create", timeout=120, json={
        "model": name, "from": CHAT, "template": template, "stream": False})


def _chat(running: ServeProcess, model: str, messages: list[dict]) -> httpx.Response:
    return httpx.post(f"{running.url}/api/chat", timeout=120,
                      json={"model": model, "messages": messages, "stream": False})


def test_a_template_that_builds_gigabytes_is_refused_when_created(tight):
    running, _ = tight
    before = _memory_now(running.process)
    jinja = "{% for m in messages %}{{ m.content }}{% endfor %}"  # not Ollama's Go dialect
    for name, template in (("bomb-size", '{{ "a" * 100000000 }}' + jinja),
                           ("bomb-time", "{% for i in range(100000) %}{% for j in "
                                         "range(100000) %}{% endfor %}{% endfor %}" + jinja),
                           ("bomb-recursion", "{% macro f(n) %}{{ f(n) }}{% endmacro %}"
                                              "{{ f(1) }}" + jinja)):
        _refused_for_its_template(_create_with_template(running, name, template))
    _peak_within(running, before, 200e6, "template bombs at create")
    _alive(running)


@pytest.mark.parametrize("kind", TEMPLATE_BOMBS)
def test_a_template_that_explodes_on_some_conversations_is_held_per_request(tight, kind):
    """Created (the samples never trigger it), then asked with a long conversation: a 400
    within the request's time limit, the server's memory bounded, other requests served."""
    running, _ = tight
    name = f"bomb-later-{kind}"
    made = _create_with_template(running, name, TEMPLATE_BOMBS[kind])
    assert made.status_code == 200, made.text
    short = _chat(running, name, LONG_CONVERSATION[:2])
    assert short.status_code == 200, short.text  # loaded; it works for what it can do
    before = _memory_now(running.process)
    started = time.monotonic()
    _refused_for_its_template(_chat(running, name, LONG_CONVERSATION))
    _peak_within(running, before, 200e6, f"template bomb ({kind}) per request, refused in "
                 f"{time.monotonic() - started:.1f} s")
    _alive(running)


# -- disk -------------------------------------------------------------------------------------
def _partials(blobs: Path) -> list[str]:
    return sorted(p.name for p in blobs.glob(".*")) if blobs.is_dir() else []


def test_an_upload_over_the_limit_is_a_413_and_leaves_nothing(tight):
    running, blobs = tight
    data = os.urandom(UPLOAD_LIMIT + 1)
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    declared = httpx.post(f"{running.url}/api/blobs/{digest}", content=data, timeout=60)
    assert declared.status_code == 413 and "--max-upload-gb" in declared.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it comes
        for start in range(0, len(data), 50_000):
            yield data[start:start + 50_000]

    streamed = httpx.post(f"{running.url}/api/blobs/{digest}", content=chunks(), timeout=60)
    assert streamed.status_code == 413 and "--max-upload-gb" in streamed.json()["error"]
    assert _partials(blobs) == []
    assert httpx.head(f"{running.url}/api/blobs/{digest}").status_code == 404


def test_an_upload_that_would_fill_the_disk_is_a_507(session_cache, tmp_path):
    home = tmp_path / "store"
    running = ServeProcess(session_cache / "full-disk-server.log", "--min-free-gb",
                           str(10**9), env={"OLLAMA_MODELS": str(home),
                                            "ADAM_CACHE_DIR": str(tmp_path / "cache")})
    try:
        data = b"weights" * 1000
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        answer = httpx.post(f"{running.url}/api/blobs/{digest}", content=data, timeout=60)
        assert answer.status_code == 507 and "--min-free-gb" in answer.json()["error"]
        assert _partials(home / "blobs") == []
    finally:
        assert running.stop() == 0


def test_a_shutdown_mid_upload_answers_503_and_removes_the_upload(session_cache, tmp_path):
    """SIGTERM while a client is still sending a blob: the upload counts in the drain, is
    cut with a 503 in Ollama's shape, and its temporary file is removed; the process exits
    0. A crash's leftover from a process that is gone is swept at the next start; a live
    process's file and the user's own files are left alone."""
    blobs = tmp_path / "store" / "blobs"
    blobs.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = blobs / f".sha256-{'0' * 64}.partial-{dead}-abc123"
    stale.write_bytes(b"half an upload from a crash")
    live = blobs / f".sha256-{'1' * 64}.partial-{os.getpid()}-def456"
    live.write_bytes(b"another server's upload in progress")
    running = ServeProcess(session_cache / "drain-upload-server.log",
                           env={"OLLAMA_MODELS": str(tmp_path / "store"),
                                "ADAM_CACHE_DIR": str(tmp_path / "cache")})
    assert not stale.exists() and live.exists()  # swept at start
    sent = threading.Event()

    def slowly() -> Iterator[bytes]:
        for _ in range(200):
            yield b"x" * 65536
            sent.set()
            time.sleep(0.05)

    answers: list[httpx.Response] = []
    uploader = threading.Thread(target=lambda: answers.append(httpx.post(
        f"{running.url}/api/blobs/sha256:{'2' * 64}", content=slowly(), timeout=60)))
    uploader.start()
    assert sent.wait(30)
    assert wait_until(lambda: any(p.name.startswith(".sha256-2") for p in blobs.iterdir()))
    running.process.send_signal(signal.SIGTERM)
    uploader.join(60)
    assert answers and answers[0].status_code == 503, answers
    assert "shutting down" in answers[0].json()["error"]  # Ollama's shape
    assert running.process.wait(30) == 0
    assert sorted(p.name for p in blobs.iterdir()) == [live.name]


# -- metrics ----------------------------------------------------------------------------------
def test_metrics_label_routes_by_template_and_count_a_client_gone_as_499(tight):
    running, _ = tight
    httpx.head(f"{running.url}/api/blobs/sha256:{'3' * 64}")
    httpx.get(f"{running.url}/v1/models/{CHAT}")
    port = int(running.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /api/chat HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{")
        time.sleep(0.3)  # the client goes away mid-body
    time.sleep(0.5)
    exposition = httpx.get(f"{running.url}/metrics").text
    assert 'route="/api/blobs/{digest}"' in exposition
    assert 'route="/v1/models/{model}"' in exposition
    assert any('route="/api/chat"' in line and 'status="499"' in line
               for line in exposition.splitlines()), exposition
    assert "Exception in ASGI application" not in running.log.read_text()
