"""The Host and Origin checks of adam serve (server.guard), on the scripted backend: the
issue's probes are refused, local names and allowed origins are served with CORS."""

from __future__ import annotations

import httpx
import pytest

from adam_integrations.server import create_app
from adam_integrations.server.guard import host_allowed, origin_pattern
from adam_integrations.server.models import ServedModels
from adam_integrations.server.settings import ServerSettings
from tests.helpers import error_message
from tests.unit.scripted import NAME

CHAT = {"model": NAME, "messages": [{"role": "user", "content": "say: hi"}], "stream": False}


@pytest.fixture
def app(tmp_path, backend):
    return create_app(ServedModels(tmp_path / "aliases.json", model_type=NAME),
                      ServerSettings(origins=("https://app.example.com",)))


@pytest.fixture
async def http(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1:11434") as client:
        yield client


async def test_a_rebinding_host_gets_403_with_how_to_allow_it(http):
    response = await http.get("/api/tags", headers={"Host": "evil.example.com"})
    assert response.status_code == 403
    assert "--allowed-hosts evil.example.com" in error_message(response)


@pytest.mark.parametrize("host", ["127.0.0.1:11434", "localhost", "[::1]:8080", "",
                                  "10.1.2.3", "0.0.0.0:11434", "box.local",
                                  "ollama.localhost:3000", "db.internal"])
def test_local_hosts_pass(host):
    assert host_allowed(host, ())


def test_an_allowed_host_passes_and_others_do_not():
    assert host_allowed("api.example.com:443", ["api.example.com"])
    assert not host_allowed("8.8.8.8", ()) and not host_allowed("localhost.evil.com", ())


async def test_a_cross_origin_simple_post_is_refused_before_it_runs(http, backend):
    before = len(backend.requests)
    response = await http.post("/api/chat", content=b'{"model": "x"}', headers={
        "Origin": "http://evil.example.com", "Content-Type": "text/plain"})
    assert response.status_code == 403 and "--origins" in error_message(response)
    assert len(backend.requests) == before  # nothing was generated


@pytest.mark.parametrize("route", ["/api/copy", "/api/pull", "/v1/chat/completions"])
async def test_every_route_refuses_a_disallowed_origin(http, route):
    response = await http.post(route, json={}, headers={"Origin": "http://evil.example.com"})
    assert response.status_code == 403


async def test_an_allowed_origin_gets_cors_headers_and_preflight_answers(http):
    origin = "http://localhost:5173"
    preflight = await http.options("/api/chat", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    response = await http.post("/api/chat", json=CHAT, headers={"Origin": origin})
    assert response.status_code == 200 and response.json()["message"]["content"] == "hi"
    assert response.headers["access-control-allow-origin"] == origin


async def test_origins_from_the_flag_and_the_environment_are_allowed(http, monkeypatch,
                                                                     tmp_path, backend):
    response = await http.post("/api/chat", json=CHAT,
                               headers={"Origin": "https://app.example.com"})
    assert response.status_code == 200
    monkeypatch.setenv("OLLAMA_ORIGINS", "https://a.example.net, https://*.example.io")
    app = create_app(ServedModels(tmp_path / "aliases.json", model_type=NAME))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1:11434") as client:
        for origin, status in [("https://a.example.net", 200), ("https://b.example.io", 200),
                               ("https://app.example.com", 403)]:
            response = await client.post("/api/chat", json=CHAT, headers={"Origin": origin})
            assert response.status_code == status, origin


def test_origin_patterns_follow_ollamas_defaults():
    pattern = origin_pattern(["http://localhost", "app://*", "https://*.example.org"])
    for origin in ["http://localhost", "http://localhost:8080", "app://anything",
                   "https://docs.example.org"]:
        assert pattern.fullmatch(origin), origin
    for origin in ["http://localhost.evil.com", "https://localhost", "null"]:
        assert not pattern.fullmatch(origin), origin


async def test_requests_without_an_origin_are_served_as_before(http):
    assert (await http.post("/api/chat", json=CHAT)).status_code == 200
