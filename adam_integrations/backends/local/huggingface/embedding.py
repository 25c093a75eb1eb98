"""Embedding models on transformers, as sentence-transformers runs them.

A sentence-transformers folder says how to pool (``modules.json``, the pooling config),
whether to normalize, the maximum length and the query/document prompts; a plain encoder
gets mean pooling, as sentence-transformers gives it. Texts are tokenized once, sorted by
length and padded per batch, so a batch of short texts is not padded to a long one.

Concurrent requests on one model are embedded together (``EmbeddingQueue``): the compute
thread takes every request waiting and sorts all their texts into shared batches, so the
many small requests of a server's users (one query each) fill batches instead of running
one by one.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adam_integrations.backends.local import compute
from adam_integrations.backends.local.huggingface.devices import (
    embedding_autocast,
    pick_dtype,
    without_loading_bar,
)
from adam_integrations.backends.local.huggingface.loaded import LoadedModel
from adam_integrations.backends.local.huggingface.onnx_int8 import quantized_encoder
from adam_integrations.core.errors import InvalidRequestError, ModelLoadError
from adam_integrations.core.types import EmbeddingKind, check_embeddable


def load_embedding_model(folder: Path, device: str, dtype: str | None, *, name: str,
                         trust_remote_code: bool, quantized: bool = False) -> LoadedModel:
    """Load the encoder of a sentence-transformers (or plain) folder, with its layout;
    ``quantized``: as int8 on ONNX Runtime (``onnx_int8``)."""
    from transformers import AutoModel, AutoTokenizer

    if quantized and (dtype or device != "cpu"):
        raise InvalidRequestError(
            "quantized=True computes in int8 on the CPU (ONNX Runtime); drop "
            f"{'dtype=' if dtype else 'device='} or quantized=True")
    layout = SentenceTransformersLayout.read(folder)
    torch_dtype = pick_dtype(device, "float32" if quantized else dtype, for_embedding=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(layout.transformer_folder)
        with without_loading_bar():
            model = AutoModel.from_pretrained(
                layout.transformer_folder, dtype=torch_dtype,
                trust_remote_code=trust_remote_code).to(device)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise ModelLoadError(
            f"transformers could not load embedding model {name} from {folder}: {error}"
        ) from error
    model.eval()
    if layout.pooling == "lasttoken":
        tokenizer.padding_side = "right"
    max_length = layout.max_length or getattr(model.config, "max_position_embeddings", None)
    loaded = LoadedModel(model=model, tokenizer=tokenizer, kind="embedding", folder=folder,
                         device=device, dtype=torch_dtype, load_seconds=0.0,
                         parameter_count=sum(p.numel() for p in model.parameters()),
                         autocast=None if quantized else embedding_autocast(device, dtype),
                         pooling=layout.pooling, normalize=layout.normalize,
                         max_length=max_length, prompts=layout.prompts)
    if quantized:
        loaded.model = quantized_encoder(layout.transformer_folder, model, tokenizer,
                                         name=name)
        loaded.dtype, loaded.quantization = "int8", "int8 (ONNX Runtime, dynamic)"
    loaded.embeddings = EmbeddingQueue(loaded)
    return loaded


def embed_texts(loaded: LoadedModel, texts: list[str], kind: EmbeddingKind,
                batch_size: int) -> list[list[float]]:
    """One vector per text, in input order, computed in length-sorted batches."""
    prompt = loaded.prompts.get(kind) or (loaded.prompts.get("passage", "")
                                          if kind == "document" else "")
    if prompt:
        texts = [prompt + text for text in texts]
    encoded = loaded.tokenizer(texts, truncation=True, max_length=loaded.max_length,
                               add_special_tokens=True)["input_ids"]
    check_embeddable([len(ids) for ids in encoded])
    queue = loaded.embeddings
    assert queue is not None  # set for every embedding model
    return queue.embed(encoded, batch_size)


@dataclass(eq=False)
class _EmbeddingRequest:
    encoded: list[list[int]]
    batch_size: int
    vectors: list[list[float]] = field(default_factory=list)
    error: BaseException | None = None


class EmbeddingQueue:
    """The embedding requests waiting on one model; see the module docstring."""

    def __init__(self, loaded: LoadedModel) -> None:
        self._loaded = loaded
        self._waiting: list[_EmbeddingRequest] = []
        self._lock = threading.Lock()
        self.most_at_once = 0
        """The most requests one computation has embedded together so far."""

    @property
    def waiting(self) -> int:
        """Requests queued that have not been taken yet."""
        with self._lock:
            return len(self._waiting)

    def embed(self, encoded: list[list[int]], batch_size: int) -> list[list[float]]:
        """One vector per tokenized text, in order (blocks until computed)."""
        request = _EmbeddingRequest(encoded, batch_size)
        with self._lock:
            self._waiting.append(request)
        # Jobs run in order on one thread: when this one has run, an earlier job took this
        # request, or this job did.
        compute.run(self._run_waiting)
        if request.error is not None:
            raise request.error
        return request.vectors

    def _run_waiting(self) -> None:
        with self._lock:
            requests, self._waiting = self._waiting, []
        if not requests:
            return
        self.most_at_once = max(self.most_at_once, len(requests))
        texts = [(request, i) for request in requests for i in range(len(request.encoded))]
        texts.sort(key=lambda text: len(text[0].encoded[text[1]]), reverse=True)
        size = requests[0].batch_size
        batches = [[request.encoded[i] for request, i in texts[start:start + size]]
                   for start in range(0, len(texts), size)]
        for request in requests:
            request.vectors = [[] for _ in request.encoded]
        try:
            rows = _embed_batches(self._loaded, batches)
        except Exception as error:  # every request in the computation learns of it
            for request in requests:
                request.error = error
            return
        for (request, i), row in zip(texts, rows, strict=True):
            request.vectors[i] = row


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

