"""Tool calls in the XML form Qwen3-Coder, Qwen3.5 and Qwen3.6 are trained on, read as
they stream (``core.output``)."""

from __future__ import annotations

import pytest

from adam_integrations.core.output import ResponseParser, tool_call_from_json
from adam_integrations.core.types import collect

CALL = ("<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
        "<parameter=days>\n3\n</parameter>\n<parameter=units>\n[\"C\", \"F\"]\n</parameter>\n"
        "</function>\n</tool_call>")


@pytest.mark.parametrize("size", [1, 2, 7, len(CALL)])
def test_an_xml_call_streamed_in_any_pieces_becomes_one_tool_call(size):
    parser = ResponseParser(tool_names=["get_weather"], parse_tool_calls=True)
    text = "Checking.\n" + CALL
    chunks = [c for i in range(0, len(text), size) for c in parser.push(text[i:i + size])]
    completion = collect(chunks + parser.finish())
    [call] = completion.tool_calls
    assert call.name == "get_weather"
    assert call.arguments == {"city": "Paris", "days": 3, "units": ["C", "F"]}
    assert completion.text == "Checking.\n" and not completion.invalid_tool_calls


def test_a_value_that_is_only_text_stays_text_even_when_it_spans_lines():
    call = tool_call_from_json("<function=note>\n<parameter=body>\nline one\nline two\n"
                               "</parameter>\n</function>")
    assert call.tool_calls[0].arguments == {"body": "line one\nline two"}


def test_an_unknown_tool_or_a_cut_off_call_is_an_invalid_call_naming_it():
    unknown = tool_call_from_json("<function=nope>\n</function>", ["get_weather"])
    assert unknown.invalid_tool_calls[0].name == "nope"
    assert "unknown tool 'nope'" in unknown.invalid_tool_calls[0].error
    cut = tool_call_from_json("<function=get_weather>\n<parameter=city>\nPa")
    assert cut.invalid_tool_calls[0].name == "get_weather"
    assert "<function=NAME>" in cut.invalid_tool_calls[0].error
