"""How one ``adam serve`` is configured: who may call it and how much work it takes on.

Every field has a CLI flag (``adam serve --help``) and the Ollama-style environment
variables are read where Ollama has one (``OLLAMA_MAX_QUEUE``, ``OLLAMA_ORIGINS``); the
API keys also come from ``ADAM_API_KEY`` (comma-separated) and a key file (one key per
line, ``#`` comments).

Example:
    >>> ServerSettings(api_keys=("k",)).max_queue
    512
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from adam_integrations.core.chat_template import TemplateLimits
from adam_integrations.core.errors import InvalidRequestError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11434
DEFAULT_MAX_BODY = 32 * 1024 * 1024  # bytes; a few thousand long texts to embed
DEFAULT_MAX_QUEUE = 512  # Ollama's OLLAMA_MAX_QUEUE default
# Characters of prompt text per request: above the longest Qwen3 context (131,072 tokens,
# about 4 characters each), so only prompts no served model could read are refused early.
DEFAULT_MAX_PROMPT_CHARS = 1_000_000
# Seconds one request may run, loading included; long enough for a few thousand tokens
# on a CPU, short enough that a stuck request does not hold its place for ever.
DEFAULT_REQUEST_TIMEOUT = 900.0
SHUTDOWN_GRACE_SECONDS = 10.0  # after SIGTERM/SIGINT, for streams to send their last line
# Seconds a client may take to send its request's headers (from its first byte), and to
# send each next part of a body: a client on a slow link sends a part in far less; one
# that trickles (slowloris) is cut off. Apache's mod_reqtimeout waits 20 s for each.
DEFAULT_HEADER_TIMEOUT = 20.0
DEFAULT_BODY_TIMEOUT = 30.0
# Connections at once; past it the one waiting longest for a request is closed. Far
# above what many users' clients keep open, far below the file descriptors it needs.
DEFAULT_MAX_CONNECTIONS = 2048
# The largest blob an upload may be: the largest model of the catalog, at 16 bits per
# weight, is ~740 GiB (Qwen3.5-397B-A17B as a BF16 GGUF), plus room for its metadata.
DEFAULT_MAX_UPLOAD = 800 * 1024**3
# Bytes an upload leaves free on the store's disk, so the manifests of a create, the
# logs and the rest of the machine still have room after it.
DEFAULT_MIN_FREE = 1024**3


# Characters a chat template may add to a request's own text (its markup, the tools'
# schemas), and the seconds it may render for (within the request's own time limit): a
# real template renders in a millisecond.
TEMPLATE_ROOM = 256 * 1024
TEMPLATE_SECONDS = 10.0


@dataclass(frozen=True)
class ServerSettings:
    """The settings of one server.

    Attributes:
        bind_host: the address it listens on (the Host check is on for loopback ones).
        allowed_hosts: more Host names to answer (turns the Host check on elsewhere).
        origins: more web origins allowed, besides Ollama's defaults and OLLAMA_ORIGINS.
        api_keys: when any, every route but ``GET /`` needs ``Authorization: Bearer``.
        model_dirs: folders whose models may be named by path.
        max_body_bytes: the largest request body (413 above).
        max_queue: requests for models at once, running and waiting (503 above).
        max_prompt_chars: characters of prompt text in one request (400 above).
        max_tokens: the most tokens one request may generate (None: as asked).
        request_timeout: seconds one request may take (None: no limit).
        header_timeout: seconds a client may take to send a request's headers (408).
        body_timeout: seconds a client may pause while sending a body (408).
        max_connections: connections at once (the longest idle one is closed past it).
        max_upload_bytes: the largest blob ``POST /api/blobs`` takes (413 above).
        min_free_bytes: free space an upload leaves on the store's disk (507 below).
    """

    bind_host: str = DEFAULT_HOST
    allowed_hosts: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    api_keys: tuple[str, ...] = ()
    model_dirs: tuple[Path, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_queue: int = DEFAULT_MAX_QUEUE
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS
    max_tokens: int | None = None
    request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    min_free_bytes: int = DEFAULT_MIN_FREE


    @property
    def template_limits(self) -> TemplateLimits:
        """What rendering one request's chat template may take: a prompt of at most
        ``max_prompt_chars`` plus ``TEMPLATE_ROOM``, within ``TEMPLATE_SECONDS`` or half
        the request's time limit, whichever is shorter (so the request still answers,
        with the template's own error)."""
        seconds = min((self.request_timeout or 2 * TEMPLATE_SECONDS) / 2, TEMPLATE_SECONDS)
        return TemplateLimits(self.max_prompt_chars + TEMPLATE_ROOM, seconds)


def max_queue_from(environ: Mapping[str, str] = os.environ) -> int:
    """``OLLAMA_MAX_QUEUE``, or 512."""
    raw = environ.get("OLLAMA_MAX_QUEUE", "").strip()
    if not raw:
        return DEFAULT_MAX_QUEUE
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidRequestError(f"OLLAMA_MAX_QUEUE={raw!r}: give a positive whole number")
    return int(raw)


def api_keys_from(keys: Iterable[str] = (), key_file: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The API keys from ``--api-key`` values, ``--api-key-file`` and ``ADAM_API_KEY``."""
    found = [k.strip() for k in keys if k.strip()]
    found += [k.strip() for k in environ.get("ADAM_API_KEY", "").split(",") if k.strip()]
    if key_file is not None:
        try:
            lines = Path(key_file).expanduser().read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidRequestError(f"cannot read the API key file {str(key_file)!r}: "
                                      f"{error}") from error
        found += [line.strip() for line in lines
                  if line.strip() and not line.lstrip().startswith("#")]
    for key in found:
        if any(ord(c) < 33 or ord(c) > 126 for c in key):
            raise InvalidRequestError("an API key may hold printable ASCII characters only, "
                                      "no spaces (it travels in an HTTP header)")
    return tuple(dict.fromkeys(found))
