"""schemathesis against a live ``adam serve`` on loopback (the embedded models, an API key,
at most 4 generated tokens per request), run as its users run it: its command line with
every phase (schema examples, boundary-value coverage, fuzzing, stateful sequences) and
every check it has (``--checks all``: no 5xx; statuses, content types, headers and
answers as described; a request valid by the description accepted, an invalid one
refused; authentication enforced), plus one of ours: every error in the route's own shape.
The run must report no failure, and the server must still answer and drain afterwards.

The rules of a request that JSON Schema cannot say (a blob's body must hash to its
digest, a tool choice must name one of the tools, what the served model cannot do) are
applied to the requests schemathesis generates as valid, in
``tests/integration/schemathesis_hooks.py``, each with its reason. The requests per route
and status are printed at the end of the run (and written to
``<session cache>/fuzz-report.json``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import ServeProcess

KEY = "sk-fuzz"
AUTH = {"Authorization": f"Bearer {KEY}"}
EXAMPLES_PER_ROUTE = 10
"""The fuzzing phase's budget every run (CI included); the coverage phase's boundary
values are a fixed set. ``make test-slow`` adds ``AT_LENGTH`` from another seed."""
EXAMPLES_PER_ROUTE_AT_LENGTH = 300
ROOT = Path(__file__).resolve().parents[2]

counts: defaultdict[str, Counter[int]] = defaultdict(Counter)


@pytest.fixture(scope="module")
def fuzzed_server(session_cache, tmp_path_factory, request) -> Iterator[str]:
    own_cache = tmp_path_factory.mktemp("fuzz-cache")  # its aliases are its own
    running = ServeProcess(session_cache / "fuzz-server.log", "--api-key", KEY,
                           "--max-tokens", "4", "--request-timeout", "60",
                           env={"ADAM_CACHE_DIR": str(own_cache),
                                "OLLAMA_MODELS": str(own_cache / "ollama")})
    yield running.url
    assert running.stop() == 0  # drained
    report = {route: dict(sorted(statuses.items())) for route, statuses in sorted(
        counts.items()) if set(statuses) != {405}}
    report["methods no route takes"] = dict(sum(
        (statuses for statuses in counts.values() if set(statuses) == {405}), Counter()))
    (session_cache / "fuzz-report.json").write_text(json.dumps(report, indent=2))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # printed in a passing run too
        print(f"\nschemathesis: {sum(map(sum, (c.values() for c in counts.values())))} "
              "requests (route: {status: count}):")
        for route, statuses in report.items():
            print(f"  {route}: {statuses}")


def _schemathesis(server: str, examples: int, seed: int, work: Path
                  ) -> subprocess.CompletedProcess[str]:
    """The schemathesis command line against ``server``, every phase and check."""
    recorded = work / "counts.txt"
    command = [str(Path(sys.executable).parent / "schemathesis"), "run",
               f"{server}/openapi.json", "--header", f"Authorization: Bearer {KEY}",
               "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
               "--max-examples", str(examples), "--seed", str(seed), "--workers", "1",
               "--request-timeout", "120", "--max-response-time", "120",
               "--no-color"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3000, cwd=work,
                          env={**os.environ, "PYTHONPATH": str(ROOT),
                               "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
                               "ADAM_FUZZ_COUNTS": str(recorded)})
    for line in recorded.read_text().splitlines() if recorded.exists() else []:
        method, path, status = line.split(" ")
        counts[f"{method} {path}"][int(status)] += 1
    return done


def test_every_phase_and_check_of_schemathesis_finds_nothing(fuzzed_server, tmp_path):
    done = _schemathesis(fuzzed_server, EXAMPLES_PER_ROUTE, 20261207, tmp_path)
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in done.stdout, done.stdout[-4000:]


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_every_phase_and_check_of_schemathesis_finds_nothing_at_length(fuzzed_server,
                                                                       tmp_path):
    """Thirty times the fuzzing budget, from another seed (``make test-slow``)."""
    done = _schemathesis(fuzzed_server, EXAMPLES_PER_ROUTE_AT_LENGTH, 20261208, tmp_path)
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]


def test_the_server_still_answers_afterwards(fuzzed_server):
    assert counts, "the fuzzing test did not run"
    answer = httpx.post(f"{fuzzed_server}/api/chat", headers=AUTH, timeout=60, json={
        "model": "smollm2:135m", "stream": False, "keep_alive": "5m",
        "messages": [{"role": "user", "content": "Say hello."}]})
    assert answer.status_code == 200 and answer.json()["done"] is True
    assert answer.json()["eval_count"] <= 4  # the server's --max-tokens
    described = httpx.get(f"{fuzzed_server}/openapi.json", headers=AUTH).json()["paths"]
    fuzzed = {path for method, path in (route.split(" ", 1) for route in counts)
              if method.lower() in described.get(path, {})}
    assert fuzzed == set(described) - {"/openapi.json"}, set(described) ^ fuzzed
