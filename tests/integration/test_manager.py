"""ModelManager, the API of the original design note, on the embedded models."""

from __future__ import annotations

import pytest

from adam_integrations import (
    AdamError,
    ChatMessage,
    Completion,
    ModelManager,
    UnknownBackendError,
    UnknownDomainError,
)


def test_generate_response_returns_the_answer_as_a_string(manager):
    answer = manager.generate_response("What is 2 + 2?", temperature=0.0, max_tokens=20)
    assert isinstance(answer, str) and answer.strip()


def test_generate_stream_yields_the_same_text_piece_by_piece(manager):
    pieces = list(manager.generate_stream("What is 2 + 2?", temperature=0.0, max_tokens=20))
    assert len(pieces) > 1 and all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces) == manager.generate_response("What is 2 + 2?", temperature=0.0,
                                                        max_tokens=20)


def test_a_system_prompt_reaches_the_model(manager, chat_model):
    pirate = "You are a pirate. Always talk like a pirate."
    rendered = chat_model.render_chat([ChatMessage("system", pirate), ChatMessage("user", "Hi")])
    assert pirate in rendered
    with_system = manager.chat([{"role": "system", "content": pirate},
                                {"role": "user", "content": "Hi"}], max_tokens=1)
    assert with_system.usage.prompt_tokens == len(
        chat_model.engine().tokenizer(rendered, add_special_tokens=False)["input_ids"])


def test_chat_returns_a_completion_with_usage(manager):
    completion = manager.chat([{"role": "user", "content": "Hello"}], max_tokens=4,
                              temperature=0.0)
    assert isinstance(completion, Completion) and completion.usage.completion_tokens <= 4


async def test_async_variants_give_the_same_answers(manager):
    sync = manager.generate_response("Name a fruit.", temperature=0.0, max_tokens=10)
    assert await manager.agenerate_response("Name a fruit.", temperature=0.0,
                                            max_tokens=10) == sync
    pieces = [p async for p in manager.agenerate_stream("Name a fruit.", temperature=0.0,
                                                        max_tokens=10)]
    assert "".join(pieces) == sync
    assert await manager.aembed("text") == manager.embed("text")


def test_embed_and_batch_embed_return_plain_float_vectors(manager):
    vector = manager.embed("one text")
    assert len(vector) == 384 and type(vector[0]) is float
    assert manager.batch_embed(["one text", "two"])[0] == pytest.approx(vector, abs=1e-6)
    assert manager.batch_embed([]) == []
    with pytest.raises(TypeError, match="batch_embed"):
        manager.embed(["a list"])


def test_the_manager_explains_its_choice(manager):
    assert "embedded default" in manager.explanation
    assert manager.info.name == "SmolLM2-135M-Instruct"


def test_a_domain_adds_its_system_prompt_when_the_call_has_none(manager):
    coder = ModelManager(domain="code")
    assert coder.backend is manager.backend  # one loaded copy; only the domain differs
    hi = {"role": "user", "content": "Hi"}
    explicit = manager.chat([{"role": "system", "content": coder.domain.system_prompt}, hi],
                            max_tokens=1)
    assert coder.chat([hi], max_tokens=1).usage.prompt_tokens == explicit.usage.prompt_tokens
    assert coder.chat([hi], max_tokens=1).usage.prompt_tokens != manager.chat(
        [hi], max_tokens=1).usage.prompt_tokens


def test_an_unknown_domain_lists_the_known_ones():
    with pytest.raises(UnknownDomainError, match=r"known domains: .*code.*docker"):
        ModelManager(domain="astrology")


def test_an_unknown_backend_lists_the_registered_ones():
    with pytest.raises(UnknownBackendError, match="huggingface"):
        ModelManager(model_type="tgi")


def test_unknown_generation_options_are_refused_by_name(manager):
    with pytest.raises(TypeError, match="max_new_tokens"):
        manager.generate_response("Hi", max_new_tokens=3)


def test_empty_prompts_and_bad_limits_are_refused(manager):
    with pytest.raises(ValueError, match="prompt is empty"):
        manager.generate_response("")
    with pytest.raises(ValueError, match="max_tokens"):
        manager.generate_response("Hi", max_tokens=0)


def test_sharing_with_ollama_puts_the_gguf_into_the_store_and_refuses_what_cannot_convert(
        tmp_path, monkeypatch, embedding_folder):
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path))
    manager = ModelManager(share_with_ollama=True)
    assert manager.shared_as == "smollm2-135m-instruct:q4_1"
    manifest = tmp_path / "manifests/registry.ollama.ai/library/smollm2-135m-instruct/q4_1"
    assert manifest.is_file()
    with pytest.raises(AdamError, match="a bert model; convert writes llama"):
        ModelManager(model=str(embedding_folder), share_with_ollama=True)
