"""What ``adapters=`` and a request's ``lora`` take (``core.adapters``): every form people
give an adapter in, and clear refusals for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from adam_integrations import InvalidRequestError
from adam_integrations.core.adapters import Adapter, chosen_adapters, coerce_adapters


def test_every_form_of_an_adapter_becomes_a_path_and_a_scale(tmp_path):
    (tmp_path / "a").mkdir()
    forms = [tmp_path / "a", str(tmp_path / "a"), (tmp_path / "a", 0.5),
             {"path": str(tmp_path / "a"), "scale": 2}, Adapter(tmp_path / "a", 1.5)]
    assert [a.scale for a in coerce_adapters(forms, must_exist=True)] == [1, 1, 0.5, 2, 1.5]
    assert coerce_adapters((tmp_path / "a", 0.5)) == (Adapter(tmp_path / "a", 0.5),)
    assert coerce_adapters(None) == ()


@pytest.mark.parametrize("given, message", [
    ([("x", "loud")], "scale must be a number"),
    ([("x", float("nan"))], "scale must be a number"),
    ([("x", True)], "scale must be a number"),
    ([3], "a path to a PEFT folder"),
    ([""], "a path to a PEFT folder"),
    (42, "must be a list of adapter paths"),
])
def test_a_malformed_adapter_is_refused_saying_what_it_takes(given, message):
    with pytest.raises(InvalidRequestError, match=message):
        coerce_adapters(given)


def test_a_missing_adapter_and_an_uncached_hf_repo_say_how_to_get_one(tmp_path,
                                                                      monkeypatch):
    with pytest.raises(InvalidRequestError, match=r"no adapter at .*adam tune writes one"):
        coerce_adapters([tmp_path / "missing"], must_exist=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(InvalidRequestError, match=r"hf:me/lora is not in the local Hugging "
                                                  r"Face cache; `adam pull hf:me/lora`"):
        coerce_adapters(["hf:me/lora"])


def test_a_request_chooses_among_the_adapters_loaded():
    assert chosen_adapters(None, [1.0, 0.5]) == ((0, 1.0), (1, 0.5))
    assert chosen_adapters([], [1.0]) == ()  # the base alone
    assert chosen_adapters([(0, 0.0), (1, 2.0)], [1.0, 1.0]) == ((1, 2.0),)
    with pytest.raises(InvalidRequestError, match=r"adapter 2 does not exist: this model "
                                                  r"has 2 adapters \(ids 0-1\)"):
        chosen_adapters([(2, 1.0)], [1.0, 1.0])
    with pytest.raises(InvalidRequestError, match=r"has no adapters .*adam serve --lora"):
        chosen_adapters([(0, 1.0)], [])


def test_an_adapter_is_named_by_its_folder_or_file():
    assert Adapter(Path("/x/pirate")).name == "pirate"
