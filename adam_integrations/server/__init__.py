"""``adam serve``: the Ollama REST API and OpenAI's ``/v1`` over this package's models
(the ``[server]`` extra: ``from adam_integrations.server.app import create_app, serve``;
the settings, names and request checks import without it)."""

from typing import Any

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    """``create_app`` and ``serve``, imported on first use (they need the extra)."""
    if name in __all__:
        from adam_integrations.core.extras import require_extra

        require_extra("server", "adam serve")
        from adam_integrations.server import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
