"""A hostile client against a live ``adam serve`` (the embedded models, at most 4 generated
tokens per request): the requests that once crashed it or got a 500, then a seeded,
bounded fuzz over every route. After every request the server must still be running, the
answer below 500, and an error in the route's own shape (OpenAI's error object on
``/v1``, Ollama's ``{"error"}`` elsewhere); at the end it still answers normally.

The fuzz derives its requests from a ``random.Random(SEED)``: the same requests every
run. Each starts from a valid body for its route and replaces one to three fields (known
ones, from the wire modules' field tables, and unknown ones) with values from a pool of
what hostile clients send: wrong types, huge and negative numbers, empty and blank texts,
lone surrogates, deep nesting, control characters, long strings.
"""

from __future__ import annotations

import hashlib
import json
import random
import stat
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adam_integrations.server.dialects import dialect_of
from adam_integrations.server.openapi import operations
from adam_integrations.wire import anthropic as anthropic_wire
from adam_integrations.wire import ollama as ollama_wire
from adam_integrations.wire import openai as openai_wire
from adam_integrations.wire import openai_responses as responses_wire
from adam_integrations.wire import rerank as rerank_wire
from adam_integrations.wire.request import WireRequest
from tests.integration.conftest import ServeProcess

SEED = 20261206
FUZZED_PER_ROUTE = 20
"""The bounded budget every run (CI included); ``make test-slow`` adds ``AT_LENGTH``."""
FUZZED_PER_ROUTE_AT_LENGTH = 300
CHAT, EMBED = "smollm2:135m", "all-minilm:l6-v2"
HELLO = [{"role": "user", "content": "Say hi."}]

VALID: dict[str, dict[str, Any]] = {
    "/api/chat": {"model": CHAT, "messages": HELLO, "stream": False},
    "/api/generate": {"model": CHAT, "prompt": "Say hi.", "stream": False},
    "/api/embed": {"model": EMBED, "input": ["a", "b"]},
    "/api/embeddings": {"model": EMBED, "prompt": "a"},
    "/api/show": {"model": CHAT},
    "/api/pull": {"model": CHAT, "stream": False},
    "/api/copy": {"source": CHAT, "destination": "hostile-copy:latest"},
    "/api/delete": {"model": "hostile-copy:latest"},
    "/api/create": {"model": "hostile-made", "from": CHAT, "stream": False},
    "/v1/chat/completions": {"model": CHAT, "messages": HELLO},
    "/v1/completions": {"model": CHAT, "prompt": "Say hi."},
    "/v1/embeddings": {"model": EMBED, "input": ["a", "b"]},
    "/v1/responses": {"model": CHAT, "input": "Say hi.", "max_output_tokens": 4},
    "/v1/messages": {"model": CHAT, "max_tokens": 4, "messages": HELLO},
    "/v1/messages/count_tokens": {"model": CHAT, "messages": HELLO},
    "/tokenize": {"model": CHAT, "prompt": "Say hi."},
    "/detokenize": {"model": CHAT, "tokens": [1, 2]},
    **{path: {"model": CHAT, "query": "Say hi.", "documents": ["hi", "bye"]}
       for path in ("/v1/rerank", "/rerank", "/v2/rerank", "/api/rerank")},
}
REQUESTS: dict[str, type[WireRequest]] = {
    "/api/chat": ollama_wire.ChatRequest, "/api/generate": ollama_wire.GenerateRequest,
    "/api/embed": ollama_wire.EmbedRequest, "/api/embeddings": ollama_wire.EmbeddingsRequest,
    "/api/show": ollama_wire.ShowRequest, "/api/pull": ollama_wire.PullRequest,
    "/api/copy": ollama_wire.CopyRequest, "/api/delete": ollama_wire.DeleteRequest,
    "/api/create": ollama_wire.CreateRequest,
    "/v1/chat/completions": openai_wire.ChatCompletionRequest,
    "/v1/completions": openai_wire.CompletionRequest,
    "/v1/embeddings": openai_wire.EmbeddingRequest,
    "/v1/responses": responses_wire.ResponsesRequest,
    "/v1/messages": anthropic_wire.MessagesRequest,
    "/v1/messages/count_tokens": anthropic_wire.CountTokensRequest,
    "/tokenize": openai_wire.TokenizeRequest, "/detokenize": openai_wire.DetokenizeRequest,
    **{path: rerank_wire.RerankRequest
       for path in ("/v1/rerank", "/rerank", "/v2/rerank", "/api/rerank")},
}
FIELDS: dict[str, list[str]] = {path: [*request.json_schema()["properties"], "name"]
                                for path, request in REQUESTS.items()}
UNKNOWN_FIELDS = ["options", "num_ctx", "context", "template", "logit_bias", "x"]


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


HOSTILE_VALUES: list[Any] = [
    None, True, False, 0, -1, -5, 1, 2**31, 2**64, 10**400, -(10**400), 1e300, -1e300, 0.5,
    "", " ", "\u0000", "\ud800", "x" * 5000, "../../etc/passwd", "hf:a/..", "\u202e\u00e9",
    [], [""], ["", "hello"], [" "], [1, 2], [None], [{}], {}, {"type": "object"},
    {"role": "user"}, {"include_usage": "x"}, {"num_predict": -3, "temperature": "hot"},
    {"type": "json_schema", "json_schema": {"schema": {"type": "string", "pattern": "(?=a)"}}},
    [{"role": "user", "content": "\ud800"}], [{"role": "bot", "content": "hi"}],
    [{"role": "user", "content": [{"type": "image_url"}]}],
    [{"type": "function", "function": {"name": "f", "parameters": "x"}}],
    _nested(60), _nested(500), "1e12", "99999999999999h", "-1", "5m", "json", "low",
    {"type": "array", "minItems": 100000}, {"type": "string", "minLength": 10**9},
    {"$ref": "#"}, {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]},
    {"enum": []}, {"type": "string", "pattern": "(a+)+$"},
    [{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": 5}}]}],
    [{"role": "tool", "content": "x", "tool_call_id": "c1"}],
    [{"type": "function", "function": {"name": "f", "parameters": {"$ref": "#"}}}],
    # chat templates that build gigabytes, run for hours or recurse without end
    '{{ "a" * 100000000 }}', "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    {"stop": 5}, {"temperature": "hot"},
]


def _hostile_body(rng: random.Random, path: str) -> dict[str, Any]:
    body = json.loads(json.dumps(VALID[path]))
    for _ in range(rng.randint(1, 3)):
        field = rng.choice([*FIELDS[path], *UNKNOWN_FIELDS])
        body[field] = rng.choice(HOSTILE_VALUES)
    if path == "/api/copy" and rng.random() < 0.5:
        body["destination"] = f"hostile-{rng.randrange(10)}:latest"
    return body


def _methods(path: str) -> list[str]:
    return [method.upper() for method in operations()[path]]


def _send(server: str, method: str, path: str, content: bytes | None = None,
          headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.request(method, f"{server}{path}", content=content, timeout=120,
                         headers={"Content-Type": "application/json", **(headers or {})})


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=True).encode()  # "\ud800" stays an escape


statuses: Counter[int] = Counter()


@pytest.fixture(scope="module")
def hostile(session_cache, tmp_path_factory, request) -> Iterator[tuple[str, ServeProcess]]:
    own_cache = tmp_path_factory.mktemp("hostile-cache")  # its aliases are its own
    running = ServeProcess(session_cache / "hostile-server.log", "--max-tokens", "4",
                           "--request-timeout", "60",
                           env={"ADAM_CACHE_DIR": str(own_cache)})
    yield running.url, running
    assert running.stop() == 0
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # printed in a passing run too
        print(f"\nhostile client: {sum(statuses.values())} requests, statuses "
              f"{dict(sorted(statuses.items()))}")


def _check(response: httpx.Response, running: ServeProcess, what: str) -> None:
    """The server is alive, the answer below 500, an error in the route's shape."""
    statuses[response.status_code] += 1
    assert running.process.poll() is None, f"the server died on {what}"
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400 and response.request.method != "HEAD":  # HEAD: no body
        body = response.json()
        dialect = dialect_of(response.request.url.path).name
        if dialect == "anthropic":
            assert body["type"] == "error" and body["error"]["message"], body
        elif dialect == "openai":
            assert set(body["error"]) == {"message", "type", "param", "code"}, body
            assert body["error"]["message"], body
        else:
            assert set(body) == {"error"} and isinstance(body["error"], str), body


# -- the requests that once crashed the server or got a 500 ------------------------------
@pytest.mark.parametrize("inputs", [["", "hello"], "", ["hello", ""], [""], [" "]],
                         ids=["empty-first", "empty", "empty-last", "only-empty", "blank"])
@pytest.mark.parametrize("route", ["/v1/embeddings", "/api/embed"])
def test_empty_texts_to_embed_never_reach_a_native_library(hostile, route, inputs):
    server, running = hostile
    for model in (CHAT, EMBED):  # the GGUF on llama.cpp, MiniLM on transformers
        response = _send(server, "POST", route, _json_bytes({"model": model, "input": inputs}))
        _check(response, running, f"{route} {model} {inputs!r}")
        if response.status_code == 200:
            body = response.json()
            vectors = body["embeddings"] if route == "/api/embed" else [
                item["embedding"] for item in body["data"]]
            wanted = 0 if inputs == "" and route == "/api/embed" else (
                1 if isinstance(inputs, str) else len(inputs))
            assert len(vectors) == wanted and all(len(v) > 0 for v in vectors)
        else:
            assert response.status_code == 400 and model == CHAT


def test_an_endless_keep_alive_never_breaks_the_model_list(hostile):
    server, running = hostile
    for keep_alive in (1e300, 1e12, "99999999999999h", 10**400):
        response = _send(server, "POST", "/api/generate", _json_bytes(
            {"model": CHAT, "prompt": "hi", "stream": False, "keep_alive": keep_alive}))
        _check(response, running, f"keep_alive {keep_alive!r}")
        listed = _send(server, "GET", "/api/ps")
        _check(listed, running, "/api/ps")
        assert listed.status_code == 200 and listed.json()["models"]


@pytest.mark.parametrize("path", [path for path, methods in operations().items()
                                  if set(methods) & {"post", "delete"} and "{" not in path])
def test_deep_nesting_and_lone_surrogates_are_400s(hostile, path):
    server, running = hostile
    method = _methods(path)[0]
    deep = b'{"model": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    _check(response := _send(server, method, path, deep), running, f"{path} deep")
    assert response.status_code == 400
    field = {"/api/copy": "destination", "/api/delete": "model",
             "/api/create": "system"}.get(path, "query" if "rerank" in path else "prompt")
    lone = json.loads(json.dumps(VALID[path]))
    lone[field] = "\ud800"
    if "messages" in lone:
        lone["messages"] = [{"role": "user", "content": "\ud800"}]
    if "input" in lone:
        lone["input"] = ["\ud800"] if path != "/v1/responses" else "\ud800"
    _check(response := _send(server, method, path, _json_bytes(lone)), running,
           f"{path} surrogate")
    assert response.status_code == 400 and "surrogate" in response.text


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_a_stream_options_that_is_not_an_object_is_a_400(hostile, path):
    server, running = hostile
    body = {**VALID[path], "stream": True, "stream_options": "x"}
    _check(response := _send(server, "POST", path, _json_bytes(body)), running, path)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "stream_options"


def test_bodies_that_are_not_json_objects_are_400s(hostile):
    server, running = hostile
    for raw in (b"", b"null", b"[]", b'"x"', b"{", b"\xff\xfe", b'{"model": NaN}',
                b'{"model": Infinity}', b"{}" * 3):
        for path in ("/api/chat", "/v1/chat/completions", "/api/embed"):
            _check(response := _send(server, "POST", path, raw), running, f"{path} {raw!r}")
            assert response.status_code == 400


def test_blob_uploads_are_checked_against_their_digest(hostile):
    server, running = hostile
    data = b"not really a model"
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    for bad in ("sha256:zz", "md5:" + "0" * 32, "sha256:" + "0" * 63, "../../etc"):
        _check(response := _send(server, "POST", f"/api/blobs/{bad}", data), running, bad)
        assert response.status_code in (400, 404)
    _check(missing := _send(server, "HEAD", f"/api/blobs/{digest}"), running, "HEAD")
    assert missing.status_code == 404
    wrong = f"sha256:{hashlib.sha256(b'other').hexdigest()}"
    _check(response := _send(server, "POST", f"/api/blobs/{wrong}", data), running, "wrong")
    assert response.status_code == 400 and "digest mismatch" in response.json()["error"]
    _check(response := _send(server, "HEAD", f"/api/blobs/{wrong}"), running, "HEAD wrong")
    assert response.status_code == 404  # nothing of the mismatched upload was kept
    _check(response := _send(server, "POST", f"/api/blobs/{digest}", data), running, "ok")
    assert response.status_code == 201
    assert _send(server, "HEAD", f"/api/blobs/{digest}").status_code == 200
    made = _send(server, "POST", "/api/create", _json_bytes({
        "model": "not-a-model", "files": {"x.gguf": digest}, "stream": False}))
    _check(made, running, "create from a blob that is not a GGUF")
    assert made.status_code == 422 and "not a GGUF" in made.json()["error"]


def test_a_wrong_method_gets_405_with_allow(hostile):
    server, running = hostile
    for method, path in (("GET", "/api/chat"), ("POST", "/api/tags"),
                         ("PUT", "/v1/chat/completions"), ("GET", "/api/delete")):
        _check(response := _send(server, method, path), running, f"{method} {path}")
        assert response.status_code == 405 and response.headers["Allow"]


# -- the seeded fuzz -----------------------------------------------------------------------
@pytest.mark.parametrize("path", list(VALID))
def test_fuzzed_requests_never_get_a_server_error(hostile, path):
    _fuzz(hostile, path, random.Random(f"{SEED}{path}"), FUZZED_PER_ROUTE)


@pytest.mark.slow
@pytest.mark.parametrize("path", list(VALID))
def test_fuzzed_requests_never_get_a_server_error_at_length(hostile, path):
    """Fifteen times the budget, from another seed (``make test-slow``)."""
    _fuzz(hostile, path, random.Random(f"{SEED + 1}{path}"), FUZZED_PER_ROUTE_AT_LENGTH)


def _fuzz(hostile, path: str, rng: random.Random, count: int) -> None:
    server, running = hostile
    for _ in range(count):
        body = _hostile_body(rng, path)
        response = _send(server, _methods(path)[0], path, _json_bytes(body))
        _check(response, running, f"{path} {json.dumps(body)[:300]}")


def test_the_server_still_answers_afterwards(hostile):
    server, _ = hostile
    assert sum(statuses.values()) >= len(VALID) * FUZZED_PER_ROUTE, statuses  # all were sent
    answer = httpx.post(f"{server}/api/chat", timeout=60, json=VALID["/api/chat"])
    assert answer.status_code == 200 and answer.json()["done"] is True
    assert answer.json()["eval_count"] <= 4


# -- round two (issue 38): what still got a 500 -------------------------------------------
JSON_ROUTES = [path for path, methods in operations().items()
               if set(methods) & {"post", "delete"} and "{" not in path]


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_a_lone_surrogate_in_a_key_is_a_400_whose_message_can_be_sent(hostile, path):
    server, running = hostile
    raw = b'{"model": "smollm2:135m", "\\ud800x": 1, "messages": []}'
    _check(response := _send(server, _methods(path)[0], path, raw), running, path)
    assert response.status_code == 400
    assert "\\ud800" in response.text and "surrogate" in response.text  # escaped, sent


@pytest.mark.parametrize("schema", [True, False, 5, "json", []])  # null: left out
def test_a_json_schema_that_is_no_object_is_a_400(hostile, schema):
    server, running = hostile
    body = {**VALID["/v1/chat/completions"], "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}
    _check(response := _send(server, "POST", "/v1/chat/completions", _json_bytes(body)),
           running, f"schema {schema!r}")
    assert response.status_code == 400 and "response_format" in response.text


def _upload(server: str, data: bytes) -> str:
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    assert httpx.post(f"{server}/api/blobs/{digest}", content=data).status_code in (200, 201)
    return digest


def test_a_gguf_with_arrays_nested_thousands_deep_is_refused_at_create(hostile, tmp_path):
    from tests.integration.test_gguf_header import nested_array_gguf

    server, running = hostile
    nested_array_gguf(tmp_path / "deep.gguf", 5000)
    digest = _upload(server, (tmp_path / "deep.gguf").read_bytes())
    made = _send(server, "POST", "/api/create", _json_bytes({
        "model": "deep-arrays", "files": {"deep.gguf": digest}, "stream": False}))
    _check(made, running, "create from a GGUF nested 5,000 deep")
    assert made.status_code == 422 and "nested more than 4 deep" in made.json()["error"]


@pytest.mark.parametrize("parameters, named", [
    ({"stop": 5}, "stop"), ({"temperature": "hot"}, "temperature"),
    ({"temperature": -1}, "temperature"), ({"num_ctx": "big"}, "num_ctx"),
    ({"top_k": 2.5}, "top_k")])
def test_parameters_are_checked_at_create_as_options_are_in_requests(hostile, parameters,
                                                                    named):
    """Once accepted, {"stop": 5} made every later chat with the model a 500."""
    server, running = hostile
    made = _send(server, "POST", "/api/create", _json_bytes({
        "model": "bad-parameters", "from": CHAT, "parameters": parameters,
        "stream": False}))
    _check(made, running, f"create with {parameters}")
    assert made.status_code == 400 and named in made.json()["error"]
    listed = {m["name"] for m in _send(server, "GET", "/api/tags").json()["models"]}
    assert "bad-parameters:latest" not in listed  # nothing was written


def test_a_folder_where_a_blob_belongs_is_a_409_and_leaves_nothing(hostile):
    from adam_integrations.core.stores.ollama_store import ollama_store_roots

    server, running = hostile
    data = b"a blob whose place is taken"
    hexdigest = hashlib.sha256(data).hexdigest()
    blobs = ollama_store_roots()[0] / "blobs"
    (blobs / f"sha256-{hexdigest}").mkdir(parents=True)
    before = set(blobs.iterdir())
    response = _send(server, "POST", f"/api/blobs/sha256:{hexdigest}", data)
    _check(response, running, "upload onto a folder")
    assert response.status_code == 409 and "folder" in response.json()["error"]
    assert set(blobs.iterdir()) == before  # no temporary file left


def test_create_never_replaces_a_model_someone_else_put_in_the_store(hostile,
                                                                     chat_gguf_path):
    """A model ``ollama pull`` left (no adam marker, mode 0600): create is a 409 naming
    how to replace it on purpose, delete is refused; with overwrite it is replaced and
    its manifest keeps its mode."""
    from adam_integrations.sharing.ollama_share import share_gguf

    server, running = hostile
    shared = share_gguf(chat_gguf_path, "pulled-model:latest")  # not made by create
    shared.manifest.chmod(0o600)
    before = shared.manifest.read_bytes()
    body = {"model": "pulled-model", "from": CHAT, "system": "Be terse.", "stream": False}
    _check(made := _send(server, "POST", "/api/create", _json_bytes(body)), running,
           "create over a pulled model")
    assert made.status_code == 409 and "overwrite" in made.json()["error"]
    assert shared.manifest.read_bytes() == before
    _check(gone := _send(server, "DELETE", "/api/delete", _json_bytes(
        {"model": "pulled-model"})), running, "delete a pulled model")
    assert gone.status_code == 400 and shared.manifest.read_bytes() == before
    _check(replaced := _send(server, "POST", "/api/create", _json_bytes(
        {**body, "overwrite": True})), running, "create with overwrite")
    assert replaced.status_code == 200 and shared.manifest.read_bytes() != before
    assert stat.S_IMODE(shared.manifest.stat().st_mode) == 0o600


def test_no_answer_names_the_servers_own_folders(hostile, tmp_path):
    from pathlib import Path

    from adam_integrations.core.stores.ollama_store import ollama_store_roots

    server, running = hostile
    roots = [str(Path.home()), str(ollama_store_roots()[0])]
    shown = _send(server, "POST", "/api/show", _json_bytes({"model": CHAT}))
    _check(shown, running, "show")
    assert shown.status_code == 200 and shown.json()["modelfile"]
    assert not any(root in shown.text for root in roots), shown.text[:500]
    assert f"FROM {CHAT}" in shown.json()["modelfile"]
    data = b"GGUF" + b"\0" * 40  # a blob that is a broken GGUF: a 422 names no folder
    digest = _upload(server, data)
    made = _send(server, "POST", "/api/create", _json_bytes({
        "model": "broken-gguf", "files": {"x.gguf": digest}, "stream": False}))
    _check(made, running, "create from a broken GGUF")
    assert made.status_code == 422
    assert not any(root in made.text for root in roots), made.text
