"""Quality and speed measured on this machine (``adam eval``), kept for the model pick.

Every evaluation of a GGUF file is appended as one JSON line to
``<cache>/measurements.jsonl``: the file (path, size, modification time: a file changed
since no longer matches), its quantization, the text (a digest and a name), the backend,
the perplexity and the prompt and generation speed. ``catalog.selection`` reads them back
for the catalog's own files on disk: a measured generation speed replaces the estimate,
and the pick says how a quantization compares with the best-precision file measured over
the same text ("Q4_K_M: 4.2% higher perplexity than Q8_0, 1.7x faster here").

Writing is best effort: a cache that cannot be written loses the record, never the
evaluation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from adam_integrations.core.paths import cache_root

logger = logging.getLogger(__name__)
MEASUREMENTS_FILE = "measurements.jsonl"
_lock = threading.Lock()


@dataclass(frozen=True)
class Measurement:
    """One file's figures over one text on one backend."""

    path: str
    size: int
    mtime_ns: int
    quantization: str
    text_digest: str
    text_name: str
    backend: str
    perplexity: float
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    measured_at: float


def text_digest(text: str) -> str:
    """A short digest naming a text (measurements compare only over the same text)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def record(path: str | os.PathLike[str], *, quantization: str, text: str, text_name: str,
           backend: str, perplexity: float, prefill_tokens_per_s: float,
           decode_tokens_per_s: float) -> Measurement | None:
    """Append a measurement of the file ``path``; None when it could not be kept."""
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
        measurement = Measurement(str(resolved), stat.st_size, stat.st_mtime_ns,
                                  quantization, text_digest(text), text_name, backend,
                                  perplexity, prefill_tokens_per_s, decode_tokens_per_s,
                                  time.time())
        target = cache_root() / MEASUREMENTS_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        with _lock, target.open("a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(measurement)) + "\n")
        return measurement
    except OSError as error:
        logger.warning("the measurement of %s was not kept: %s", resolved, error)
        return None


def measurements_of(paths: Iterable[str | os.PathLike[str]]) -> dict[Path, list[Measurement]]:
    """The measurements of each file in ``paths`` as it is now (newest last), by path as
    given; files never measured (or changed since) have none."""
    current: dict[str, tuple[Path, int, int]] = {}
    for path in paths:
        try:
            stat = Path(path).resolve().stat()
        except OSError:
            continue
        current[str(Path(path).resolve())] = (Path(path), stat.st_size, stat.st_mtime_ns)
    found: dict[Path, list[Measurement]] = {}
    if not current:
        return found
    for m in _all():
        given = current.get(m.path)
        if given is not None and (m.size, m.mtime_ns) == given[1:]:
            found.setdefault(given[0], []).append(m)
    return found


def _all() -> list[Measurement]:
    source = cache_root() / MEASUREMENTS_FILE
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            found.append(Measurement(**json.loads(line)))
        except (ValueError, TypeError):
            continue  # a damaged or older line: skipped
    return found
