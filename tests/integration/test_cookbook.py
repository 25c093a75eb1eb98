"""Every cookbook example runs to the end on the embedded models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

COOKBOOK = Path(__file__).resolve().parents[2] / "cookbook"


@pytest.fixture(scope="module", autouse=True)
def conversion_done(chat_model):
    """The GGUF conversion is cached by the session fixture before any subprocess runs."""


@pytest.mark.parametrize("script", sorted(p.name for p in COOKBOOK.glob("*.py")))
def test_cookbook_example_runs(script):
    result = subprocess.run([sys.executable, str(COOKBOOK / script)], capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip()
