"""What ``pip install adam-integrations`` alone gives (no extras): the core, LangChain's
and LlamaIndex's classes, and the backends that talk to a server (Ollama's API and
OpenAI-compatible engines), here against ``adam serve`` from the full install; and for
every part that needs an extra, an error naming it (never a ``ModuleNotFoundError`` from
a dependency)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from adam_integrations import ModelManager
from adam_integrations.core.extras import MissingExtraError

CHAT, EMBED = "smollm2:135m", "all-minilm:l6-v2"
GREEDY = {"temperature": 0.0, "max_tokens": 8}


def test_this_install_is_the_slim_one():
    heavy = ["torch", "transformers", "llama_cpp", "xgrammar", "starlette", "uvicorn"]
    assert [m for m in heavy if importlib.util.find_spec(m) is not None] == []


def test_the_ollama_backend_chats_and_embeds(full_server):
    manager = ModelManager(model=f"ollama:{CHAT}", host=full_server,
                           embedding_model=f"ollama:{EMBED}")
    assert manager.backend.name == "ollama"
    assert manager.generate_response("Say hi.", **GREEDY).strip()
    vector = manager.embed("a text to embed")
    assert len(vector) == 384


def test_langchain_and_llama_index_classes_run_on_remote_models(full_server):
    from adam_integrations.langchain import AdamEmbeddings, ChatAdam
    from adam_integrations.llama_index import AdamLLM

    chat = ChatAdam(model=f"ollama:{CHAT}", base_url=full_server, temperature=0.0,
                    max_tokens=8)
    assert chat.invoke("Say hi.").content.strip()
    on_openai = ChatAdam(model_type="openai", model=CHAT, base_url=f"{full_server}/v1",
                         temperature=0.0, max_tokens=8)
    pieces = [chunk.content for chunk in on_openai.stream("Say hi.")]
    assert "".join(pieces).strip()
    embeddings = AdamEmbeddings(model=f"ollama:{EMBED}",
                                backend_options={"host": full_server})
    assert len(embeddings.embed_query("hello")) == 384
    llm = AdamLLM(model=f"ollama:{CHAT}", base_url=full_server, temperature=0.0,
                  max_tokens=8)
    assert llm.complete("Say hi.").text.strip()


def _transformers() -> object:
    from adam_integrations.backends.local.huggingface import HuggingFaceModel

    return HuggingFaceModel("Qwen/Qwen3-0.6B")


def _llamacpp() -> object:
    from adam_integrations.backends.local.llamacpp import LlamaCppModel

    return LlamaCppModel("model.gguf")


def _server() -> object:
    from adam_integrations.server import create_app

    return create_app


def _convert() -> object:
    from pathlib import Path

    from adam_integrations.sharing.checkpoint_gguf import write_gguf

    return write_gguf(Path("checkpoint"), Path("out.gguf"))


def _anthropic() -> object:
    from adam_integrations import ModelManager

    return ModelManager(model="anthropic:claude-haiku-4-5@http://127.0.0.1:9").backend


@pytest.mark.parametrize(("make", "extra"), [
    (_transformers, "transformers"), (_llamacpp, "llamacpp"), (_server, "server"),
    (_convert, "transformers"), (_anthropic, "anthropic")])
def test_a_part_whose_extra_is_missing_names_it(make, extra):
    with pytest.raises(MissingExtraError, match=rf"pip install 'adam-integrations\[{extra}\]'"):
        make()


def test_the_command_line_says_which_extra_adam_serve_needs():
    done = subprocess.run([sys.executable, "-m", "adam_integrations.cli", "serve"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "pip install 'adam-integrations[server]'" in done.stderr
