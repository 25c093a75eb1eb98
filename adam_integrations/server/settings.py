"""How one ``adam serve`` is configured: who may call it and how much work it takes on.

Every field but the address has a flag of ``adam serve`` (``--help``), made from the
field's ``Flag``, which also says which values it takes. The Ollama-style environment
variables are read where Ollama has one (``OLLAMA_MAX_QUEUE``, ``OLLAMA_ORIGINS``,
``OLLAMA_NUM_PARALLEL``); the API keys also come from ``ADAM_API_KEY`` (comma-separated)
and a key file (one key per line, ``#`` comments).

Example:
    >>> ServerSettings(api_keys=("k",)).max_queue
    512
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

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
class Flag:
    """How a ``ServerSettings`` field is given on ``adam serve``'s command line (the
    flags are made from these, ``cli/serve.py``) and which values it takes (checked by
    ``ServerSettings`` itself, so a program that builds one gets the same errors).

    The setting is the flag's value times ``scale`` (MiB, GiB: bytes); ``minimum`` is the
    smallest value allowed, ``positive`` means above 0; ``zero_is_none``: 0 on the
    command line means "no limit" (None); a ``repeatable`` flag takes several values,
    repeated or comma-separated, each of ``type``. The default is added to ``help`` (at
    ``{default}`` when it says where).
    """

    name: str
    help: str
    type: type = int
    metavar: str | None = None
    scale: float = 1
    minimum: float | None = None
    positive: bool = False
    zero_is_none: bool = False
    repeatable: bool = False

    def check(self, value: float) -> None:
        """An InvalidRequestError naming the flag when ``value`` (the setting's) is out of
        range."""
        shown = f"{value / self.scale:g}"
        if self.positive and not value > 0:
            none = " (0 for no limit)" if self.zero_is_none else ""
            raise InvalidRequestError(f"{self.name} must be a positive number{none}, got "
                                      f"{shown}")
        if self.minimum is not None and not value >= self.minimum:
            least = "0 or more" if self.minimum == 0 else f"at least {self.minimum:g}"
            raise InvalidRequestError(f"{self.name} must be {least}, got {shown}")


def _flag(name: str, help: str, **how: Any) -> dict[str, Flag]:
    return {"flag": Flag(name, help, **how)}


@dataclass(frozen=True)
class ServerSettings:
    """The settings of one server: one table, from which ``adam serve``'s flags are made
    and by which values are checked (each field's ``Flag``; ``flags()`` lists them).

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
        parallel: requests decoded together on each model (None: the backend's default,
            ``OLLAMA_NUM_PARALLEL``, else 4).
        threads: CPU threads llama.cpp decodes with (None: the usable cores).
    """

    bind_host: str = DEFAULT_HOST
    allowed_hosts: tuple[str, ...] = field(default=(), metadata=_flag(
        "--allowed-hosts", "more Host names to answer (repeatable or comma-separated); on a "
        "non-loopback address, naming any turns the Host check on", type=str,
        metavar="HOST", repeatable=True))
    origins: tuple[str, ...] = field(default=(), metadata=_flag(
        "--origins", "more web origins allowed to call the API, besides Ollama's defaults "
        "and OLLAMA_ORIGINS (repeatable or comma-separated; '*' as a wildcard)", type=str,
        metavar="ORIGIN", repeatable=True))
    api_keys: tuple[str, ...] = field(default=(), metadata=_flag(
        "--api-key", "require 'Authorization: Bearer KEY' on every route but / (repeatable; "
        "also ADAM_API_KEY, comma-separated, and --api-key-file)", type=str, metavar="KEY",
        repeatable=True))
    model_dirs: tuple[Path, ...] = field(default=(), metadata=_flag(
        "--models-dir", "let requests name model files and folders under DIR by path "
        "(repeatable; without it no path is served)", type=Path, metavar="DIR",
        repeatable=True))
    max_body_bytes: int = field(default=DEFAULT_MAX_BODY, metadata=_flag(
        "--max-body-mb", "largest request body accepted, in MiB", type=float, metavar="MIB",
        scale=1024**2, positive=True))
    max_queue: int = field(default=DEFAULT_MAX_QUEUE, metadata=_flag(
        "--max-queue", "requests for models at once, running and waiting; more get 503 "
        "(default OLLAMA_MAX_QUEUE, else 512)", metavar="N", minimum=1))
    max_prompt_chars: int = field(default=DEFAULT_MAX_PROMPT_CHARS, metadata=_flag(
        "--max-prompt-chars", "characters of prompt text one request may send", metavar="N",
        minimum=1))
    max_tokens: int | None = field(default=None, metadata=_flag(
        "--max-tokens", "the most tokens one request may generate (default: as asked)",
        metavar="N", minimum=1))
    request_timeout: float | None = field(default=DEFAULT_REQUEST_TIMEOUT, metadata=_flag(
        "--request-timeout", "seconds a request may spend generating or embedding; 0 for "
        "no limit", type=float, metavar="SECONDS", positive=True, zero_is_none=True))
    header_timeout: float = field(default=DEFAULT_HEADER_TIMEOUT, metadata=_flag(
        "--header-timeout", "seconds a client may take to send a request's headers",
        type=float, metavar="SECONDS", positive=True))
    body_timeout: float = field(default=DEFAULT_BODY_TIMEOUT, metadata=_flag(
        "--body-timeout", "seconds a client may pause while sending a request body",
        type=float, metavar="SECONDS", positive=True))
    max_connections: int = field(default=DEFAULT_MAX_CONNECTIONS, metadata=_flag(
        "--max-connections", "connections at once; past it the one waiting longest for a "
        "request is closed (default {default}, fewer if the file limit is lower)", metavar="N",
        minimum=1))
    max_upload_bytes: int = field(default=DEFAULT_MAX_UPLOAD, metadata=_flag(
        "--max-upload-gb", "the largest model file /api/blobs takes, in GiB (default "
        "{default}: the largest model of the catalog at 16 bits)", type=float, metavar="GIB",
        scale=1024**3, positive=True))
    min_free_bytes: int = field(default=DEFAULT_MIN_FREE, metadata=_flag(
        "--min-free-gb", "free space an upload must leave on the model store's disk, in GiB",
        type=float, metavar="GIB", scale=1024**3, minimum=0))
    parallel: int | None = field(default=None, metadata=_flag(
        "--parallel", "requests decoded together on each model (llama.cpp slots, "
        "transformers batches); more wait their turn (default OLLAMA_NUM_PARALLEL, else 4, "
        "fewer when RAM is short)", metavar="N", minimum=1))
    threads: int | None = field(default=None, metadata=_flag(
        "--threads", "CPU threads llama.cpp decodes with (default: the cores this process "
        "can use; fewer can be much faster on a busy CPU)", metavar="N", minimum=1))

    def __post_init__(self) -> None:
        for name, flag in self.flags().items():
            value = getattr(self, name)
            if value is not None and not flag.repeatable:
                flag.check(value)

    @classmethod
    def flags(cls) -> dict[str, Flag]:
        """Each field given on the command line, with its flag."""
        return {f.name: f.metadata["flag"] for f in fields(cls) if "flag" in f.metadata}

    @property
    def backend_options(self) -> dict[str, Any]:
        """What the served models' backends are given (those that take it): ``parallel``,
        and ``threads`` as llama.cpp's ``n_threads``."""
        options = {"parallel": self.parallel, "n_threads": self.threads}
        return {name: value for name, value in options.items() if value is not None}

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
