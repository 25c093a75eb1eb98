"""The transformers batcher (``backends/local/huggingface/generation.py``) without a
downloaded model: a two-layer Llama with random weights, made in memory in milliseconds,
decoded greedily in float64 so that batching cannot flip a choice by rounding. Requests
decoded together (their caches padded on the left into one) give the tokens each gives
alone; never more run at once than ``parallel``; limits, end-of-turn tokens, withdrawal,
cancellation and a failing forward pass end each request once."""

from __future__ import annotations

import functools
import threading

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from adam_integrations.backends.local.huggingface.generation import (  # noqa: E402
    _END,
    Batcher,
    GenerationRequest,
)
from adam_integrations.backends.local.huggingface.loaded import LoadedModel  # noqa: E402
from adam_integrations.core.streaming import Failure  # noqa: E402
from adam_integrations.core.types import GenerationConfig  # noqa: E402

PROMPTS = [[1, 2, 3], [5, 6, 7, 8, 9, 10, 11], [12], [20, 21, 22, 23, 24]]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    return transformers.LlamaForCausalLM(config).to(torch.float64).eval()


def _loaded(model, eos: frozenset[int] = frozenset()) -> LoadedModel:
    return LoadedModel(model=model, tokenizer=None, kind="causal", folder=None,
                       device="cpu", dtype=torch.float64, load_seconds=0.0, eos_ids=eos)


def _request(prompt: list[int], max_new: int = 12) -> GenerationRequest:
    return GenerationRequest(input_ids=torch.tensor([prompt]), config=GenerationConfig(),
                             max_new=max_new, processors=[], generator=None, assembler=None)


def _read(request: GenerationRequest) -> list:
    """What the request's reader receives, up to the end."""
    items = []
    while (item := request.tokens.get(timeout=60)) is not _END:
        items.append(item)
    return items


def _alone(model, prompts: list[list[int]], **request) -> list[list[int]]:
    answers = []
    for prompt in prompts:
        one = _request(prompt, **request)
        Batcher(_loaded(model), 1).submit(one)
        answers.append(_read(one))
    return answers


def test_requests_decoded_together_get_what_each_gets_alone(model):
    batcher = Batcher(_loaded(model), parallel=4)
    requests = [_request(prompt) for prompt in PROMPTS]
    for request in requests:
        batcher.submit(request)
    assert [_read(r) for r in requests] == _alone(model, PROMPTS)
    assert batcher.most_at_once == 4  # one forward pass decoded all four
    assert not batcher.busy()


def test_never_more_at_once_than_parallel_and_the_rest_wait_their_turn(model):
    batcher = Batcher(_loaded(model), parallel=2)
    prompts = PROMPTS * 2
    requests = [_request(prompt, max_new=6) for prompt in prompts]
    for request in requests:
        batcher.submit(request)
    assert [_read(r) for r in requests] == _alone(model, prompts, max_new=6)
    assert batcher.most_at_once == 2


def test_an_end_of_turn_token_ends_that_row_only(model):
    alone = _alone(model, PROMPTS)
    eos = alone[0][3]  # the fourth token the first prompt gets
    batcher = Batcher(_loaded(model, frozenset({eos})), parallel=4)
    requests = [_request(prompt) for prompt in PROMPTS]
    for request in requests:
        batcher.submit(request)
    for request, tokens in zip(requests, alone, strict=True):
        cut = tokens.index(eos) + 1 if eos in tokens else len(tokens)
        assert _read(request) == tokens[:cut]


def test_a_waiting_request_is_withdrawn_and_a_running_one_cancelled(model):
    gate = threading.Event()
    original = model.forward

    @functools.wraps(original)  # the batcher reads the signature (what the cache is called)
    def held(*args, **kwargs):
        gate.wait(timeout=30)
        return original(*args, **kwargs)

    model.forward = held  # the compute thread holds the first step until the gate opens
    try:
        batcher = Batcher(_loaded(model), parallel=1)
        running, waiting = _request(PROMPTS[0], max_new=50), _request(PROMPTS[1])
        batcher.submit(running)
        batcher.submit(waiting)
        assert batcher.withdraw(waiting) and _read(waiting) == []
        running.cancel.set()
        gate.set()
        assert len(_read(running)) < 50 and running.released.is_set()
        assert not batcher.busy()
    finally:
        del model.forward


def test_a_failing_forward_pass_ends_every_running_request_with_the_error(model):
    calls = []
    original = model.forward

    @functools.wraps(original)
    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("the device went away")
        return original(*args, **kwargs)

    model.forward = failing
    try:
        batcher = Batcher(_loaded(model), parallel=4)
        requests = [_request(prompt) for prompt in PROMPTS]
        for request in requests:
            batcher.submit(request)
        for request in requests:
            failures = [item for item in _read(request) if isinstance(item, Failure)]
            assert [str(f.error) for f in failures] == ["the device went away"]
    finally:
        del model.forward
