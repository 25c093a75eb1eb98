"""``ollama create`` against ``adam serve``, offline, with the real ``ollama`` client: a model
made from an existing one with a system prompt, parameters, example messages and a
license, or from an uploaded GGUF; listed, shown, answered with what it was made with,
copied and deleted; and the same from a Modelfile with ``adam create``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import ollama
import pytest

from adam_integrations.core.stores.ollama_store import model_layers
from tests.integration.conftest import ServeProcess

PIRATE = "You are a pirate. Always say Arr."


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("create-store")


@pytest.fixture(scope="module")
def client(session_cache, store, tmp_path_factory) -> Iterator[ollama.Client]:
    running = ServeProcess(session_cache / "create-server.log",
                           env={"OLLAMA_MODELS": str(store),
                                "ADAM_CACHE_DIR": str(tmp_path_factory.mktemp("create-cache"))})
    yield ollama.Client(host=running.url)
    assert running.stop() == 0


def test_a_model_made_from_another_answers_with_its_system_prompt_and_parameters(
        client, store):
    statuses = [part.status for part in client.create(
        model="my-assistant", from_="smollm2:135m", system=PIRATE,
        parameters={"temperature": 0, "num_predict": 6, "num_ctx": 4096},
        messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Arr!"}],
        license="Apache-2.0", stream=True)]
    assert statuses[-1] == "success" and "writing manifest" in statuses
    assert any("num_ctx" in status and "kept for Ollama" in status for status in statuses)
    assert "my-assistant:latest" in [m.model for m in client.list().models]
    layers = model_layers("my-assistant", roots=[store])
    assert layers.system == PIRATE and layers.parameters["temperature"] == 0
    assert layers.license == "Apache-2.0" and len(layers.messages) == 2

    who = {"role": "user", "content": "Who are you?"}
    answer = client.chat(model="my-assistant", messages=[who])
    assert answer.eval_count <= 6  # its num_predict
    spelled_out = client.chat(model="smollm2:135m", options={"temperature": 0, "num_predict": 6},
                              messages=[{"role": "system", "content": PIRATE},
                                        {"role": "user", "content": "Hi"},
                                        {"role": "assistant", "content": "Arr!"}, who])
    assert answer.message.content == spelled_out.message.content  # its system, messages
    assert client.chat(model="my-assistant", messages=[who]).message.content == \
        answer.message.content  # its temperature 0

    shown = client.show("my-assistant")
    assert shown.details.family == "llama" and "completion" in shown.capabilities
    assert shown.license == "Apache-2.0" and "temperature 0" in shown.parameters
    assert PIRATE in shown.modelfile and "\nFROM " in shown.modelfile


def test_a_model_made_from_an_uploaded_gguf_is_stored_once(client, store, chat_gguf_path):
    digest = client.create_blob(chat_gguf_path)
    assert (store / "blobs" / digest.replace(":", "-")).is_file()
    assert client.create(model="uploaded:v1", files={"smol.gguf": digest}).status == "success"
    assert client.generate(model="uploaded:v1", prompt="Hi", options={
        "num_predict": 2, "temperature": 0}).done
    assert client.create_blob(chat_gguf_path) == digest  # already there: not sent twice
    manifest = json.loads((store / "manifests/registry.ollama.ai/library/uploaded/v1"
                           ).read_text())
    assert manifest["layers"][0]["digest"] == digest


def test_copy_and_delete_and_what_cannot_be_done_is_refused(client):
    client.create(model="to-delete", from_="smollm2:135m", system="Short answers.")
    client.copy("to-delete", "to-delete-copy")
    assert {"to-delete:latest", "to-delete-copy:latest"} <= {
        m.model for m in client.list().models}
    client.delete("to-delete-copy")
    client.delete("to-delete")
    assert "to-delete:latest" not in [m.model for m in client.list().models]
    for call, words in ((lambda: client.create(model="q", from_="smollm2:135m",
                                               quantize="q4_K_M"), "quantize"),
                        (lambda: client.create(model="x", from_="all-minilm:l6-v2"),
                         "safetensors"),
                        (lambda: client.create(model="x", files={"a.gguf": "sha256:" + "0" * 64}),
                         "upload the file first"),
                        (lambda: client.create(model="x", from_="smollm2:135m",
                                               parameters={"temprature": 1}),
                         "did you mean 'temperature'"),
                        (lambda: client.delete("smollm2:135m"), "not found")):
        with pytest.raises(ollama.ResponseError) as refused:
            call()
        assert words in refused.value.error and refused.value.status_code in (400, 404)


def test_adam_create_reads_a_modelfile(tmp_path, chat_gguf_path):
    (tmp_path / "smol.gguf").symlink_to(chat_gguf_path)
    (tmp_path / "Modelfile").write_text(
        "# made in a test\nFROM ./smol.gguf\n"
        f'SYSTEM """{PIRATE}"""\n'
        "PARAMETER temperature 0.3\nPARAMETER stop <|im_end|>\n"
        "MESSAGE user Hi\nMESSAGE assistant Arr!\nLICENSE MIT\n")
    store = tmp_path / "ollama"
    result = subprocess.run(
        [sys.executable, "-m", "adam_integrations.cli", "create", "pirate", "-f",
         str(tmp_path / "Modelfile")], capture_output=True, text=True, timeout=120,
        env={**os.environ, "OLLAMA_MODELS": str(store)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("success")
    layers = model_layers("pirate", roots=[store])
    assert layers.system == PIRATE and layers.parameters["stop"] == ["<|im_end|>"]
    assert layers.parameters["temperature"] == 0.3 and layers.license == "MIT"
    assert [m["content"] for m in layers.messages] == ["Hi", "Arr!"]
    (tmp_path / "Bad").write_text("FROM ./smol.gguf\nADAPTER ./lora.gguf\n")
    refused = subprocess.run(
        [sys.executable, "-m", "adam_integrations.cli", "create", "x", "-f",
         str(tmp_path / "Bad")], capture_output=True, text=True, timeout=120,
        env={**os.environ, "OLLAMA_MODELS": str(store)})
    assert refused.returncode == 1  # an ADAPTER that is not there: said, nothing made
    assert refused.stderr.strip() == (f"Error: no adapter at {tmp_path / 'lora.gguf'}: give "
                                      "a PEFT adapter folder or a GGUF LoRA adapter file")
    assert not (store / "manifests" / "registry.ollama.ai" / "library" / "x").exists()


def test_adam_create_replaces_a_model_it_did_not_make_only_when_told(tmp_path,
                                                                    chat_gguf_path):
    """A model ``ollama pull`` left is not adam's to replace: create fails naming
    --overwrite, and with it replaces the model keeping the manifest's permissions."""
    from adam_integrations.sharing.ollama_share import share_gguf

    store = tmp_path / "ollama"
    env = {**os.environ, "OLLAMA_MODELS": str(store)}
    (tmp_path / "Modelfile").write_text(f"FROM {chat_gguf_path}\nSYSTEM Be brief.\n")
    pulled = share_gguf(chat_gguf_path, "pulled:latest", root=store)
    pulled.manifest.chmod(0o600)
    before = pulled.manifest.read_bytes()

    def create(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "adam_integrations.cli", "create",
                               "pulled", "-f", str(tmp_path / "Modelfile"), *flags],
                              capture_output=True, text=True, timeout=120, env=env)

    refused = create()
    assert refused.returncode == 1 and "--overwrite" in refused.stderr, refused.stderr
    assert pulled.manifest.read_bytes() == before
    replaced = create("--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert model_layers("pulled", roots=[store]).system == "Be brief."
    assert stat.S_IMODE(pulled.manifest.stat().st_mode) == 0o600
