"""schemathesis against a live ``adam serve`` on loopback (the embedded models, an API key,
at most 4 generated tokens per request): requests generated from the server's own
``/openapi.json``, valid and invalid ones, a bounded number per route. Every answer must
be below 500, every error in the route's shape (``server.errors``), and the server must
still answer a normal request afterwards. The counts per route and status are printed
at the end of the run (and written to ``<session cache>/fuzz-report.json``)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from adam_integrations.server.errors import is_openai_route
from adam_integrations.server.openapi import OPERATIONS
from tests.integration.conftest import ServeProcess

KEY = "sk-fuzz"
AUTH = {"Authorization": f"Bearer {KEY}"}
EXAMPLES_PER_ROUTE = 25
"""The bounded budget every run (CI included); ``make test-slow`` adds ``AT_LENGTH``."""
EXAMPLES_PER_ROUTE_AT_LENGTH = 300
CHAT_MODEL, EMBEDDER = "smollm2:135m", "all-minilm:l6-v2"
ROUTES = [(method.upper(), path) for path, methods in OPERATIONS.items() for method in methods]

counts: defaultdict[str, Counter[int]] = defaultdict(Counter)


@pytest.fixture(scope="module")
def fuzzed_server(session_cache, tmp_path_factory, request) -> Iterator[str]:
    own_cache = tmp_path_factory.mktemp("fuzz-cache")  # its aliases are its own
    running = ServeProcess(session_cache / "fuzz-server.log", "--api-key", KEY,
                           "--max-tokens", "4", "--request-timeout", "60",
                           env={"ADAM_CACHE_DIR": str(own_cache)})
    yield running.url
    assert running.stop() == 0  # drained
    report = {route: dict(sorted(statuses.items())) for route, statuses in sorted(
        counts.items())}
    (session_cache / "fuzz-report.json").write_text(json.dumps(report, indent=2))
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        terminal.write_line("\nschemathesis requests per route (status: count):")
        for route, statuses in report.items():
            terminal.write_line(f"  {route}: {statuses}")


@pytest.fixture(scope="module")
def api_schema(fuzzed_server):
    return schemathesis.openapi.from_url(f"{fuzzed_server}/openapi.json", headers=AUTH)


def errors_come_in_the_routes_shape(ctx, response, case) -> None:
    """Every 4xx/5xx answer is OpenAI's error object on ``/v1`` (and vLLM's tokenizer
    routes), Ollama's ``{"error": "<what went wrong>"}`` elsewhere."""
    counts[f"{case.method.upper()} {case.path}"][response.status_code] += 1
    if response.status_code < 400 or case.method.upper() == "HEAD":  # HEAD has no body
        return
    body = json.loads(response.content)
    error = body.get("error") if isinstance(body, dict) else None
    if is_openai_route(case.path):  # OpenAI's and Anthropic's objects both have message
        error = error.get("message") if isinstance(error, dict) else None
    if not (isinstance(error, str) and error):
        raise AssertionError(f"error body not in the route's shape: {response.content!r}")


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_no_request_gets_a_server_error(api_schema, fuzzed_server, method, path):
    """Valid and invalid requests mixed (schemathesis' positive and negative modes), three
    in four of them naming a served model (a random name stops at the name check: the
    generation, embedding and option paths are what needs fuzzing). (Driven through
    hypothesis directly: schemathesis' pytest plugin does not run on pytest 9 yet.)"""
    _fuzz(api_schema, fuzzed_server, method, path, EXAMPLES_PER_ROUTE)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_no_request_gets_a_server_error_at_length(api_schema, fuzzed_server, method, path):
    """Twelve times the budget (``make test-slow``)."""
    _fuzz(api_schema, fuzzed_server, method, path, EXAMPLES_PER_ROUTE_AT_LENGTH)


def _fuzz(api_schema, fuzzed_server: str, method: str, path: str, examples: int) -> None:
    operation = api_schema[path][method]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                      operation.as_strategy(GenerationMode.NEGATIVE))

    model = EMBEDDER if "embed" in path else CHAT_MODEL
    field = "source" if path == "/api/copy" else "model"

    @given(case=cases, served=st.sampled_from([True, True, True, False]))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def requests_from_the_schema(case, served) -> None:
        if served and isinstance(case.body, dict) and field in case.body:
            case.body[field] = model
            if path == "/api/copy" and "destination" in case.body:
                case.body["destination"] = "fuzz-copy:latest"
        case.call_and_validate(base_url=fuzzed_server, headers=AUTH, timeout=60,
                               checks=[not_a_server_error, status_code_conformance,
                                       content_type_conformance,
                                       response_schema_conformance,
                                       errors_come_in_the_routes_shape])

    requests_from_the_schema()


def test_the_server_still_answers_afterwards(fuzzed_server):
    assert counts, "the fuzzing test did not run"
    answer = httpx.post(f"{fuzzed_server}/api/chat", headers=AUTH, timeout=60, json={
        "model": "smollm2:135m", "stream": False, "keep_alive": "5m",
        "messages": [{"role": "user", "content": "Say hello."}]})
    assert answer.status_code == 200 and answer.json()["done"] is True
    assert answer.json()["eval_count"] <= 4  # the server's --max-tokens
    described = httpx.get(f"{fuzzed_server}/openapi.json", headers=AUTH).json()["paths"]
    fuzzed = {route.split(" ", 1)[1] for route in counts}
    assert fuzzed == set(described), set(described) ^ fuzzed
