"""docs/errors.md's table lists every error this package raises on purpose, with the
standard exceptions it also is and the HTTP status ``adam serve`` answers it with."""

from __future__ import annotations

import builtins
import re
from pathlib import Path

from adam_integrations.core import errors
from adam_integrations.core.extras import MissingExtraError
from adam_integrations.server.errors import status_of

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
ERRORS = {cls.__name__: cls for cls in [*vars(errors).values(), MissingExtraError]
          if isinstance(cls, type) and issubclass(cls, errors.AdamError)}


def _rows() -> dict[str, list[str]]:
    """Error name -> its cells (Error, Also a, When, HTTP, What to do)."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name = re.fullmatch(r"`(\w+)`", cells[0]) if line.startswith("|") else None
        if name:
            rows[name.group(1)] = cells
    return rows


def test_every_error_has_a_row_with_the_status_adam_serve_gives_it():
    rows = _rows()
    assert set(rows) == set(ERRORS)
    for name, cls in ERRORS.items():
        status = rows[name][3]
        if cls is errors.AddressInUseError:  # raised before the server listens
            assert not status[:1].isdigit()
        else:
            assert status.split()[0] == str(status_of(cls("x"))), name


def test_the_standard_exceptions_an_error_also_is_are_named():
    rows = _rows()
    for name, cls in ERRORS.items():
        named = re.findall(r"`(\w+)`", rows[name][1])
        standard = {base.__name__ for base in cls.__mro__[1:]
                    if base.__module__ == "builtins"} - {"Exception", "BaseException",
                                                         "object"}
        for base in standard:  # named, or something named is one (TimeoutError: OSError)
            kinds = [ERRORS.get(other) or getattr(builtins, other) for other in named]
            assert any(issubclass(kind, getattr(builtins, base)) for kind in kinds), (
                name, base)
