"""Render a Jinja chat template (as stored in a GGUF or tokenizer_config.json) safely.

The sandbox and helpers follow what Hugging Face chat templates expect: ``tojson``,
``raise_exception``, ``strftime_now``, trimmed blocks.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from adam_integrations.core.errors import InvalidRequestError


def render_chat_template(template: str, messages: list[dict[str, Any]],
                         **variables: Any) -> str:
    """The prompt text ``template`` makes of ``messages`` (with the generation prompt)."""
    from jinja2.exceptions import TemplateError

    try:
        return _compiled(template).render(messages=messages, add_generation_prompt=True,
                                          **variables)
    except TemplateError as error:
        raise InvalidRequestError(f"the chat template refused this conversation: {error}") \
            from error


@lru_cache(maxsize=16)
def _compiled(template: str) -> Any:
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                extensions=["jinja2.ext.loopcontrols"])
    environment.filters["tojson"] = lambda value, indent=None: json.dumps(
        value, ensure_ascii=False, indent=indent)
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return environment.from_string(template)
