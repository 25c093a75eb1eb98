"""The package's layers import downwards only (see the package docstring)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "adam_integrations"

# Bottom first. A module may import its own group and any group of a lower layer;
# groups on the same layer stay apart.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"core"}),
    frozenset({"catalog", "wire", "decoding"}),
    frozenset({"sharing"}),
    frozenset({"backends"}),
    frozenset({"served"}),
    frozenset({"manager", "tools"}),
    frozenset({"chat_defaults"}),
    frozenset({"langchain", "llama_index", "server"}),
    frozenset({"cli", "__init__"}),
)


def _group(dotted: str) -> str:
    """``adam_integrations.core.types`` -> ``core``; the package itself -> ``__init__``."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(group: str) -> int:
    return next(i for i, groups in enumerate(LAYERS) if group in groups)


def _imports(path: Path, package: Path) -> list[tuple[int, str]]:
    """Every ``adam_integrations`` module ``path`` imports (also inside functions)."""
    module = "adam_integrations." + ".".join(path.relative_to(package).with_suffix("").parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.rsplit(".", node.level)[0]
                found.append((node.lineno, f"{base}.{node.module}" if node.module else base))
            elif node.module:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] == "adam_integrations"]


def _violations(package: Path = PACKAGE) -> list[str]:
    problems = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        own = "__init__" if relative == Path("__init__.py") else relative.parts[0].removesuffix(
            ".py")
        for line, name in _imports(path, package):
            target = _group(name)
            if target == own:
                continue
            if _layer(target) >= _layer(own):
                problems.append(f"{relative}:{line} ({own}) imports {name} ({target})")
    return problems


def test_every_module_imports_only_lower_layers():
    assert _violations() == []


def test_every_module_belongs_to_a_layer():
    groups = {p.relative_to(PACKAGE).parts[0].removesuffix(".py")
              for p in PACKAGE.rglob("*.py")}
    known = set().union(*LAYERS)
    assert groups - known == set()


# Folders inside a layer's group with rules of their own, by path prefix: what their
# modules may not import (a module prefix), and why.
FOLDER_RULES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("backends/remote/", ("adam_integrations.backends.local", "adam_integrations.decoding"),
     "the base install (no engine) runs the remote backends"),
    ("backends/local/", ("adam_integrations.backends.remote",),
     "an engine in this process does not go through a server's client"),
    ("core/stores/", tuple(f"adam_integrations.core.{m}" for m in (
        "backend", "registry", "resolver", "loaded", "output", "prompt", "streaming",
        "tools", "types", "hardware", "memory", "measurements", "chat_template")),
     "the stores read disk and sit under the rest of core (the resolver reads them)"),
)


def _folder_violations(package: Path = PACKAGE) -> list[str]:
    problems = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        for folder, forbidden, why in FOLDER_RULES:
            if not relative.startswith(folder):
                continue
            for line, name in _imports(path, package):
                if name.startswith(forbidden):
                    problems.append(f"{relative}:{line} imports {name} ({why})")
    return problems


def test_the_folders_inside_a_layer_keep_their_rules():
    assert _folder_violations() == []
    for folder, _, _ in FOLDER_RULES:  # a rule for a folder that is gone checks nothing
        assert (PACKAGE / folder).is_dir(), folder


def test_the_folder_check_catches_a_remote_backend_importing_an_engine(tmp_path):
    package = tmp_path / "adam_integrations"
    (package / "backends" / "remote").mkdir(parents=True)
    (package / "backends" / "remote" / "ollama.py").write_text(
        "from adam_integrations.backends.local.llamacpp import LlamaCppModel\n")
    assert _folder_violations(package) == [
        "backends/remote/ollama.py:1 imports adam_integrations.backends.local.llamacpp "
        "(the base install (no engine) runs the remote backends)"]


def test_the_check_catches_an_upward_import(tmp_path):
    package = tmp_path / "adam_integrations"
    (package / "core").mkdir(parents=True)
    (package / "manager.py").write_text("from adam_integrations.core import types\n")
    (package / "core" / "types.py").write_text(
        "def f():\n    from adam_integrations.manager import ModelManager\n")
    assert _violations(package) == [
        "core/types.py:2 (core) imports adam_integrations.manager (manager)"]
