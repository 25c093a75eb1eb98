"""Thinking controls: each template's own switch gets the level; a level on an on/off or
always-on model turns thinking on (Ollama's ``ThinkValue``, OpenAI's engines); a model
that cannot think, or a level a level list lacks, is refused saying what the model takes
(``core.prompt``)."""

from __future__ import annotations

import jinja2
import pytest

from adam_integrations import ChatMessage, GenerationConfig, InvalidRequestError
from adam_integrations.core.prompt import TemplateTraits, template_inputs
from adam_integrations.wire.openai import ChatCompletionRequest

HELLO = [ChatMessage("user", "Hi")]
# The switches as Qwen3's (enable_thinking), Qwen3.6's (and preserve_thinking), a
# level-taking template naming its levels (as Qwen3.8's effort control is described), and
# gpt-oss's (reads reasoning_effort, names none) spell them.
QWEN3 = ("{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
         "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n"
         "</think>{% else %}<think>\n{% endif %}")
QWEN36 = ("{% for m in messages %}{% if m.reasoning_content and preserve_thinking %}"
          "<think>{{ m.reasoning_content }}</think>{% endif %}{{ m.role }}: {{ m.content }}\n"
          "{% endfor %}{% if enable_thinking is defined and enable_thinking is false %}"
          "<think>\n\n</think>{% else %}<think>\n{% endif %}")
LEVELS = ("{% if reasoning_effort not in ['low', 'medium', 'xhigh'] %}{{ raise('level') }}"
          "{% endif %}Reasoning: {{ reasoning_effort }}\n<think>\n")
GPT_OSS = "Reasoning: {{ reasoning_effort }}\n{% for m in messages %}{{ m.content }}{% endfor %}"


def variables(template: str, **options) -> dict:
    return template_inputs(HELLO, GenerationConfig(**options), TemplateTraits.of(template),
                           "m")[1]


def render(template: str, messages: list[ChatMessage], **options) -> str:
    dicts, extra = template_inputs(messages, GenerationConfig(**options),
                                   TemplateTraits.of(template), "m")
    return jinja2.Template(template).render(messages=dicts, **extra)


def test_each_template_says_how_its_thinking_is_set():
    assert TemplateTraits.of(QWEN3).thinking_control.startswith("on/off (enable_thinking); "
                                                                "a level (think")
    assert TemplateTraits.of("<think>").thinking_control.startswith("always on; a level")
    assert TemplateTraits.of(LEVELS).thinking_control == "reasoning_effort (low, medium, xhigh)"
    assert TemplateTraits.of(GPT_OSS).effort_levels == ("low", "medium", "high", "xhigh")
    assert TemplateTraits.of(QWEN36).preserve_switch


@pytest.mark.parametrize("level", ["low", "medium", "xhigh"])
def test_a_level_the_template_names_reaches_it_with_thinking_on(level):
    assert variables(LEVELS, think=level)["reasoning_effort"] == level
    assert variables(LEVELS, reasoning_effort=level)["reasoning_effort"] == level


def test_a_level_the_model_lacks_is_refused_with_what_it_takes():
    with pytest.raises(InvalidRequestError, match="takes the levels low, medium, xhigh, "
                                                  "not the level 'high'"):
        variables(LEVELS, think="high")
    with pytest.raises(InvalidRequestError, match="does not support thinking"):
        variables("{{ messages[0].content }}", think="low")


@pytest.mark.parametrize("options", [{"think": "low"}, {"reasoning_effort": "high"},
                                     {"think": "xhigh"}])
def test_a_level_on_an_on_off_or_always_on_model_turns_thinking_on(options):
    assert variables(QWEN3, **options) == variables(QWEN3, think=True) == {
        "enable_thinking": True}
    assert variables("<think>{{ messages[0].content }}", **options) == {}


def test_preserve_thinking_reaches_a_template_with_the_switch_and_is_refused_elsewhere():
    turns = [ChatMessage("user", "2+2?"), ChatMessage("assistant", "4", thinking="Easy."),
             ChatMessage("user", "3+3?")]
    assert "<think>Easy.</think>" in render(QWEN36, turns, preserve_thinking=True)
    assert "Easy." not in render(QWEN36, turns, preserve_thinking=False)
    with pytest.raises(InvalidRequestError, match="no preserve_thinking switch"):
        variables(QWEN3, preserve_thinking=True)


def test_contradicting_switches_are_refused():
    with pytest.raises(InvalidRequestError, match="contradict"):
        GenerationConfig(think=False, reasoning_effort="low")
    with pytest.raises(InvalidRequestError, match="must be one of"):
        GenerationConfig(reasoning_effort="extreme")


def config_from_request(body: dict) -> GenerationConfig:
    return ChatCompletionRequest.parse({"model": "m", **body}).to_config()


def test_vllm_style_chat_template_kwargs_are_read_and_unknown_ones_refused():
    body = {"messages": [{"role": "user", "content": "hi"}],
            "chat_template_kwargs": {"enable_thinking": False, "preserve_thinking": True}}
    config = config_from_request(body)
    assert (config.think, config.preserve_thinking) == (False, True)
    with pytest.raises(InvalidRequestError, match="unknown field 'add_vision_id' in "
                                                  "chat_template_kwargs"):
        config_from_request({**body, "chat_template_kwargs": {"add_vision_id": True}})
    with pytest.raises(InvalidRequestError, match="must be true or false"):
        config_from_request({**body, "chat_template_kwargs": {"enable_thinking": "no"}})
