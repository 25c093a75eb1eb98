"""adam serve against a real browser: headless Chromium (Debian's ``chromium`` package;
``.ci/run`` installs it, and these tests skip where it is missing) loads pages from two
loopback origins and calls the API from JavaScript. A page from an allowed origin
(``http://localhost:<port>``, one of Ollama's defaults) can chat; a page from another
origin (``http://127.0.0.2:<port>``) can neither read an answer nor, with a "simple"
text/plain POST that browsers send without asking first, make the server generate."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.helpers import wait_until
from tests.integration.conftest import ServeProcess

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium here (apt install "
                                                        "chromium)")

PAGE = """<!doctype html><script>
async function run() {
  const report = (result) => fetch("/report", {method: "POST", body: JSON.stringify(result)});
  const chat = JSON.stringify({model: "smollm2:135m", stream: false,
                               messages: [{role: "user", content: "Say hi."}],
                               options: {num_predict: 4}});
  let cors;
  try {
    const answer = await fetch("API/api/chat", {method: "POST", body: chat,
                                                headers: {"Content-Type": "application/json"}});
    cors = {status: answer.status, body: await answer.json()};
  } catch (error) {
    cors = {blocked: String(error)};
  }
  // A "simple" request: no preflight; the page cannot read the answer, but it is sent.
  await fetch("API/api/chat", {method: "POST", mode: "no-cors", body: chat,
                               headers: {"Content-Type": "text/plain"}}).catch(() => null);
  await report(cors);
}
run();
</script>"""


class _PageServer:
    """A loopback HTTP server for the page, collecting what the page reports."""

    def __init__(self, host: str, api: str) -> None:
        reports: list[dict] = []
        self.reports = reports

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = PAGE.replace("API", api).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                reports.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{'localhost' if host == '127.0.0.1' else host}:" \
                   f"{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def api(session_cache) -> Iterator[str]:
    running = ServeProcess(session_cache / "browser-server.log")
    yield running.url
    running.stop()


def _visit(page: _PageServer, profile: Path) -> dict:
    process = subprocess.Popen(
        [BROWSER, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", page.url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: bool(page.reports), timeout=90), "the page never reported"
    finally:
        process.kill()
        process.wait(timeout=30)
        page.close()
    return page.reports[0]


def _chat_requests(api: str, status: int) -> float:
    text = httpx.get(f"{api}/metrics").text
    found = re.search(rf'adam_requests_total{{method="POST",route="/api/chat",'
                      rf'status="{status}"}} ([0-9.]+)', text)
    return float(found.group(1)) if found else 0.0


def test_a_page_from_an_allowed_origin_can_chat(api, tmp_path):
    before = _chat_requests(api, 200)
    result = _visit(_PageServer("127.0.0.1", api), tmp_path / "profile")
    assert result.get("status") == 200, result
    assert result["body"]["done"] is True and result["body"]["message"]["role"] == "assistant"
    # the JSON call and the simple POST both ran: an allowed origin may do both
    assert wait_until(lambda: _chat_requests(api, 200) >= before + 2, timeout=30)


def test_a_page_from_another_origin_is_refused_even_without_a_preflight(api, tmp_path):
    answered, refused = _chat_requests(api, 200), _chat_requests(api, 403)
    result = _visit(_PageServer("127.0.0.2", api), tmp_path / "profile")
    assert "blocked" in result, result  # the browser could not read any answer
    # the preflight of the JSON call and the simple POST were both refused with 403 ...
    assert wait_until(lambda: _chat_requests(api, 403) >= refused + 1, timeout=30)
    # ... and nothing was generated for that page
    assert _chat_requests(api, 200) == answered
