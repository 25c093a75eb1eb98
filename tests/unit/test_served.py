"""``served.ServedModel``: one model's stored layers, domain and defaults, applied one way
whichever door a request comes in by (``ModelManager`` or ``adam serve``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from adam_integrations import GenerationConfig, ModelManager, registry
from adam_integrations.catalog.domains import get_domain
from adam_integrations.catalog.names import register_model_names
from adam_integrations.catalog.qwen3 import family_sampling
from adam_integrations.core.stores.ollama_parameters import DEFAULT_OPTIONS, config_fields
from adam_integrations.core.stores.ollama_store import ModelLayers
from adam_integrations.core.types import ChatMessage, ModelSource
from adam_integrations.served import ServedModel
from adam_integrations.server import create_app
from adam_integrations.server.models import ServedModels
from tests.unit.scripted import ScriptedBackend


class QwenLikeBackend(ScriptedBackend):
    """The scripted backend, of the Qwen3 family (its preset applies)."""

    name = "scripted-qwen3"

    def sampling_preset(self, config: GenerationConfig) -> dict:
        return family_sampling("qwen3", config.think, thinks_by_default=True)


def test_sampling_is_decided_in_one_order():
    layers = ModelLayers(parameters={"top_k": 7, "stop": "END"})
    model = ServedModel("m", ScriptedBackend(), layers=layers,
                        engine_defaults={"top_k": 40, "top_p": 0.9, "temperature": 0.8})
    # 1. the request, 2. the stored parameters field by field, 5. the engine's defaults
    asked = model.sampling(GenerationConfig(temperature=0.1))
    assert (asked.temperature, asked.top_k, asked.stop, asked.top_p) == (0.1, 7, ["END"], 0.9)
    # the stored top_k chose sampling: no domain, no preset, the engine fills the rest
    qwen = ServedModel("m", QwenLikeBackend(), layers=layers, domain=get_domain("code"),
                       engine_defaults={"temperature": 0.8})
    assert qwen.sampling(GenerationConfig()).temperature == 0.8
    # 3. the domain, when nothing above chose sampling (and then no preset)
    coder = ServedModel("m", QwenLikeBackend(), domain=get_domain("code"),
                        engine_defaults={"top_p": 0.9})
    coded = coder.sampling(GenerationConfig())
    assert coded.temperature == get_domain("code").sampling["temperature"]
    assert (coded.top_k, coded.top_p) == (None, 0.9)
    # 4. the family preset for the request's mode, instead of the engine's defaults
    plain = ServedModel("m", QwenLikeBackend(), engine_defaults={"repetition_penalty": 1.1})
    thinking, not_thinking = (plain.sampling(GenerationConfig(think=t)) for t in (None, False))
    assert (thinking.temperature, thinking.top_p, thinking.repetition_penalty) == (0.6, 0.95,
                                                                                     None)
    assert (not_thinking.temperature, not_thinking.top_p) == (0.7, 0.8)
    # nothing to add: the request's own config object comes back
    chosen = GenerationConfig(temperature=0.3, top_k=3, top_p=0.5, min_p=0.1)
    assert ServedModel("m", ScriptedBackend()).sampling(chosen) is chosen


def test_the_conversation_opens_as_the_first_message_says():
    layers = ModelLayers(system="Be brief.", messages=[
        {"role": "user", "content": "example"}, {"role": "assistant", "content": "ok"}])
    model = ServedModel("m", ScriptedBackend(), layers=layers, domain=get_domain("code"))
    user = ChatMessage("user", "hi")
    assert [(m.role, m.content) for m in model.conversation([user])] == [
        ("system", "Be brief."), ("user", "example"), ("assistant", "ok"), ("user", "hi")]
    own = model.conversation([{"role": "system", "content": "Mine."}, user])
    assert [m.content for m in own] == ["Mine.", "example", "ok", "hi"]
    # only the first message is looked at (Ollama's rule): a later system message is kept
    # where it is, and the stored one still opens
    later = model.conversation([user, ChatMessage("system", "Later.")])
    assert [m.content for m in later] == ["Be brief.", "example", "ok", "hi", "Later."]
    domain_only = ServedModel("m", ScriptedBackend(), domain=get_domain("code"))
    assert domain_only.conversation([user])[0].content == get_domain("code").system_prompt


def _store_model(root: Path, name: str, layers: dict[str, str]) -> None:
    """A model in an Ollama store made of layers only (what ``model_layers`` reads)."""
    entries = []
    for media_type, text in layers.items():
        digest = hashlib.sha256(text.encode()).hexdigest()
        (root / "blobs").mkdir(parents=True, exist_ok=True)
        (root / "blobs" / f"sha256-{digest}").write_text(text)
        entries.append({"mediaType": f"application/vnd.ollama.image.{media_type}",
                        "digest": f"sha256:{digest}", "size": len(text)})
    manifest = root / "manifests" / "registry.ollama.ai" / "library" / name / "latest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": entries}))


def _pirate_names(name: str) -> ModelSource | None:
    if name in ("scripted-pirate", "scripted-plain"):
        return ModelSource("folder", f"scripted://{name}", name, "a scripted created model",
                           ollama_name=name.removeprefix("scripted-"))
    return None


@pytest.mark.parametrize("stored_sampling", [True, False])
async def test_the_manager_and_the_server_give_the_backend_the_same_request(
        tmp_path, monkeypatch, stored_sampling):
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "store"))
    parameters = {"temperature": 0.3, "top_k": 9, "top_p": 0.7, "min_p": 0.05,
                  "repeat_penalty": 1.2, "stop": ["ARR"]} if stored_sampling else {}
    name = "pirate" if stored_sampling else "plain"
    _store_model(tmp_path / "store", name, {
        "system": "Talk like a pirate.", "params": json.dumps(parameters),
        "messages": json.dumps([{"role": "user", "content": "ahoy"},
                                {"role": "assistant", "content": "arr"}])})
    register_model_names(_pirate_names)
    registry.register("scripted", ScriptedBackend)
    conversation = [{"role": "user", "content": "say: yo ho"}]

    manager = ModelManager(model=f"scripted-{name}", model_type="scripted")
    backend = manager.backend
    backend.requests.clear()
    assert manager.chat(conversation, max_tokens=5, seed=1).text == "yo ho"
    app = create_app(ServedModels(tmp_path / "aliases.json", model_type="scripted"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1:11434") as http:
        answer = await http.post("/api/chat", json={
            "model": f"scripted-{name}", "messages": conversation, "stream": False,
            "options": {"num_predict": 5, "seed": 1}})
    assert answer.json()["message"]["content"] == "yo ho"

    by_manager, by_server = backend.requests  # one shared backend object saw both
    assert by_manager.messages == by_server.messages
    assert [m.content for m in by_server.messages] == [
        "Talk like a pirate.", "ahoy", "arr", "say: yo ho"]
    if stored_sampling:  # the model says how to sample: both doors sample so
        assert by_manager.config == by_server.config
        assert (by_server.config.temperature, by_server.config.stop) == (0.3, ["ARR"])
    else:  # what nobody set: the server samples as Ollama does, the manager leaves it
        ollama_defaults = config_fields(DEFAULT_OPTIONS)
        assert by_server.config == by_manager.config.merged(**ollama_defaults)
        assert by_manager.config.temperature is None
