"""Reranking on transformers by Qwen3-Reranker's method (``core.rerank``): the shared
start of every pair (judge, instruction, query) is read once and its keys and values
reused for every document; the documents are read in batches (padded on the right, each
row's score taken at its own last token), each batch one job on the compute thread, so
other torch work runs between batches.

Only the two rows of the output layer that matter ("yes" and "no") are applied to each
row's last hidden state, not the whole vocabulary to every position. Models whose cache is
not plain full attention (sliding windows, linear attention) read each pair whole.
"""

from __future__ import annotations

from typing import Any

from adam_integrations.backends.local import compute
from adam_integrations.backends.local.huggingface.generation import cache_name, paddable
from adam_integrations.backends.local.huggingface.loaded import LoadedModel
from adam_integrations.core.rerank import yes_probability

BATCH = 16
"""Documents read together in one forward pass."""


def score_pairs(loaded: LoadedModel, shared: list[int], middles: list[list[int]],
                answer: list[int], yes: int, no: int) -> list[float]:
    """P(yes) for each pair ``shared + middle + answer``, in order."""
    prefix = compute.run(lambda: _read_shared(loaded, shared))
    scores: list[float] = []
    for start in range(0, len(middles), BATCH):
        rows = [middle + answer for middle in middles[start:start + BATCH]]
        scores.extend(compute.run(lambda rows=rows: _score_batch(loaded, shared, prefix,
                                                                 rows, yes, no)))
    return scores


def _read_shared(loaded: LoadedModel, shared: list[int]) -> Any:
    """The shared part's cache, or None where it cannot be reused (pairs are read whole)."""
    import torch

    if loaded.adapters is not None:
        loaded.adapters.use(loaded.adapters.defaults)
    decoder = loaded.model.get_decoder()
    with torch.inference_mode():
        output = decoder(input_ids=torch.tensor([shared], device=loaded.device),
                         use_cache=True)
    cache = output[cache_name(decoder)]
    return cache if paddable(cache) else None


def _score_batch(loaded: LoadedModel, shared: list[int], prefix: Any, rows: list[list[int]],
                 yes: int, no: int) -> list[float]:
    import torch
    from transformers.cache_utils import DynamicCache

    model, device = loaded.model, loaded.device
    if loaded.adapters is not None:
        loaded.adapters.use(loaded.adapters.defaults)
    if prefix is None:  # no reusable cache: each pair whole, alone
        return [_score_batch_whole(loaded, shared + row, yes, no) for row in rows]
    count, width = len(rows), max(map(len, rows))
    ids = torch.full((count, width), loaded.pad_id, dtype=torch.long)
    mask = torch.zeros((count, len(shared) + width), dtype=torch.long)
    mask[:, :len(shared)] = 1
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, len(shared):len(shared) + len(row)] = 1
    cache = DynamicCache(config=model.config)
    for index, layer in enumerate(prefix.layers):
        cache.update(layer.keys.expand(count, -1, -1, -1),
                     layer.values.expand(count, -1, -1, -1), index)
    positions = torch.arange(len(shared), len(shared) + width).expand(count, -1)
    decoder = model.get_decoder()
    with torch.inference_mode():
        hidden = decoder(input_ids=ids.to(device), attention_mask=mask.to(device),
                         position_ids=positions.to(device), use_cache=True,
                         **{cache_name(decoder): cache}).last_hidden_state
        last = hidden[torch.arange(count), torch.tensor([len(r) - 1 for r in rows])]
        logits = _answer_logits(model, last, yes, no)
    return [yes_probability(yes_logit=float(y), no_logit=float(n)) for y, n in logits]


def _score_batch_whole(loaded: LoadedModel, tokens: list[int], yes: int, no: int) -> float:
    import torch

    with torch.inference_mode():
        hidden = loaded.model.get_decoder()(
            input_ids=torch.tensor([tokens], device=loaded.device)).last_hidden_state
        [(y, n)] = _answer_logits(loaded.model, hidden[:, -1], yes, no)
    return yes_probability(yes_logit=float(y), no_logit=float(n))


def _answer_logits(model: Any, last: Any, yes: int, no: int) -> Any:
    """The "yes" and "no" logits from last hidden states (rows x hidden), as the model's
    own head computes them (its final soft cap included)."""
    import torch

    logits = model.get_output_embeddings()(last)[:, [yes, no]].float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits.cpu().tolist()
