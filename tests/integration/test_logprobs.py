"""Log probabilities of generated tokens: on both in-process backends, through the
OpenAI-compatible backend (to ``adam serve`` and to llama-cpp-python's server), in
Ollama's shape and OpenAI's on ``adam serve`` (read by the real ``ollama`` and ``openai``
clients), and in the frameworks: ChatAdam's and ChatOllama's ``response_metadata``,
LlamaIndex's ``ChatResponse.logprobs``."""

from __future__ import annotations

import math

import ollama
import openai
import pytest

from adam_integrations import InvalidRequestError
from adam_integrations.core.types import TokenLogprob

QUESTION = [{"role": "user", "content": "Name three colors of the rainbow."}]
GREEDY = {"temperature": 0.0}


def _consistent(logprobs: list[TokenLogprob], top: int) -> None:
    """Each token's logprob is a log probability; its alternatives are the most likely
    first, with the greedy choice the most likely of all."""
    for logprob in logprobs:
        assert logprob.logprob <= 0 and logprob.bytes
        alternatives = [t.logprob for t in logprob.top_logprobs]
        assert len(alternatives) == top and alternatives == sorted(alternatives, reverse=True)
        if top:
            assert logprob.top_logprobs[0].token == logprob.token
            assert math.isclose(logprob.top_logprobs[0].logprob, logprob.logprob,
                                abs_tol=1e-3)


def test_every_generated_token_comes_with_its_logprob(chat_backend):
    completion = chat_backend.chat(QUESTION, max_tokens=12, logprobs=True, top_logprobs=3,
                                   **GREEDY)
    assert len(completion.logprobs) == completion.usage.completion_tokens
    assert "".join(lp.token for lp in completion.logprobs).strip() == completion.text.strip()
    _consistent(completion.logprobs, 3)


def test_streamed_chunks_carry_the_logprobs_of_their_own_tokens(backend_model):
    chunks = list(backend_model.stream_chat(QUESTION, max_tokens=10, logprobs=True,
                                            **GREEDY))
    with_text = [c for c in chunks if c.text]
    assert all(c.logprobs for c in with_text)
    assert sum(len(c.logprobs) for c in chunks) == chunks[-1].usage.completion_tokens
    _consistent([lp for c in chunks for lp in c.logprobs], 0)


def test_the_backends_agree_on_the_first_tokens_logprob(manager, hf_manager):
    """llama.cpp (Q4_1 weights) and transformers (dequantized, bf16) score the same first
    token of the same greedy answer nearly alike."""
    on_llama = manager.chat(QUESTION, max_tokens=1, logprobs=True, **GREEDY).logprobs[0]
    on_torch = hf_manager.chat(QUESTION, max_tokens=1, logprobs=True, **GREEDY).logprobs[0]
    assert on_llama.token == on_torch.token
    assert abs(on_llama.logprob - on_torch.logprob) < 0.3


def test_without_the_option_there_are_none_and_bad_values_are_refused(backend_model):
    assert backend_model.chat(QUESTION, max_tokens=3, **GREEDY).logprobs == []
    with pytest.raises(InvalidRequestError, match="top_logprobs must be"):
        backend_model.chat(QUESTION, max_tokens=3, logprobs=True, top_logprobs=21)
    with pytest.raises(InvalidRequestError, match="top_logprobs needs logprobs"):
        backend_model.chat(QUESTION, max_tokens=3, logprobs=False, top_logprobs=2)


def test_the_ollama_client_reads_logprobs_on_chat_and_generate(server):
    client = ollama.Client(host=server)
    answer = client.chat(model="smollm2:135m", messages=QUESTION, logprobs=True,
                         top_logprobs=2, options={"temperature": 0, "num_predict": 6})
    assert len(answer.logprobs) == answer.eval_count
    assert all(len(lp.top_logprobs) == 2 and lp.logprob <= 0 for lp in answer.logprobs)
    streamed = list(client.generate(model="smollm2:135m", prompt="Name a color.",
                                    logprobs=True, stream=True,
                                    options={"temperature": 0, "num_predict": 5}))
    tokens = [lp.token for part in streamed for lp in part.logprobs or []]
    assert "".join(tokens) == "".join(part.response for part in streamed)


def test_the_openai_client_reads_logprobs_in_both_of_openais_shapes(server):
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    chat = client.chat.completions.create(model="smollm2:135m", messages=QUESTION,
                                          max_tokens=5, temperature=0, logprobs=True,
                                          top_logprobs=2)
    content = chat.choices[0].logprobs.content
    assert len(content) == chat.usage.completion_tokens
    assert all(len(t.top_logprobs) == 2 for t in content)
    text = client.completions.create(model="smollm2:135m", prompt="Colors: red,",
                                     max_tokens=4, temperature=0, logprobs=2)
    legacy = text.choices[0].logprobs
    assert "".join(legacy.tokens) == text.choices[0].text
    assert legacy.text_offset[0] == 0 and all(len(top) == 2 for top in legacy.top_logprobs)


def test_chat_ollama_and_chatadam_put_logprobs_in_response_metadata(server):
    from langchain_ollama import ChatOllama

    from adam_integrations.langchain import ChatAdam

    for llm in (ChatOllama(model="smollm2:135m", base_url=server, temperature=0,
                           num_predict=4, logprobs=True),
                ChatAdam(model="smollm2", temperature=0, max_tokens=4, logprobs=True),
                ChatAdam(model=f"openai:smollm2:135m@{server}/v1", temperature=0,
                         max_tokens=4, logprobs=True)):
        message = llm.invoke("Name a color.")
        logprobs = message.response_metadata["logprobs"]
        assert len(logprobs) == 4, type(llm).__name__
        assert "".join(lp["token"] for lp in logprobs) == message.content


def test_llama_index_gets_one_list_of_candidates_per_token():
    from llama_index.core.llms import ChatMessage

    from adam_integrations.llama_index import AdamLLM

    llm = AdamLLM(model="smollm2", temperature=0, max_tokens=4, logprobs=True, top_logprobs=2)
    response = llm.chat([ChatMessage(role="user", content="Name a color.")])
    assert len(response.logprobs) == 4 and all(len(c) == 2 for c in response.logprobs)
    streamed = list(llm.stream_chat([ChatMessage(role="user", content="Name a color.")]))
    assert streamed[-1].logprobs == response.logprobs


# -- the prompt's own log probabilities (echo), and the tokens behind them ------------------
PROMPT = "The capital of France is Paris, and the capital of Italy is"


def test_a_scored_prompt_is_its_tokens_each_given_those_before(backend_model):
    scored = backend_model.score_prompt(PROMPT, 3)
    tokens = backend_model.tokenize(PROMPT)
    assert len(scored) == len(tokens) and scored[0].logprob is None
    assert "".join(t.token for t in scored) == backend_model.detokenize(tokens) == PROMPT
    _consistent_prompt(scored[1:], 3)
    # the scores are what the model predicts: the next token of a greedy continuation of
    # the prompt's first part is scored as its most likely
    cut = len(tokens) // 2
    head = backend_model.detokenize(tokens[:cut])
    step = backend_model.complete(head, max_tokens=1, logprobs=True, top_logprobs=1,
                                  **GREEDY).logprobs[0]
    assert scored[cut].top_logprobs[0].token == step.token
    assert math.isclose(scored[cut].top_logprobs[0].logprob, step.logprob, abs_tol=0.1)


def _consistent_prompt(scored: list[TokenLogprob], top: int) -> None:
    for token in scored:
        assert token.logprob is not None and token.logprob <= 0
        alternatives = [t.logprob for t in token.top_logprobs]
        assert len(alternatives) == top and alternatives == sorted(alternatives, reverse=True)
        assert token.logprob <= alternatives[0] + 1e-6


def test_the_backends_score_a_prompt_alike(manager, hf_manager):
    on_llama = manager.backend.score_prompt(PROMPT)
    on_torch = hf_manager.backend.score_prompt(PROMPT)
    assert [t.token for t in on_llama] == [t.token for t in on_torch]
    assert sum(abs(a.logprob - b.logprob) for a, b in zip(on_llama[1:], on_torch[1:],
                                                         strict=True)) / len(on_llama) < 0.3


def test_completions_echo_the_prompt_with_its_logprobs(server):
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    plain = client.completions.create(model="smollm2:135m", prompt=PROMPT, max_tokens=2,
                                      temperature=0, logprobs=2)
    echoed = client.completions.create(model="smollm2:135m", prompt=PROMPT, max_tokens=2,
                                       temperature=0, logprobs=2, echo=True)
    choice = echoed.choices[0]
    assert choice.text == PROMPT + plain.choices[0].text
    legacy = choice.logprobs
    assert "".join(legacy.tokens) == choice.text
    assert legacy.token_logprobs[0] is None and legacy.top_logprobs[0] is None
    assert all(lp <= 0 for lp in legacy.token_logprobs[1:])
    assert legacy.text_offset == [sum(map(len, legacy.tokens[:i]))
                                  for i in range(len(legacy.tokens))]
    generated = legacy.token_logprobs[-2:]  # the same tokens as without echo
    assert generated == pytest.approx(plain.choices[0].logprobs.token_logprobs, abs=1e-4)
    text_only = client.completions.create(model="smollm2:135m", prompt=PROMPT, max_tokens=2,
                                          temperature=0, echo=True)
    assert text_only.choices[0].text == choice.text and text_only.choices[0].logprobs is None
    streamed = "".join(part.choices[0].text for part in client.completions.create(
        model="smollm2:135m", prompt=PROMPT, max_tokens=2, temperature=0, echo=True,
        stream=True))
    assert streamed == choice.text
    with pytest.raises(openai.BadRequestError, match="echo and suffix"):
        client.completions.create(model="smollm2:135m", prompt=PROMPT, max_tokens=2,
                                  echo=True, suffix="!")


def test_vllms_tokenizer_endpoints_give_the_tokens_completions_read(server):
    import httpx

    tokens = httpx.post(f"{server}/tokenize", json={"model": "smollm2:135m",
                                                     "prompt": PROMPT}).json()
    assert tokens["count"] == len(tokens["tokens"]) and tokens["max_model_len"] > 0
    text = httpx.post(f"{server}/detokenize", json={"model": "smollm2:135m",
                                                     "tokens": tokens["tokens"]}).json()
    assert text == {"prompt": PROMPT}
    echoed = openai.OpenAI(base_url=f"{server}/v1", api_key="unused").completions.create(
        model="smollm2:135m", prompt=PROMPT, max_tokens=1, temperature=0, logprobs=0,
        echo=True).choices[0].logprobs
    assert len(echoed.tokens) == tokens["count"] + 1  # the prompt's tokens, then the answer's
    info = httpx.get(f"{server}/tokenizer_info", params={"model": "smollm2:135m"}).json()
    assert info["eos_token"] == "<|im_end|>" and "im_start" in info["chat_template"]
    refused = httpx.post(f"{server}/tokenize", json={"model": "smollm2:135m",
                                                      "prompt": PROMPT, "messages": []})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("unknown field 'messages'")
    bad = httpx.post(f"{server}/detokenize", json={"model": "smollm2:135m",
                                                    "tokens": [10**9]})
    assert bad.status_code == 400 and "outside this model's vocabulary" in bad.text


def test_a_prompt_given_as_token_ids_is_run_as_exactly_those(server):
    import httpx

    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    ids = httpx.post(f"{server}/tokenize", json={"model": "smollm2:135m",
                                                  "prompt": PROMPT}).json()["tokens"]
    by_text, by_ids = (client.completions.create(
        model="smollm2:135m", prompt=prompt, max_tokens=2, temperature=0, logprobs=1,
        echo=True).choices[0] for prompt in (PROMPT, ids))
    assert by_ids.text == by_text.text
    assert by_ids.logprobs.token_logprobs == pytest.approx(by_text.logprobs.token_logprobs)
    split = [t for part in ("Hel", "lo") for t in httpx.post(f"{server}/tokenize", json={
        "model": "smollm2:135m", "prompt": part}).json()["tokens"]]
    with pytest.raises(openai.BadRequestError, match="not how smollm2:135m reads their text"):
        client.completions.create(model="smollm2:135m", prompt=split, max_tokens=1)
