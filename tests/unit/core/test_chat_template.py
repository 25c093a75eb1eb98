"""Chat templates render in a limited sandbox (core/chat_template.py): whatever a template
does, it stops with a TemplateLimitError naming the limit (time, size, recursion), soon
and without building the huge value first; real templates render exactly as
transformers renders them."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from adam_integrations.core.chat_template import (
    TemplateLimits,
    check_chat_template,
    render_chat_template,
    template_limits,
)
from adam_integrations.core.errors import InvalidRequestError, TemplateLimitError

HELLO = [{"role": "user", "content": "hi"}]
QUICK = TemplateLimits(max_chars=1_000_000, seconds=1.0)

SIZE_ATTACKS = {
    "string times a number": '{{ "a" * 100000000 }}',
    "a list times a number": '{{ messages * 100000000 }}',
    "~ doubling": '{% set ns = namespace(s="a") %}{% for i in range(60) %}'
                  '{% set ns.s = ns.s ~ ns.s %}{% endfor %}',
    "+ doubling": '{% set ns = namespace(s="a") %}{% for i in range(60) %}'
                  '{% set ns.s = ns.s + ns.s %}{% endfor %}',
    "str.replace": '{% set s = "a" * 100000 %}{{ s.replace("a", s) }}',
    "replace filter": '{% set s = "a" * 100000 %}{{ s | replace("a", s) }}',
    "center filter": '{{ "a" | center(1000000000) }}',
    "str.ljust": '{{ "a".ljust(1000000000) }}',
    "format filter width": '{{ "%01000000000d" | format(1) }}',
    "% width": '{{ "%01000000000d" % 1 }}',
    "% star width": '{{ "%*d" % (1000000000, 1) }}',
    "str.format width": '{{ "{:>1000000000}".format(1) }}',
    "str.format nested width": '{{ "{:>{}}".format(1, 1000000000) }}',
    "a big power": "{{ 10 ** 100000000 }}",
    "batch fill": "{{ [1] | batch(1000000000, 0) | list }}",
    "slice count": "{{ [1] | slice(1000000000) | list }}",
    "tojson indent": '{{ {"a": [1, 2, 3]} | tojson(indent=100000000) }}',
    "indent width": '{{ ("a\\n" * 1000) | indent(10000000) }}',
    "join filter": '{% set s = "a" * 400000 %}{{ [s, s, s, s] | join }}',
    "str.join": '{% set s = "a" * 400000 %}{{ "".join([s, s, s, s]) }}',
    "expandtabs": '{{ ("\\t" * 1000).expandtabs(1000000000) }}',
    "output in a loop": "{% for i in range(100000) %}{% for j in range(100) %}"
                        '{{ "x" * 1000 }}{% endfor %}{% endfor %}',
    "a block set in a loop": "{% set x %}{% for i in range(100000) %}{% for j in "
                             "range(100000) %}{{ 'abc' * 100 }}{% endfor %}{% endfor %}"
                             "{% endset %}",
}
TIME_ATTACKS = {
    "nested range loops": "{% for i in range(100000) %}{% for j in range(100000) %}"
                          "{% endfor %}{% endfor %}",
    "a macro that fans out": "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}"
                             "{% endif %}{% endmacro %}{{ f(40) }}",
}


@pytest.mark.parametrize("template", SIZE_ATTACKS.values(), ids=SIZE_ATTACKS)
def test_a_template_that_builds_too_much_text_is_stopped_before_it_does(template):
    tracemalloc.start()
    try:
        with pytest.raises(TemplateLimitError, match="over its limit"):
            render_chat_template(template, HELLO, limits=QUICK)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, f"{peak / 1e6:.0f} MB allocated on the way"


@pytest.mark.parametrize("template", TIME_ATTACKS.values(), ids=TIME_ATTACKS)
def test_a_template_that_runs_too_long_is_stopped_at_its_time_limit(template):
    started = time.monotonic()
    with pytest.raises(TemplateLimitError, match="ran for more than 1 seconds"):
        render_chat_template(template, HELLO, limits=QUICK)
    assert time.monotonic() - started < 30  # stopped, not run to its end (hours)


def test_a_recursive_macro_is_an_error_not_a_crash():
    template = "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}"
    with pytest.raises(TemplateLimitError, match="calls itself without end"):
        render_chat_template(template, HELLO)


def test_the_context_limits_hold_threads_started_from_it():
    """The server sets its limits per request; the backend renders on a worker thread."""
    from adam_integrations.core.streaming import iterate_in_thread

    def render():
        yield render_chat_template('{{ "a" * 2000 }}', HELLO)

    async def collect():
        return [piece async for piece in iterate_in_thread(render)]

    import asyncio

    with template_limits(TemplateLimits(max_chars=1000)), \
            pytest.raises(TemplateLimitError, match="limit of 1,000"):
        asyncio.run(collect())
    assert asyncio.run(collect()) == ["a" * 2000]  # the default limits elsewhere


@pytest.mark.parametrize("template, problem", [
    ("{{ messages[0].content + 5 }}", "TypeError"),
    ("{{ messages.__class__.__mro__ }}", "unsafe"),
    ("{{ raise_exception('roles must alternate') }}", "roles must alternate"),
    ("{{ lipsum(100000000) }}", "'lipsum' is undefined"),
    ("{% for m in messages %}", "does not compile"),
], ids=["type error", "sandbox escape", "the template's own refusal", "lipsum removed",
        "does not compile"])
def test_a_template_failing_on_a_conversation_is_a_clear_400(template, problem):
    with pytest.raises(InvalidRequestError, match=problem) as raised:
        render_chat_template(template, HELLO)
    assert not isinstance(raised.value, TemplateLimitError)


def test_a_template_is_checked_on_sample_conversations_when_a_model_is_created():
    with pytest.raises(InvalidRequestError, match="does not compile"):
        check_chat_template("{% for m in messages %}")
    with pytest.raises(TemplateLimitError) as raised:
        check_chat_template("{% if tools %}{{ 'x' * 100000000 }}{% endif %}")
    assert raised.value.param == "template"
    # a template's own rule refusing a sample is no fault of the template
    check_chat_template("{% if messages[0].role == 'system' %}"
                        "{{ raise_exception('no system role') }}{% endif %}ok")


def _real_templates() -> dict[str, str]:
    from adam_integrations.catalog.embedded import EMBEDDED_CHAT
    from adam_integrations.core.stores.gguf_header import read_gguf_header

    data = Path(__file__).parents[2] / "integration" / "data"
    found = {path.name: path.read_text() for path in sorted(data.glob("*.jinja"))}
    gguf = EMBEDDED_CHAT.path()
    if gguf is not None:
        found["smollm2"] = read_gguf_header(gguf).metadata["tokenizer.chat_template"]
    from tests.fixtures.qwen3_parts import find_parts

    parts = find_parts()
    if parts is not None:  # make qwen3-parts, part of make test, caches them
        found["Qwen3 (official)"] = parts.template.read_text()
        found["Qwen3.5 (official)"] = parts.qwen35_template.read_text()
    return found


CONVERSATIONS = [
    ([{"role": "user", "content": "hi"}], {}),
    ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "q"},
      {"role": "assistant", "content": "a", "reasoning_content": "thought"},
      {"role": "user", "content": "q2"}], {"enable_thinking": False}),
    ([{"role": "user", "content": "weather?"},
      {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
          "name": "get_weather", "arguments": {"city": "Paris"}}}]},
      {"role": "tool", "content": "sunny"}],
     {"tools": [{"type": "function", "function": {
         "name": "get_weather", "description": "the weather",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]}),
]


@pytest.mark.parametrize("name", list(_real_templates()))
def test_real_templates_render_as_transformers_renders_them(name):
    """The SmolLM2, Qwen3 and Qwen3.5 templates (the real ones where they are cached) and
    the test templates, over conversations with a system prompt, reasoning and tools."""
    from transformers.utils.chat_template_utils import render_jinja_template

    template = _real_templates()[name]
    for messages, extra in CONVERSATIONS:
        tools = extra.get("tools")
        switches = {k: v for k, v in extra.items() if k != "tools"}
        expected = render_jinja_template(
            [messages], tools=tools, chat_template=template, add_generation_prompt=True,
            bos_token="<s>", eos_token="</s>", **switches)[0][0]
        assert render_chat_template(template, messages, bos_token="<s>", eos_token="</s>",
                                    **extra) == expected
