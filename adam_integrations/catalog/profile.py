"""What a chat model can take and give, for the frameworks' model descriptions.

One source for LangChain's ``ChatAdam.profile`` (langchain-core's ``ModelProfile``) and
LlamaIndex's ``AdamLLM.metadata``:

- the context window: the loaded model's own window when it is loaded (what llama.cpp or
  transformers was given, which a small machine may cap), else what the weights say
  (the GGUF header's ``context_length``, ``config.json``'s ``max_position_embeddings``),
  else the catalog's;
- thinking and its levels: the model's chat template (the switches it reads,
  ``core.prompt.TemplateTraits``), else the catalog's mode;
- the longest answer: the catalog's figure (models.dev's, for the Qwen generations that
  publish one), never more than the context;
- tools, forced tool choice and structured output: every chat model here has them (its
  template's tool support or the generic tool prompt; grammar-constrained decoding for
  forced calls and schemas); embedding and reranker models have none.
- images: the in-process backends take text only, so ``image_inputs`` is False even for a
  model that sees images (Qwen3.5) elsewhere.

Reading the facts never loads a model or touches the network: only headers and small
JSON files of models already on disk.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adam_integrations.catalog.qwen3 import Qwen3Model, find_qwen3
from adam_integrations.core.errors import AdamError
from adam_integrations.core.prompt import TemplateTraits
from adam_integrations.core.stores.gguf_header import read_gguf_header
from adam_integrations.core.stores.hub import cached_snapshot
from adam_integrations.core.types import ModelSource


@dataclass(frozen=True)
class ModelFacts:
    """A chat model's limits and abilities, as the frameworks describe models."""

    name: str
    context_window: int | None = None
    max_output_tokens: int | None = None
    thinking: bool = False
    effort_levels: tuple[str, ...] = ()
    tool_calling: bool = True
    structured_output: bool = True
    image_inputs: bool = False
    catalog_alias: str | None = None


def model_facts(source: ModelSource, *, context: int | None = None,
                template: str | None = None) -> ModelFacts:
    """The facts of the model at ``source``; ``context`` and ``template`` are the loaded
    model's own, when it is loaded (else they are read from its files, if on disk).

    Example:
        >>> from adam_integrations.core.types import ModelSource
        >>> facts = model_facts(ModelSource("hub", "Qwen/Qwen3.5-9B", "Qwen3.5-9B"))
        >>> facts.context_window, facts.max_output_tokens, facts.thinking
        (262144, 65536, True)
    """
    entry = _catalog_entry(source)
    if context is None or template is None:
        on_disk_context, on_disk_template = _from_files(source)
        context = context or on_disk_context
        template = template if template is not None else on_disk_template
    if context is None and entry is not None:
        context = entry.max_context
    if template:
        traits = TemplateTraits.of(template)
        thinking, levels = traits.thinking, traits.effort_levels
    else:
        thinking, levels = entry is not None and entry.thinking != "none", ()
    chat = entry is None or entry.mode not in ("embedding", "reranker")
    output = entry.max_output_tokens if entry is not None else None
    if output is not None and context is not None:
        output = min(output, context)
    return ModelFacts(
        name=entry.hf_id if entry is not None else source.name, context_window=context,
        max_output_tokens=output, thinking=thinking and chat, effort_levels=levels,
        tool_calling=chat, structured_output=chat,
        catalog_alias=entry.alias if entry is not None else None)


def _catalog_entry(source: ModelSource) -> Qwen3Model | None:
    with warnings.catch_warnings():  # a legacy id was warned about when it was resolved
        warnings.simplefilter("ignore")
        for name in (source.location, source.name, source.ollama_name):
            entry = find_qwen3(name) if name else None
            if entry is not None:
                return entry
    return None


def _from_files(source: ModelSource) -> tuple[int | None, str | None]:
    """The trained context and the chat template from files already on disk."""
    try:
        if source.kind == "gguf":
            header = read_gguf_header(source.location)
            context = header.field("context_length")
            return (int(context) if context else None,
                    header.metadata.get("tokenizer.chat_template"))
        folder = Path(source.location) if source.kind == "folder" else (
            cached_snapshot(source.location) if source.kind == "hub" else None)
        if folder is not None and folder.is_dir():
            return _folder_context(folder), _folder_template(folder)
    except (AdamError, OSError, ValueError):
        pass  # unreadable files: the catalog's figures, or none
    return None, None


def _folder_context(folder: Path) -> int | None:
    config = _json(folder / "config.json")
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    value = config.get("max_position_embeddings") or text.get("max_position_embeddings")
    return int(value) if isinstance(value, int) else None


def _folder_template(folder: Path) -> str | None:
    standalone = folder / "chat_template.jinja"
    if standalone.is_file():
        return standalone.read_text(encoding="utf-8")
    template = _json(folder / "tokenizer_config.json").get("chat_template")
    return template if isinstance(template, str) else None


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}
