"""Reasoning is split from the answer: streaming or not, wherever the tags fall."""

from __future__ import annotations

import json

import jsonschema
import pytest

from adam_integrations import ChatMessage, GenerationConfig, InvalidRequestError
from adam_integrations.backends.local.huggingface import IncrementalDecoder
from adam_integrations.core.output import ResponseParser
from adam_integrations.core.types import collect

OUTPUT = "<think>\nLet me add 2 and 2.\n</think>\n\nThe answer is 4."
THINKING = "\nLet me add 2 and 2.\n"
ANSWER = "The answer is 4."


def split(pieces: list[str], **options) -> tuple[str, str]:
    parser = ResponseParser(**options)
    chunks = [c for p in pieces for c in parser.push(p)] + parser.finish()
    completion = collect(chunks)
    return completion.thinking, completion.text


@pytest.mark.parametrize("cut", range(1, len(OUTPUT)))
def test_every_two_way_split_gives_the_same_thinking_and_answer(cut):
    assert split([OUTPUT[:cut], OUTPUT[cut:]]) == (THINKING, ANSWER)


def test_one_character_at_a_time_gives_the_same_thinking_and_answer():
    assert split(list(OUTPUT)) == (THINKING, ANSWER)


@pytest.mark.parametrize("tag", ["<think>", "</think>"])
def test_every_split_inside_each_tag_is_handled(tag):
    start = OUTPUT.index(tag)
    for a in range(start + 1, start + len(tag)):
        for b in range(a + 1, start + len(tag)):
            assert split([OUTPUT[:a], OUTPUT[a:b], OUTPUT[b:]]) == (THINKING, ANSWER)


def test_a_missing_closing_tag_leaves_everything_as_thinking():
    assert split(["<think>I am still thin", "king when max_tokens hits"]) == (
        "I am still thinking when max_tokens hits", "")


def test_output_without_a_think_block_is_all_answer():
    assert split(["Just ", "an answer <thin", "g> with angle brackets."]) == (
        "", "Just an answer <thing> with angle brackets.")


def test_a_prompt_that_opened_the_think_block_starts_inside_it():
    assert split(["reasoning</th", "ink>\n\nanswer"], starts_in_thinking=True) == (
        "reasoning", "answer")


def test_thinking_never_leaks_into_streamed_text_chunks():
    parser = ResponseParser()
    chunks = [c for ch in OUTPUT for c in parser.push(ch)] + parser.finish()
    assert "".join(c.text for c in chunks) == ANSWER
    assert all("think" not in c.text for c in chunks)


def test_the_split_works_on_real_tokenizer_pieces(chat_model):
    tokenizer = chat_model.engine().tokenizer
    decoder = IncrementalDecoder(tokenizer)
    ids = tokenizer(OUTPUT, add_special_tokens=False)["input_ids"]
    pieces = [decoder.push(i) for i in ids] + [decoder.flush()]
    assert "".join(pieces) == OUTPUT
    assert split(pieces) == (THINKING, ANSWER)


def test_a_model_that_cannot_think_refuses_think_true(backend_model):
    with pytest.raises(InvalidRequestError, match="does not support thinking"):
        backend_model.chat([{"role": "user", "content": "hi"}], think=True, max_tokens=4)
    assert backend_model.chat([{"role": "user", "content": "hi"}], think=False,
                              max_tokens=4).usage.completion_tokens > 0


def test_think_reaches_a_template_that_has_the_switch(qwen3_style_model):
    hi = [ChatMessage("user", "hi")]
    assert qwen3_style_model.render_chat(hi, GenerationConfig(think=False)).endswith(
        "<think>\n\n</think>\n\n")
    assert qwen3_style_model.render_chat(hi, GenerationConfig(think=True)).endswith(
        "<|im_start|>assistant\n")
    assert "thinking" in qwen3_style_model.info().capabilities


def test_earlier_thinking_is_left_out_of_the_next_prompt(backend_model):
    history = [ChatMessage("user", "2+2?"),
               ChatMessage("assistant", "<think>secret reasoning</think>\n\n4",
                           thinking="more secret reasoning"),
               ChatMessage("user", "and 3+3?")]
    prompt = backend_model.render_chat(history)
    assert "secret" not in prompt and "4<|im_end|>" in prompt


def test_a_real_model_inside_an_opened_think_block_yields_only_thinking(open_think_model):
    completion = open_think_model.chat([{"role": "user", "content": "What is 2+2?"}],
                                       temperature=0.0, max_tokens=16)
    assert completion.thinking.strip() and completion.text == ""
    end_of_turn = 1 if completion.finish_reason == "stop" else 0  # EOS is not reasoning
    usage = completion.usage
    assert usage.reasoning_tokens == usage.completion_tokens - end_of_turn > 0


def test_a_thinking_model_may_think_before_a_constrained_answer(qwen3_style_model):
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}},
              "required": ["answer"]}
    completion = qwen3_style_model.chat(
        [{"role": "user", "content": "What is 2+2? Answer in JSON."}], response_format=schema,
        think=True, temperature=0.0, max_tokens=300)
    assert completion.finish_reason == "stop"
    jsonschema.validate(json.loads(completion.text), schema)


def test_streamed_thinking_arrives_in_thinking_chunks(open_think_model):
    chunks = list(open_think_model.stream_chat([{"role": "user", "content": "Why?"}],
                                               temperature=0.0, max_tokens=8))
    assert any(c.thinking for c in chunks) and not any(c.text for c in chunks)


EFFORT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{% endfor %}{% if reasoning_effort %}<|im_start|>system\nReasoning: "
    "{{ reasoning_effort }}<|im_end|>\n{% endif %}<|im_start|>assistant\n<think>\n")


@pytest.mark.parametrize("backend", ["llamacpp", "huggingface"])
def test_a_thinking_level_reaches_a_template_that_reads_reasoning_effort(backend,
                                                                           chat_gguf_path):
    from adam_integrations.backends.local.huggingface import HuggingFaceModel
    from adam_integrations.backends.local.llamacpp import LlamaCppModel

    model = (LlamaCppModel if backend == "llamacpp" else HuggingFaceModel)(
        str(chat_gguf_path), chat_template=EFFORT_TEMPLATE)
    try:
        hello = [ChatMessage("user", "Hi")]
        assert "Reasoning: high" in model.render_chat(hello, GenerationConfig(think="high"))
        assert "Reasoning:" not in model.render_chat(hello, GenerationConfig(think=True))
        assert model.thinking_control().startswith("reasoning_effort")
    finally:
        model.unload()
