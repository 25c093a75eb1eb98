"""The fast tier: the scripted backend (``scripted.py``) registered under the name
"scripted", as a third-party backend registers, and as a model name the resolver knows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adam_integrations import ModelManager, registry
from adam_integrations.catalog.names import register_model_names
from tests.unit.scripted import NAME, ScriptedBackend, scripted_names

registry.register(NAME, ScriptedBackend)
register_model_names(scripted_names)


@pytest.fixture
def manager() -> Iterator[ModelManager]:
    """A manager over the scripted backend (shared per process, requests cleared)."""
    manager = ModelManager(model=NAME, model_type=NAME)
    manager.backend.requests.clear()  # type: ignore[attr-defined]
    yield manager
    manager.unload()


@pytest.fixture
def backend(manager: ModelManager) -> ScriptedBackend:
    assert isinstance(manager.backend, ScriptedBackend)
    return manager.backend
