"""A bounded soak of ``adam serve``: N concurrent clients for a fixed time, each picking at
random (seeded) among well-formed work and the kinds of abuse a server left running
meets, against one ``adam serve`` subprocess with an API key (the embedded models).

    .venv/bin/python benchmarks/soak.py                       # 8 clients, 120 s
    .venv/bin/python benchmarks/soak.py --clients 16 --seconds 300

Kinds of request (the answer each must get; anything else counts as an error):

- ``stream``: ``/api/chat`` NDJSON, read to its ``done`` line (200, complete);
- ``openai_stream``: ``/v1/chat/completions`` SSE, read to ``[DONE]`` (200, complete);
- ``embed``: ``/api/embed`` of 8 texts (200, 8 vectors);
- ``disconnect``: a stream dropped after its second line (the server must carry on);
- ``malformed``: a body that is not JSON (400), or a message list that is not one (400);
- ``wrong_key``: a wrong or missing key (401);
- ``bad_origin``: a simple text/plain POST from another web origin (403);
- ``bad_name``: ``/api/copy`` to ``../../x`` (400).

Reported: requests by kind, errors by kind (the goal is 0 everywhere: a well-formed
request that fails and a refusal with the wrong status are both errors), any 5xx, the
server's resident memory after warm-up and after the soak (and once more after 5 idle
seconds), and a normal request answered at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter

import httpx
import psutil
from server_process import AdamServe  # benchmarks/, the script's own folder

KEY = "sk-soak"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT_MODEL, EMBEDDER = "smollm2:135m", "all-minilm:l6-v2"
KINDS = {"stream": 4, "openai_stream": 2, "embed": 2, "disconnect": 2, "malformed": 1,
         "wrong_key": 1, "bad_origin": 1, "bad_name": 1}


def _chat(index: int, tokens: int) -> dict:
    return {"model": CHAT_MODEL, "options": {"num_predict": tokens, "seed": index},
            "messages": [{"role": "user", "content": f"Tell story number {index}."}]}


async def _stream(http: httpx.AsyncClient, index: int) -> bool:
    async with http.stream("POST", "/api/chat", json=_chat(index, 48), headers=AUTH) as r:
        if r.status_code != 200:
            return False
        lines = [json.loads(line) async for line in r.aiter_lines() if line]
    return bool(lines) and lines[-1].get("done") is True and "error" not in lines[-1]


async def _openai_stream(http: httpx.AsyncClient, index: int) -> bool:
    body = {"model": CHAT_MODEL, "stream": True, "max_tokens": 48, "seed": index,
            "messages": [{"role": "user", "content": f"Tell story number {index}."}]}
    async with http.stream("POST", "/v1/chat/completions", json=body, headers=AUTH) as r:
        if r.status_code != 200:
            return False
        events = [line async for line in r.aiter_lines() if line.startswith("data: ")]
    return bool(events) and events[-1] == "data: [DONE]" and '"error"' not in events[-2]


async def _embed(http: httpx.AsyncClient, index: int) -> bool:
    texts = [f"document {index}-{i} about soaking servers" for i in range(8)]
    r = await http.post("/api/embed", json={"model": EMBEDDER, "input": texts}, headers=AUTH)
    return r.status_code == 200 and len(r.json()["embeddings"]) == 8


async def _disconnect(http: httpx.AsyncClient, index: int) -> bool:
    async with http.stream("POST", "/api/chat", json=_chat(index, 200), headers=AUTH) as r:
        if r.status_code != 200:
            return False
        seen = 0
        async for _ in r.aiter_lines():
            seen += 1
            if seen == 2:
                break  # leaving the block closes the connection mid-stream
    return seen == 2


async def _malformed(http: httpx.AsyncClient, index: int) -> bool:
    if index % 2:
        r = await http.post("/api/chat", content=b'{"model": "smollm2:135m", "messages": [',
                            headers={**AUTH, "Content-Type": "application/json"})
    else:
        r = await http.post("/api/chat", json={"model": CHAT_MODEL, "messages": "hi"},
                            headers=AUTH)
    return r.status_code == 400 and "error" in r.json()


async def _wrong_key(http: httpx.AsyncClient, index: int) -> bool:
    headers = {"Authorization": "Bearer sk-wrong"} if index % 2 else {}
    r = await http.post("/api/chat", json=_chat(index, 8), headers=headers)
    return r.status_code == 401 and "error" in r.json()


async def _bad_origin(http: httpx.AsyncClient, index: int) -> bool:
    r = await http.post("/api/chat", content=json.dumps(_chat(index, 8)), headers={
        **AUTH, "Origin": "http://evil.example.com", "Content-Type": "text/plain"})
    return r.status_code == 403 and "error" in r.json()


async def _bad_name(http: httpx.AsyncClient, index: int) -> bool:
    r = await http.post("/api/copy", json={"source": CHAT_MODEL, "destination": "../../x"},
                        headers=AUTH)
    return r.status_code == 400 and "error" in r.json()


RUN = {"stream": _stream, "openai_stream": _openai_stream, "embed": _embed,
       "disconnect": _disconnect, "malformed": _malformed, "wrong_key": _wrong_key,
       "bad_origin": _bad_origin, "bad_name": _bad_name}


async def _client(url: str, index: int, seconds: float, served: Counter, errors: Counter,
                  server_errors: Counter) -> None:
    rng = random.Random(index)
    names, weights = list(KINDS), list(KINDS.values())
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        while time.monotonic() < deadline:
            kind = rng.choices(names, weights)[0]
            served[kind] += 1
            try:
                ok = await RUN[kind](http, rng.randrange(10**6))
            except (httpx.HTTPError, ValueError, KeyError) as error:
                ok = False
                server_errors[f"{kind}: {type(error).__name__}"] += 1
            if not ok:
                errors[kind] += 1


def _rss_mb(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


async def soak(clients: int, seconds: float) -> dict:
    serve = AdamServe("--api-key", KEY)
    with serve as url:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:  # warm up
            assert await _stream(http, 0) and await _embed(http, 0)
        server = psutil.Process(serve.process.pid)
        before = _rss_mb(server)
        served: Counter = Counter()
        errors: Counter = Counter()
        server_errors: Counter = Counter()
        started = time.perf_counter()
        await asyncio.gather(*(_client(url, i, seconds, served, errors, server_errors)
                               for i in range(clients)))
        elapsed = time.perf_counter() - started
        after = _rss_mb(server)
        await asyncio.sleep(5)
        idle = _rss_mb(server)
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            final_ok = await _stream(http, 1)
            metrics = (await http.get("/metrics", headers=AUTH)).text
    fives = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                if line.startswith("adam_requests_total") and 'status="5' in line)
    return {"clients": clients, "seconds": round(elapsed, 1),
            "requests": sum(served.values()), "by_kind": dict(served),
            "errors_by_kind": {k: errors.get(k, 0) for k in KINDS},
            "transport_errors": dict(server_errors), "responses_5xx": fives,
            "rss_mb_after_warmup": round(before, 1), "rss_mb_after_soak": round(after, 1),
            "rss_mb_after_idle": round(idle, 1), "normal_request_after": final_ok}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    report = asyncio.run(soak(args.clients, args.seconds))
    print(json.dumps(report, indent=2))
    clean = (not any(report["errors_by_kind"].values()) and not report["transport_errors"]
             and report["responses_5xx"] == 0 and report["normal_request_after"])
    print("soak: clean" if clean else "soak: ERRORS (see above)")
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
