"""The Ollama side of sharing a Qwen3 GGUF: the Go template ``adam share`` writes renders
the same prompts as Qwen3's official Jinja template.

The Go template is rendered by Go's own ``text/template`` with Ollama's template functions
and values (``tests/fixtures/ollama_template/render.go``); the Jinja one as in
``test_qwen3.py``. Ollama prints tool definitions and call arguments as compact JSON, so
the JSON on those lines is compared as JSON; everything else must match to the character.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from adam_integrations import ModelManager
from adam_integrations.core.output import split_thinking
from adam_integrations.core.types import coerce_messages
from adam_integrations.sharing.ollama_share import QWEN3_TEMPLATE, go_template, share_gguf
from adam_integrations.wire.ollama import message_to_wire
from tests.integration.test_qwen3 import CASES, reference

RENDERER = Path(__file__).resolve().parents[1] / "fixtures" / "ollama_template" / "render.go"


@pytest.fixture(scope="session")
def render_go(tmp_path_factory):
    """A function rendering an Ollama template with Go, as Ollama does."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (Debian: apt-get install golang-go); the Ollama "
                    "template comparison needs Go's text/template")
    binary = tmp_path_factory.mktemp("go") / "render"
    subprocess.run([go, "build", "-o", str(binary), str(RENDERER)], check=True,
                   capture_output=True, timeout=300)

    def render(template: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
               think: bool | None) -> str:
        request = {"template": template, "messages": messages, "tools": tools or None,
                   "think": think}
        done = subprocess.run([str(binary)], input=json.dumps(request), capture_output=True,
                              text=True, check=False, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return render


def ollama_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A conversation as an Ollama client sends it (through this package's Ollama wire
    module): reasoning in ``thinking``, never inline in the content."""
    out = []
    for message in coerce_messages(messages):
        wire = message_to_wire(message)
        if message.role == "assistant" and not message.thinking:
            thinking, wire["content"] = split_thinking(message.content)
            if thinking:
                wire["thinking"] = thinking
        out.append(wire)
    return out


def _json_lines_parsed(prompt: str) -> list[Any]:
    """The prompt's lines, with each line that is a JSON object replaced by its value."""
    lines: list[Any] = []
    for line in prompt.split("\n"):
        if re.match(r"^\{.*\}$", line):
            try:
                lines.append(json.loads(line))
                continue
            except ValueError:
                pass
        lines.append(line)
    return lines


def test_a_qwen3_template_becomes_the_qwen3_go_template(qwen3):
    template, stops = go_template(qwen3.template)
    assert template == QWEN3_TEMPLATE and stops == ["<|im_start|>", "<|im_end|>"]


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_the_go_template_renders_what_the_official_template_renders(render_go, qwen3, case):
    spec = CASES[case]
    ours = render_go(QWEN3_TEMPLATE, ollama_messages(spec.messages), spec.tools, spec.think)
    official = reference(qwen3.template, spec.messages, **spec.variables())
    assert _json_lines_parsed(ours) == _json_lines_parsed(official)


def test_sharing_a_qwen3_gguf_writes_its_template_and_qwens_parameters(qwen3, tmp_path):
    result = share_gguf(qwen3.dense_gguf, "qwen3-fixture:tiny", root=tmp_path)
    manifest = json.loads(result.manifest.read_text())
    blobs = {layer["mediaType"].rsplit(".", 1)[-1]:
             (tmp_path / "blobs" / layer["digest"].replace(":", "-")).read_text()
             for layer in manifest["layers"] if "model" not in layer["mediaType"]}
    assert blobs["template"] == QWEN3_TEMPLATE
    parameters = json.loads(blobs["params"])
    assert parameters == {"stop": ["<|im_start|>", "<|im_end|>"], "temperature": 0.6,
                          "top_p": 0.95, "top_k": 20, "repeat_penalty": 1.0}


# -- the original note's sharing example: one download for every backend and Ollama -------
def test_sharing_a_catalog_model_uses_qwens_official_gguf_once(official_gguf_in_hf_cache,
                                                               tmp_path):
    manager = ModelManager(model_type="huggingface", model_size="qwen3_medium",
                           share_with_ollama=True)
    blob = official_gguf_in_hf_cache
    assert manager.source.kind == "gguf" and Path(manager.source.location).resolve() == blob
    assert "GGUF Qwen3-1.7B-Q8_0.gguf of Qwen/Qwen3-1.7B-GGUF" in manager.explanation
    shared = tmp_path / "ollama" / "blobs" / f"sha256-{blob.name}"
    assert manager.shared_as and shared.stat().st_ino == blob.stat().st_ino  # a hardlink
    assert isinstance(manager.generate_response("Hi", max_tokens=3), str)  # transformers
    manager.unload()


def test_offline_with_nothing_cached_the_share_says_what_it_would_download(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    manager = ModelManager(model_type="huggingface", model_size="qwen3_medium",
                           share_with_ollama=True)
    assert manager.shared_as is None
    explanation = manager.explanation
    assert "Qwen3-1.7B-" in explanation and " GB" in explanation
    assert "`adam pull hf:Qwen/Qwen3-1.7B-GGUF:" in explanation
