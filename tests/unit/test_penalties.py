"""The transformers backend penalises repeats as llama.cpp does, so the same request
decodes alike on both local backends."""

from __future__ import annotations

import torch

from adam_integrations.backends.huggingface.generation import _Penalties
from adam_integrations.core.decoding import PENALTY_LAST_N


def test_repeat_presence_and_frequency_penalties_follow_llama_cpp():
    penalties = _Penalties(repeat=2.0, presence=0.5, frequency=0.25)
    prompt = torch.tensor([[3]])
    scores = torch.tensor([[1.0, 4.0, -4.0, 2.0]])
    assert torch.equal(penalties(prompt, scores.clone()), scores)  # nothing generated yet
    out = penalties(torch.tensor([[3, 1, 1, 2]]), scores.clone())
    # token 1 twice: 4 / 2 - 2 x 0.25 - 0.5; token 2 once: -4 x 2 - 0.25 - 0.5; the
    # prompt's token 3 and the unseen token 0 are left alone
    assert out.tolist() == [[1.0, 1.0, -8.75, 2.0]]


def test_only_the_last_tokens_count():
    penalties = _Penalties(repeat=2.0, presence=0.0, frequency=0.0)
    penalties(torch.tensor([[0]]), torch.zeros(1, 3))
    generated = [1] + [2] * PENALTY_LAST_N  # token 1 fell out of the window
    out = penalties(torch.tensor([[0, *generated]]), torch.tensor([[1.0, 1.0, 1.0]]))
    assert out.tolist() == [[1.0, 1.0, 0.5]]
