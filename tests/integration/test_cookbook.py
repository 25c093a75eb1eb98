"""Every cookbook example runs to the end on the embedded models."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

COOKBOOK = Path(__file__).resolve().parents[2] / "cookbook"


@pytest.fixture(scope="module", autouse=True)
def conversion_done(chat_model):
    """The GGUF conversion is cached by the session fixture before any subprocess runs."""


# Examples about one model family run on its test fixture (a real tokenizer and template):
# given as an argument, or laid out in a Hugging Face cache the example finds by itself.
FIXTURE_ARGUMENTS = {"qwen3_example.py": "dense_gguf"}
FIXTURE_STORES = {"model_sharing_example.py": "official_gguf_in_hf_cache"}


@pytest.mark.parametrize("script", sorted(p.name for p in COOKBOOK.glob("*.py")))
def test_cookbook_example_runs(script, request):
    arguments = []
    if script in FIXTURE_STORES:
        request.getfixturevalue(FIXTURE_STORES[script])  # sets HF_HUB_CACHE, OLLAMA_MODELS
    if script in FIXTURE_ARGUMENTS:
        arguments = [str(getattr(request.getfixturevalue("qwen3"), FIXTURE_ARGUMENTS[script]))]
    result = subprocess.run([sys.executable, str(COOKBOOK / script), *arguments],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip()


def test_the_cookbook_readme_lists_every_example():
    listed = (COOKBOOK / "README.md").read_text(encoding="utf-8")
    assert {p.name for p in COOKBOOK.glob("*.py")} == set(
        re.findall(r"^\| `([a-z_0-9]+\.py)` \|", listed, re.MULTILINE))
