"""``adam serve``'s flags are made from ``ServerSettings`` (one table: flag, help, unit,
range), which checks the values whoever builds it; no setting travels through an
environment variable inside the process."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

from adam_integrations.cli.parser import build_parser
from adam_integrations.cli.serve import settings_of
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.server.settings import ServerSettings


def _settings(*flags: str) -> ServerSettings:
    return settings_of(build_parser().parse_args(["serve", *flags]))


def test_every_setting_but_the_address_is_a_flag_of_adam_serve():
    given = {f.name for f in fields(ServerSettings)} - {"bind_host"}
    assert set(ServerSettings.flags()) == given
    usage = build_parser().parse_args(["serve"]).command_parser.format_help()
    for flag in ServerSettings.flags().values():
        assert flag.name in usage


def test_flags_become_settings_in_their_units(monkeypatch):
    monkeypatch.delenv("OLLAMA_MAX_QUEUE", raising=False)
    assert _settings() == ServerSettings()
    settings = _settings("--max-body-mb", "2", "--max-upload-gb", "0.5",
                         "--request-timeout", "0", "--origins", "a.example,b.example",
                         "--origins", "c.example", "--models-dir", "~/models",
                         "--parallel", "2", "--threads", "3")
    assert settings.max_body_bytes == 2 * 1024**2
    assert settings.max_upload_bytes == 1024**3 // 2
    assert settings.request_timeout is None  # 0: no limit
    assert settings.origins == ("a.example", "b.example", "c.example")
    assert settings.model_dirs == (Path("~/models").expanduser(),)
    assert settings.backend_options == {"parallel": 2, "n_threads": 3}
    monkeypatch.setenv("OLLAMA_MAX_QUEUE", "7")
    assert _settings().max_queue == 7 and _settings("--max-queue", "9").max_queue == 9


@pytest.mark.parametrize(("flags", "message"), [
    (["--max-queue", "0"], "--max-queue must be at least 1, got 0"),
    (["--max-upload-gb", "0"], "--max-upload-gb must be a positive number, got 0"),
    (["--min-free-gb", "-1"], "--min-free-gb must be 0 or more, got -1"),
    (["--request-timeout", "-3"], "must be a positive number (0 for no limit), got -3"),
    (["--max-body-mb", "0"], "--max-body-mb must be a positive number, got 0"),
    (["--parallel", "0"], "--parallel must be at least 1, got 0"),
])
def test_a_value_out_of_range_names_its_flag(flags, message):
    with pytest.raises(InvalidRequestError, match=message.replace("(", r"\(").replace(
            ")", r"\)")):
        _settings(*flags)


def test_a_program_building_settings_gets_the_same_checks():
    with pytest.raises(InvalidRequestError, match="--max-connections must be at least 1"):
        ServerSettings(max_connections=0)
    with pytest.raises(InvalidRequestError, match="--min-free-gb must be 0 or more, got -1"):
        ServerSettings(min_free_bytes=-(1024**3))


def test_no_module_writes_the_environment():
    """Settings reach what uses them as arguments: a variable set inside the process
    would reach every backend made afterwards, and tests running after it."""
    package = Path(__file__).resolve().parents[3] / "adam_integrations"
    writes = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else []
            written = any(isinstance(t, ast.Subscript) and "environ" in ast.unparse(t.value)
                          for t in targets)
            called = isinstance(node, ast.Call) and ast.unparse(node.func).endswith(
                ("environ.setdefault", "environ.update", "putenv", "environ.pop"))
            if written or called:
                writes.append(f"{path.relative_to(package)}:{node.lineno}")
    assert writes == []
