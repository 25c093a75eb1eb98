"""The runnable examples in docstrings of modules that need no model: they must stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "adam_integrations.decoding.grammar",
    "adam_integrations.decoding.json_schema",
    "adam_integrations.catalog.embedding",
    "adam_integrations.catalog.names",
    "adam_integrations.core.atomic",
    "adam_integrations.core.chat_template",
    "adam_integrations.core.hardware",
    "adam_integrations.core.stores.hub",
    "adam_integrations.core.loaded",
    "adam_integrations.core.memory",
    "adam_integrations.core.resolver",
    "adam_integrations.core.stores.ollama_store",
    "adam_integrations.core.tools",
    "adam_integrations.tools.convert",
    "adam_integrations.tools.evaluate",
    "adam_integrations.tools.quantize",
    "adam_integrations.tools.tune_data",
    "adam_integrations.tools.tune",
    "adam_integrations.tools.merge",
    "adam_integrations.tools.prune",
    "adam_integrations.tools.distill",
    "adam_integrations.core.adapters",
    "adam_integrations.core.rerank",
    "adam_integrations.wire.rerank",
    "adam_integrations.wire.request",
    "adam_integrations.wire.ollama",
    "adam_integrations.server.connections",
    "adam_integrations.server.errors",
    "adam_integrations.server.request_body",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
