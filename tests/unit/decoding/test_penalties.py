"""Both local backends penalise repeats as llama.cpp's penalties sampler does, so the same
request decodes alike on transformers and llama.cpp."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import torch

from adam_integrations.backends.local.huggingface.generation import _Penalties
from adam_integrations.core.types import GenerationConfig
from adam_integrations.decoding.chunks import PENALTY_LAST_N
from adam_integrations.decoding.penalties import Penalties


def test_repeat_presence_and_frequency_penalties_follow_llama_cpp():
    penalties = _Penalties(Penalties(repeat=2.0, presence=0.5, frequency=0.25))
    prompt = torch.tensor([[3]])
    scores = torch.tensor([[1.0, 4.0, -4.0, 2.0]])
    assert torch.equal(penalties(prompt, scores.clone()), scores)  # nothing generated yet
    out = penalties(torch.tensor([[3, 1, 1, 2]]), scores.clone())
    # token 1 twice: 4 / 2 - 2 x 0.25 - 0.5; token 2 once: -4 x 2 - 0.25 - 0.5; the
    # prompt's token 3 and the unseen token 0 are left alone
    assert out.tolist() == [[1.0, 1.0, -8.75, 2.0]]


def test_only_the_last_tokens_count():
    penalties = _Penalties(Penalties(repeat=2.0))
    penalties(torch.tensor([[0]]), torch.zeros(1, 3))
    generated = [1] + [2] * PENALTY_LAST_N  # token 1 fell out of the window
    out = penalties(torch.tensor([[0, *generated]]), torch.tensor([[1.0, 1.0, 1.0]]))
    assert out.tolist() == [[1.0, 1.0, 0.5]]


def test_each_row_of_a_batch_has_its_own_history():
    penalties = _Penalties(Penalties(repeat=2.0))
    penalties(torch.tensor([[0], [0]]), torch.zeros(2, 3))
    out = penalties(torch.tensor([[0, 1], [0, 2]]), torch.ones(2, 3))
    assert out.tolist() == [[1.0, 0.5, 1.0], [1.0, 1.0, 0.5]]


def test_numpy_rows_as_the_llama_cpp_slots_pass_them():
    scores = np.array([1.0, 4.0, -4.0, 2.0], dtype=np.float32)
    Penalties(repeat=2.0, presence=0.5, frequency=0.25).apply(scores, [1, 1, 2])
    assert scores.tolist() == [1.0, 1.0, -8.75, 2.0]


def test_neutral_settings_need_no_penalties():
    assert Penalties.of(GenerationConfig(repetition_penalty=1.0)) is None
    assert Penalties.of(GenerationConfig()) == Penalties()  # Ollama's default 1.1
    assert Penalties.of(GenerationConfig(repetition_penalty=1.0, presence_penalty=0.3)) \
        == Penalties(repeat=1.0, presence=0.3)


def test_same_logits_as_llama_cpps_own_penalties_sampler():
    llama_cpp = pytest.importorskip("llama_cpp")
    rng = np.random.default_rng(0)
    logits = rng.normal(size=512).astype(np.float32) * 5
    generated = rng.integers(0, 40, size=90).tolist()  # repeats, more than the window
    ours = logits.copy()
    Penalties(repeat=1.3, presence=0.2, frequency=0.1).apply(ours, generated)

    sampler = llama_cpp.llama_sampler_init_penalties(len(logits), PENALTY_LAST_N, 1.3, 0.1,
                                                     0.2)
    for token in generated:
        llama_cpp.llama_sampler_accept(sampler, token)
    data = (llama_cpp.llama_token_data * len(logits))(
        *[llama_cpp.llama_token_data(i, float(v), 0.0) for i, v in enumerate(logits)])
    array = llama_cpp.llama_token_data_array(data=data, size=len(logits), selected=-1,
                                             sorted=False)
    llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
    llama_cpp.llama_sampler_free(sampler)
    theirs = np.array([data[i].logit for i in range(len(logits))], dtype=np.float32)
    assert np.allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    assert not np.allclose(ours, logits)
