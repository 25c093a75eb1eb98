"""The model-reference grammar every entry point shares."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adam_integrations import EmbeddedModelMissingError, ModelNotFoundError, resolve
from adam_integrations.catalog.embedded import EmbeddedModel


def test_nothing_named_picks_the_embedded_chat_gguf_and_says_why(chat_gguf_path):
    source = resolve(None)
    assert (source.kind, Path(source.location)) == ("gguf", chat_gguf_path.resolve())
    assert source.embedded and "embedded default" in source.explanation


def test_nothing_named_for_embeddings_picks_the_embedded_minilm(embedding_folder):
    source = resolve("", purpose="embedding")
    assert (source.kind, Path(source.location)) == ("folder", embedding_folder.resolve())


@pytest.mark.parametrize(
    ("reference", "kind", "location"),
    [
        ("hf:Qwen/Qwen3-0.6B", "hub", "Qwen/Qwen3-0.6B"),
        ("Qwen/Qwen3-0.6B", "hub", "Qwen/Qwen3-0.6B"),
        ("qwen3_small", "hub", "Qwen/Qwen3-0.6B"),
        ("qwen3_moe_small", "hub", "Qwen/Qwen3-30B-A3B"),
        ("ollama:qwen3:0.6b", "ollama", "qwen3:0.6b"),
    ],
)
def test_reference_forms_resolve_to_their_source(reference, kind, location):
    source = resolve(reference)
    assert (source.kind, source.location) == (kind, location)


def test_the_design_notes_chat_ids_resolve_with_a_warning_naming_the_real_id():
    with pytest.warns(UserWarning, match="Qwen/Qwen3-8B"):
        assert resolve("Qwen/Qwen3-8B-Chat").location == "Qwen/Qwen3-8B"


def test_embedded_models_resolve_by_readable_name(chat_gguf_path, embedding_folder):
    assert Path(resolve("smollm2").location) == chat_gguf_path.resolve()
    assert Path(resolve("all-minilm").location) == embedding_folder.resolve()


def test_a_folder_with_one_gguf_resolves_to_that_file(tmp_path, chat_gguf_path):
    (tmp_path / "model.gguf").symlink_to(chat_gguf_path)
    assert resolve(str(tmp_path)).kind == "gguf"


def test_a_path_that_does_not_exist_says_so():
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve("./no/such/model")


def test_a_folder_without_a_model_says_what_was_expected(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"holds no model.*config\.json"):
        resolve(str(tmp_path))


def test_a_folder_with_several_ggufs_asks_to_name_one(tmp_path, chat_gguf_path):
    for name in ("a.gguf", "b.gguf"):
        (tmp_path / name).symlink_to(chat_gguf_path)
    with pytest.raises(ModelNotFoundError, match=r"a\.gguf, b\.gguf"):
        resolve(str(tmp_path))


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    fake = tmp_path / "weights.gguf"
    fake.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelNotFoundError, match="not a GGUF file"):
        resolve(str(fake))


def test_an_unknown_name_lists_the_accepted_forms():
    with pytest.raises(ModelNotFoundError, match=r"'hf:<org>/<repo>'"):
        resolve("definitely not a model")


def test_a_missing_embedded_package_says_which_pip_install_fixes_it(tmp_path):
    missing = EmbeddedModel("X", ("x",), "no_such_package_adam", "no-such-package", "m",
                            "chat", "x")
    with pytest.raises(EmbeddedModelMissingError,
                       match=r"pip install 'adam-integrations\[embedded\]'"):
        missing.require_path()


def test_a_copied_model_folder_resolves_as_a_local_folder(tmp_path, embedding_folder):
    target = tmp_path / "minilm"
    shutil.copytree(embedding_folder, target)
    source = resolve(str(target))
    assert (source.kind, source.name) == ("folder", "minilm")
