"""Qwen3.5's hybrid-attention architecture on both in-process backends.

The fixtures (``tests/fixtures/qwen35_models.py``) are tiny random-weight models built from
transformers' own Qwen3.5 config classes, with Qwen's tokenizer and Qwen3.5's official
chat template, saved as safetensors and converted to GGUF by llama.cpp's converter. With
random weights the text is noise: these tests check that the architecture loads and
generates, that both backends render the same prompt, and the template's thinking switch.
"""

from __future__ import annotations

import pytest

from adam_integrations import (
    ChatMessage,
    GenerationConfig,
    InvalidRequestError,
    ModelManager,
    ToolCall,
)
from adam_integrations.core.memory import kv_bytes_per_token
from adam_integrations.core.stores.gguf_header import read_gguf_header

VARIANTS = ("qwen35", "qwen35moe")
HELLO = [ChatMessage("user", "Hi")]


@pytest.fixture(scope="module", params=[(b, v) for b in ("llamacpp", "huggingface")
                                        for v in VARIANTS],
                ids=lambda p: f"{p[0]}-{p[1]}")
def model(request, qwen35):
    backend, variant = request.param
    path = qwen35.gguf(variant) if backend == "llamacpp" else qwen35.hf_folder(variant)
    manager = ModelManager(model_type=backend, model=str(path))
    yield manager
    manager.unload()


def test_the_hybrid_architecture_loads_and_generates_on_both_backends(model):
    answer = model.chat([{"role": "user", "content": "Hi"}], max_tokens=4, temperature=0.0,
                        think=False)
    assert answer.usage.completion_tokens == 4 and answer.usage.prompt_tokens > 0
    assert answer.text and not answer.thinking


def test_qwen35s_template_thinks_by_default_and_switches_off(model):
    backend = model.backend
    default = backend.render_chat(HELLO, GenerationConfig())
    assert default.endswith("<|im_start|>assistant\n<think>\n")
    off = backend.render_chat(HELLO, GenerationConfig(think=False))
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert backend.thinking_control().startswith("on/off (enable_thinking); a level")
    # the opened think block: what comes first is reasoning, not answer
    chunks = list(model.stream_chat([{"role": "user", "content": "Why?"}], max_tokens=4,
                                    temperature=0.0))
    assert any(c.thinking for c in chunks) and not any(c.text for c in chunks)


def test_a_level_turns_qwen35s_thinking_on_and_preserve_thinking_is_refused(model):
    """Qwen3.5's thinking is on or off: a level means on (Ollama's ThinkValue, issue 39);
    it has no preserve_thinking switch (Qwen3.6 has)."""
    backend = model.backend
    assert backend.render_chat(HELLO, GenerationConfig(think="high")) == \
        backend.render_chat(HELLO, GenerationConfig(think=True))
    with pytest.raises(InvalidRequestError, match="no preserve_thinking switch"):
        model.chat([{"role": "user", "content": "Hi"}], max_tokens=1, preserve_thinking=True)


def test_both_backends_render_the_same_qwen35_prompt(qwen35):
    prompts = set()
    for backend, path in (("llamacpp", qwen35.gguf("qwen35")),
                          ("huggingface", qwen35.hf_folder("qwen35"))):
        manager = ModelManager(model_type=backend, model=str(path))
        try:
            turns = [ChatMessage("system", "Be brief."), ChatMessage("user", "2+2?"),
                     ChatMessage("assistant", "4", thinking="Easy."),
                     ChatMessage("user", "3+3?")]
            prompts.add(manager.backend.render_chat(turns, GenerationConfig(think=True)))
        finally:
            manager.unload()
    assert len(prompts) == 1
    assert "Easy." not in prompts.pop()  # reasoning before the last question is dropped


def test_the_kv_cache_estimate_counts_only_the_full_attention_layers(qwen35):
    header = read_gguf_header(qwen35.gguf("qwen35"))
    assert header.architecture == "qwen35"
    assert header.field("block_count") == 4
    # one full-attention layer of 4: K and V, 2 KV heads of 64, f16
    assert kv_bytes_per_token(header) == 2 * 1 * 2 * 64 * 2


def test_tools_and_earlier_calls_render_in_qwen35s_xml_form(qwen35):
    manager = ModelManager(model_type="llamacpp", model=str(qwen35.gguf("qwen35")))
    weather = {"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}
    turns = [ChatMessage("user", "Weather in Paris?"),
             ChatMessage("assistant", "", tool_calls=[
                 ToolCall(name="get_weather", arguments={"city": "Paris"}, id="call_1")]),
             ChatMessage("tool", "18 C", tool_call_id="call_1")]
    try:
        prompt = manager.backend.render_chat(turns, GenerationConfig(tools=[weather]))
    finally:
        manager.unload()
    assert "<function=get_weather>\n<parameter=city>\nParis\n</parameter>" in prompt
    assert "<tool_response>\n18 C\n</tool_response>" in prompt
    assert '"name": "get_weather"' in prompt  # the tool list, as JSON in the system turn


@pytest.mark.parametrize("backend", ["llamacpp", "huggingface"])
async def test_concurrent_requests_on_the_hybrid_model_read_their_own_prompts(qwen35,
                                                                              backend):
    """A recurrent state cannot be cut part way, so llama.cpp's slots share no prefix on
    Qwen3.5 (each request reads its whole prompt, none waits for another's), and on
    transformers its linear-attention cache cannot be padded into a batch (each row decodes
    in its own forward pass): either way they run together and give the answers they give
    alone."""
    import asyncio

    from adam_integrations.backends.local.huggingface import HuggingFaceModel
    from adam_integrations.backends.local.llamacpp import LlamaCppModel

    model = LlamaCppModel(str(qwen35.gguf("qwen35")), parallel=3, n_ctx=1024) \
        if backend == "llamacpp" else HuggingFaceModel(str(qwen35.hf_folder("qwen35")),
                                                       parallel=3)
    rules = "Rules: " + " ".join(f"item {i} costs {i} euros." for i in range(40))

    async def one(question: str):
        conversation = [{"role": "system", "content": rules},
                        {"role": "user", "content": question}]
        text, usage = "", None
        async for chunk in model.astream_chat(conversation, max_tokens=6, temperature=0.0,
                                              think=False):
            text, usage = text + chunk.text, chunk.usage or usage
        return text, usage

    try:
        alone = [await one(q) for q in ("a", "b", "c")]
        together = await asyncio.gather(*(one(q) for q in ("a", "b", "c")))
        assert [text for text, _ in together] == [text for text, _ in alone]
        assert all(usage.cached_tokens == 0 and usage.completion_tokens == 6
                   for _, usage in together)
    finally:
        model.unload()
