"""The decode loop's shared half without a model: ``decoding.chunks.ChunkAssembler``, fed
token texts one at a time as a local backend's loop feeds them. Stop strings cut across
tokens, reasoning is split from the answer and counted, tool calls come out whole, and the
last chunk says why the answer ended and what it cost."""

from __future__ import annotations

from adam_integrations.core.output import ResponseParser
from adam_integrations.core.types import Chunk, GenerationConfig
from adam_integrations.decoding.chunks import ChunkAssembler


def _run(tokens: list[str], *, config: GenerationConfig | None = None,
         parser: ResponseParser | None = None, max_new: int = 50,
         end_of_turn: bool = False) -> tuple[list[Chunk], ChunkAssembler]:
    """What a backend's loop yields for ``tokens``: a chunk per token that has one, then
    the last (the loop stops feeding once a stop string is reached)."""
    assembler = ChunkAssembler(config or GenerationConfig(), parser or ResponseParser(),
                               prompt_tokens=7, max_new=max_new)
    chunks = []
    for text in tokens:
        piece = assembler.token(text)
        if piece is not None:
            chunks.append(piece)
        if assembler.stopped:
            break
    if end_of_turn:
        assembler.end_of_turn()
    chunks.append(assembler.finish())
    return chunks, assembler


def _text(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks)


def test_a_stop_string_split_over_tokens_ends_the_answer_before_it():
    chunks, assembler = _run(["Hel", "lo E", "N", "D and more", " never"],
                             config=GenerationConfig(stop=["END"]))
    assert _text(chunks) == "Hello "
    assert assembler.stopped and chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage.completion_tokens == 4  # the tokens read, the stop's included


def test_the_end_of_turn_token_is_counted_and_never_shown():
    chunks, _ = _run(["Hi", " there"], end_of_turn=True)
    assert _text(chunks) == "Hi there"
    last = chunks[-1]
    assert last.finish_reason == "stop"
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (7, 3)


def test_max_tokens_without_an_end_is_length():
    chunks, _ = _run(["a", "b", "c"], max_new=3)
    assert chunks[-1].finish_reason == "length"
    chunks, _ = _run(["a", "b"], max_new=3)  # the model stopped by itself: not cut
    assert chunks[-1].finish_reason == "stop"


def test_reasoning_is_apart_from_the_answer_and_counted():
    chunks, _ = _run(["<think>", "Let me", " see", "</think>", "\n\n", "Paris", "."],
                     end_of_turn=True)
    assert "".join(c.thinking for c in chunks) == "Let me see"
    assert _text(chunks) == "Paris."
    usage = chunks[-1].usage
    # the think block's four tokens, its tags included; the end of turn is not reasoning
    assert (usage.completion_tokens, usage.reasoning_tokens) == (8, 4)


def test_a_tool_call_comes_out_whole_however_it_was_split():
    parser = ResponseParser(tool_names=["get_weather"], parse_tool_calls=True)
    pieces = ['<tool_call>\n{"na', 'me": "get_wea', 'ther", "argu', 'ments": {"city": ',
              '"Paris"}}\n</tool', '_call>']
    chunks, _ = _run(pieces, parser=parser, end_of_turn=True)
    calls = [call for chunk in chunks for call in chunk.tool_calls]
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert _text(chunks).strip() == ""


def test_a_constrained_answer_closed_at_the_budget_is_length_though_whole():
    assembler = ChunkAssembler(GenerationConfig(), ResponseParser(), prompt_tokens=1,
                               max_new=2)
    assembler.token('{"a": 1}')
    assembler.end_of_answer()
    assert assembler.finish().finish_reason == "stop"
    assembler = ChunkAssembler(GenerationConfig(), ResponseParser(), prompt_tokens=1,
                               max_new=2)
    assembler.token('{"a": 1}')
    assert assembler.finish(closed_early=True).finish_reason == "length"
