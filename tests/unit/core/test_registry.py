"""ModelRegistry: built-in, user-registered and entry-point backends."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from adam_integrations import ModelRegistry, UnknownBackendError
from adam_integrations.backends.local.huggingface import HuggingFaceModel
from adam_integrations.core.backend import ModelBackend


def test_the_huggingface_backend_is_built_in_under_its_aliases():
    registry = ModelRegistry()
    for name in ("huggingface", "HF", "transformers"):
        assert registry.get(name) is HuggingFaceModel


def test_an_unknown_backend_lists_the_registered_ones():
    with pytest.raises(UnknownBackendError, match=r"unknown backend 'nope'.*huggingface"):
        ModelRegistry().get("nope")


class EchoBackend(HuggingFaceModel):
    name = "echo"


def test_the_built_in_classes_are_importable_from_backends_by_name():
    import adam_integrations.backends as backends
    from adam_integrations.core.registry import BUILTIN_BACKENDS, registry

    for name in BUILTIN_BACKENDS:
        backend_class = registry.get(name)
        assert getattr(backends, backend_class.__name__) is backend_class
        assert backend_class.__name__ in backends.__all__
    with pytest.raises(AttributeError, match="NoSuchModel"):
        backends.NoSuchModel  # noqa: B018


def test_a_backend_class_can_be_registered_by_name():
    registry = ModelRegistry()
    registry.register("echo", EchoBackend)
    assert registry.get("echo") is EchoBackend
    assert "echo" in registry.names() and "echo" in registry


def test_third_party_backends_register_through_the_entry_point_group(tmp_path: Path):
    package = tmp_path / "third_party_backend.py"
    package.write_text(
        "from adam_integrations.backends.local.huggingface import HuggingFaceModel\n"
        "class ThirdParty(HuggingFaceModel):\n    name = 'thirdparty'\n"
    )
    dist = tmp_path / "third_party_backend-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: third-party-backend\n"
                                   "Version: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[adam_integrations.backends]\nthirdparty = third_party_backend:ThirdParty\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        backend = ModelRegistry().get("thirdparty")
        assert issubclass(backend, ModelBackend) and backend.name == "thirdparty"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("third_party_backend", None)


def test_a_misspelt_option_is_refused_at_once_with_the_closest_names():
    from adam_integrations.core.errors import UnknownOptionError

    with pytest.raises(UnknownOptionError, match="did you mean 'n_ctx'"):
        ModelRegistry().check_known_options({"n_ctxx": 4096})
    with pytest.raises(UnknownOptionError, match="did you mean 'n_ctx'"):
        ModelRegistry().check_options("llamacpp", {"n_ctxx": 4096})
    ModelRegistry().check_known_options({"n_ctx": 4096, "dtype": "float32"})
