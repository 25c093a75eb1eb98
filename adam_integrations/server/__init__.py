"""``adam serve``: the Ollama REST API and OpenAI's ``/v1`` over this package's models."""

from adam_integrations.server.app import create_app, serve

__all__ = ["create_app", "serve"]
