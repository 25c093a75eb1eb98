"""Embedding models on transformers, as sentence-transformers runs them.

A sentence-transformers folder says how to pool (``modules.json``, the pooling config),
whether to normalize, the maximum length and the query/document prompts; a plain encoder
gets mean pooling, as sentence-transformers gives it. Texts are tokenized once, sorted by
length and padded per batch, so a batch of short texts is not padded to a long one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adam_integrations.backends import compute
from adam_integrations.backends.huggingface.devices import embedding_autocast, pick_dtype
from adam_integrations.backends.huggingface.loaded import LoadedModel
from adam_integrations.core.errors import ModelLoadError
from adam_integrations.core.types import EmbeddingKind


def load_embedding_model(folder: Path, device: str, dtype: str | None, *, name: str,
                         trust_remote_code: bool) -> LoadedModel:
    """Load the encoder of a sentence-transformers (or plain) folder, with its layout."""
    from transformers import AutoModel, AutoTokenizer

    layout = SentenceTransformersLayout.read(folder)
    torch_dtype = pick_dtype(device, dtype, for_embedding=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(layout.transformer_folder)
        model = AutoModel.from_pretrained(
            layout.transformer_folder, dtype=torch_dtype, trust_remote_code=trust_remote_code
        ).to(device)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise ModelLoadError(
            f"transformers could not load embedding model {name} from {folder}: {error}"
        ) from error
    model.eval()
    if layout.pooling == "lasttoken":
        tokenizer.padding_side = "right"
    max_length = layout.max_length or getattr(model.config, "max_position_embeddings", None)
    return LoadedModel(model=model, tokenizer=tokenizer, kind="embedding", folder=folder,
                       device=device, dtype=torch_dtype, load_seconds=0.0,
                       autocast=embedding_autocast(device, dtype),
                       pooling=layout.pooling, normalize=layout.normalize,
                       max_length=max_length, prompts=layout.prompts)


def embed_texts(loaded: LoadedModel, texts: list[str], kind: EmbeddingKind,
                batch_size: int) -> list[list[float]]:
    """One vector per text, in input order, computed in length-sorted batches."""
    prompt = loaded.prompts.get(kind) or (loaded.prompts.get("passage", "")
                                          if kind == "document" else "")
    if prompt:
        texts = [prompt + text for text in texts]
    encoded = loaded.tokenizer(texts, truncation=True, max_length=loaded.max_length,
                               add_special_tokens=True)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]), reverse=True)
    batches = [[encoded[i] for i in order[start:start + batch_size]]
               for start in range(0, len(order), batch_size)]
    rows = compute.run(_embed_batches, loaded, batches)
    vectors: list[list[float]] = [[] for _ in texts]
    for index, row in zip(order, rows, strict=True):
        vectors[index] = row
    return vectors


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _embed_batches(loaded: LoadedModel, batches: list[list[list[int]]]) -> list[list[float]]:
    """Runs on the compute thread: pooled (and normalized) vectors, batch after batch."""
    import torch

    rows: list[list[float]] = []
    with torch.inference_mode():
        for batch in batches:
            padded = loaded.tokenizer.pad({"input_ids": batch}, return_tensors="pt")
            padded = {k: v.to(loaded.device) for k, v in padded.items()}
            with torch.autocast("cpu", dtype=loaded.autocast or torch.bfloat16,
                                enabled=loaded.autocast is not None):
                hidden = loaded.model(**padded).last_hidden_state
            hidden = hidden.float()
            pooled = _pool(hidden, padded["attention_mask"], loaded.pooling)
            if loaded.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            rows.extend(pooled.cpu().tolist())
    return rows


@dataclass
class SentenceTransformersLayout:
    """Pooling, normalization, length and prompts as a sentence-transformers folder says."""

    transformer_folder: Path
    pooling: str = "mean"
    normalize: bool = False
    max_length: int | None = None
    prompts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path) -> SentenceTransformersLayout:
        layout = cls(transformer_folder=folder)
        modules = read_json(folder / "modules.json")
        if not isinstance(modules, list):
            return layout  # a plain encoder: mean pooling, as sentence-transformers does
        for module in modules:
            kind = str(module.get("type", ""))
            path = folder / module.get("path", "")
            if kind.endswith("Transformer"):
                layout.transformer_folder = path
                bert_config = read_json(path / "sentence_bert_config.json") or read_json(
                    folder / "sentence_bert_config.json")
                if isinstance(bert_config, dict):
                    layout.max_length = bert_config.get("max_seq_length")
            elif kind.endswith("Pooling"):
                layout.pooling = _pooling_mode(read_json(path / "config.json") or {})
            elif kind.endswith("Normalize"):
                layout.normalize = True
        st_config = read_json(folder / "config_sentence_transformers.json")
        if isinstance(st_config, dict):
            layout.prompts = dict(st_config.get("prompts") or {})
        return layout


def _pooling_mode(config: dict[str, Any]) -> str:
    if config.get("pooling_mode"):
        return str(config["pooling_mode"])
    for mode in ("cls_token", "max_tokens", "lasttoken", "mean_tokens"):
        if config.get(f"pooling_mode_{mode}"):
            return {"cls_token": "cls", "max_tokens": "max", "mean_tokens": "mean"}.get(mode, mode)
    return "mean"


def _pool(hidden: Any, mask: Any, mode: str) -> Any:
    import torch

    if mode == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    if mode == "lasttoken":
        last = mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    summed = (hidden * weights).sum(dim=1)
    return summed / weights.sum(dim=1).clamp(min=1e-9)

