"""Qwen3 catalog, hardware detection, the memory estimate and the model pick."""

from __future__ import annotations

import warnings

import pytest

from adam_integrations import ModelManager, UnknownDomainError, resolve
from adam_integrations.catalog import selection
from adam_integrations.catalog.domains import DomainProfile, get_domain, register_domain
from adam_integrations.catalog.qwen3 import ALL_QWEN3, QWEN3_MODELS, find_qwen3
from adam_integrations.catalog.selection import estimate_option, recommend
from adam_integrations.core import hardware as hardware_module
from adam_integrations.core.hardware import GpuDevice, HardwareProfile
from adam_integrations.core.memory import GIB

G = 1024**3


def cpu(total: float, available: float) -> HardwareProfile:
    return HardwareProfile(8, 16, "x86_64", int(total * G), int(available * G))


def gpus(count: int, size: float) -> HardwareProfile:
    devices = tuple(GpuDevice(f"GPU {size} GB", "cuda", int(size * G), int(size * 0.95 * G))
                    for _ in range(count))
    return HardwareProfile(8, 16, "x86_64", 64 * G, 48 * G, devices)


def apple(total: float, usable: float) -> HardwareProfile:
    return HardwareProfile(10, 10, "arm64", int(total * G), int(total * 0.6 * G),
                           unified_memory=int(usable * G))


# GPUs report 95% of their memory free; Apple's usable share is Metal's recommended
# working set (about 2/3 of 16 GB, 3/4 of 64 GB). Each pick below is the newest
# generation's largest model whose estimate stays under 85% of the budget (Qwen3.5; the
# 2B, whose shape is unverified, is never picked); see the worked cases under it.
PICKS = [
    ("CPU 8 GB", cpu(8, 6), "llamacpp", ("qwen3.5_4b", "Q6_K")),
    ("CPU 8 GB", cpu(8, 6), "huggingface", ("qwen3.5_0.8b", "float32")),
    ("CPU 32 GB", cpu(32, 28), "llamacpp", ("qwen3.5_35b_a3b", "Q4_K_M")),
    ("CPU 32 GB", cpu(32, 28), "ollama", ("qwen3.5_35b_a3b", "Q4_K_M")),
    ("4 GB GPU", gpus(1, 4), "llamacpp", ("qwen3.5_0.8b", "Q8_0")),
    ("8 GB GPU", gpus(1, 8), "llamacpp", ("qwen3.5_9b", "Q4_K_M")),
    ("16 GB GPU", gpus(1, 16), "llamacpp", ("qwen3.5_9b", "Q8_0")),
    ("24 GB GPU", gpus(1, 24), "llamacpp", ("qwen3.5_27b", "Q4_K_M")),
    ("24 GB GPU", gpus(1, 24), "huggingface", ("qwen3.5_9b", "bfloat16")),
    ("80 GB GPU", gpus(1, 80), "llamacpp", ("qwen3.5_35b_a3b", "Q8_0")),
    ("80 GB GPU", gpus(1, 80), "huggingface", ("qwen3.5_27b", "bfloat16")),
    ("Apple 16 GB", apple(16, 10.7), "llamacpp", ("qwen3.5_9b", "Q6_K")),
    ("Apple 64 GB", apple(64, 48), "llamacpp", ("qwen3.5_35b_a3b", "Q8_0")),
    ("2 x 24 GB", gpus(2, 24), "llamacpp", ("qwen3.5_35b_a3b", "Q6_K")),
]


@pytest.mark.parametrize(("label", "profile", "backend", "expected"), PICKS,
                         ids=[f"{p[0]}-{p[2]}" for p in PICKS])
def test_the_pick_for_each_machine_is_what_the_formula_implies(label, profile, backend,
                                                               expected):
    choice = recommend(profile, backend=backend).choice
    assert (choice.model.alias, choice.precision) == expected
    assert choice.fits and choice.estimate.total <= 0.85 * choice.budget.bytes


def test_a_worked_case_24_gb_gpu():
    """Free 22.8 GiB, so 19.4 GiB usable. Qwen3.5-35B-A3B Q4_K_M needs 20.0 weights + 0.16
    KV (10 full-attention layers x 2 KV heads x 256) + 2.0 compute + 0.45 reserve = 22.6
    GiB: no. Qwen3.5-27B Q4_K_M needs 15.4 + 0.5 + 1.6 + 0.45 = 17.9 GiB: yes, the newest
    generation's largest that fits (ahead of Qwen3-14B Q8_0, 17.9 GiB too)."""
    result = recommend(gpus(1, 24), backend="llamacpp")
    assert "qwen3.5_27b" in result.explanation and "would need" in result.explanation
    moe = next(o for o in result.options if o.model.alias == "qwen3.5_35b_a3b"
               and o.precision == "Q4_K_M")
    assert round(moe.estimate.total / GIB, 1) == pytest.approx(22.6, abs=0.1)
    assert round(moe.estimate.kv_cache / GIB, 2) == pytest.approx(0.16, abs=0.01)
    assert not moe.fits
    older = next(o for o in result.options if o.model.alias == "qwen3_xxl"
                 and o.precision == "Q8_0")
    assert older.fits and result.options.index(older) > result.options.index(result.choice)


def _hand(parameters: float, bits: float, layers: int, kv_heads: int, context: int,
          reserve_gib: float) -> float:
    """The formula written out: weights + KV + max(10%, 0.5 GiB) + reserve, in GiB."""
    weights = parameters * bits / 8 / G
    kv = 2 * layers * kv_heads * 128 * context * 2 / G
    return weights + kv + max(0.1 * (weights + kv), 0.5) + reserve_gib


@pytest.mark.parametrize(("alias", "precision", "context", "hand_gib"), [
    ("qwen3_xl", "Q4_K_M", 32768, _hand(8.2e9, 4.9, 36, 8, 32768, 457 / 1024)),   # 10.5
    ("qwen3_xl", "Q4_K_M", 4096, _hand(8.2e9, 4.9, 36, 8, 4096, 457 / 1024)),     # 6.2
    ("qwen3_small", "bfloat16", 8192, _hand(0.6e9, 16, 28, 8, 8192, 457 / 1024)),
    ("qwen3_xxxl", "Q4_K_M", 32768, _hand(32.8e9, 4.9, 64, 8, 32768, 457 / 1024)),
])
def test_estimates_match_the_hand_calculation_within_5_percent(alias, precision, context,
                                                                hand_gib):
    model = find_qwen3(alias)
    budget = selection.budget_for(gpus(1, 80), "llamacpp")
    ours = estimate_option(model, precision, context, budget).total / GIB
    assert abs(ours - hand_gib) / hand_gib < 0.05


def test_qwen3_8b_q4_k_m_matches_the_published_figures():
    model, budget = find_qwen3("qwen3_xl"), selection.budget_for(gpus(1, 24), "llamacpp")
    assert round(estimate_option(model, "Q4_K_M", 32768, budget).total / GIB, 1) == 10.5
    assert 6.0 <= estimate_option(model, "Q4_K_M", 4096, budget).total / GIB <= 6.5


def test_nothing_fitting_halves_the_context_then_says_so():
    tiny = cpu(2, 1.2)
    result = recommend(tiny, backend="llamacpp")
    assert result.choice.model.alias == "qwen3.5_0.8b" and result.choice.context == 4096
    assert "context halved" in result.explanation
    assert recommend(cpu(1, 0.5)).choice is None


def test_a_long_context_switches_yarn_on_only_where_needed():
    result = recommend(gpus(1, 80), context=65536)
    # Qwen3.5 holds 262,144 tokens natively; Qwen3's 32,768 stretch by YaRN
    assert result.choice.context == 65536 <= result.choice.model.native_context
    assert "(YaRN)" not in result.choice.line()
    qwen3 = [o for o in result.options if o.model.generation == "3"]
    assert qwen3 and all("(YaRN)" in o.line() for o in qwen3)
    assert all(o.model.yarn_context for o in qwen3)  # 0.6B/1.7B cannot
    assert recommend(gpus(1, 80), context=8192).choice.context == 8192


def test_cpu_picks_skip_slow_dense_models_but_keep_moe():
    aliases = {m.alias for m in selection.candidates(None, cpu(256, 250))}
    assert "qwen3_xxxl" not in aliases and "qwen3_moe_small" in aliases
    assert "qwen3_xxxl" in {m.alias for m in selection.candidates(None, gpus(1, 80))}


def test_the_code_domain_prefers_the_coder_model_where_it_fits():
    assert recommend(gpus(1, 80), domain="code").choice.model.alias == "qwen3_coder_moe_small"
    assert recommend(gpus(1, 8), domain="code").choice.model.alias == "qwen3.5_9b"
    # Qwen3-Coder-Next (80B-A3B) first where it fits; it has no GGUF repository, so on
    # transformers only
    big = gpus(4, 80)
    assert recommend(big, backend="huggingface", domain="code").choice.model.alias == \
        "qwen3_coder_next"
    assert recommend(big, domain="code").choice.model.alias == "qwen3_coder_moe_small"
    with pytest.raises(UnknownDomainError, match="known domains: code"):
        recommend(domain="astrology")


def test_a_registered_domain_can_prefer_models_and_set_sampling():
    register_domain(DomainProfile("tiny", "Be brief.", prefer=("qwen3_small",),
                                  sampling={"temperature": 0.1}))
    assert recommend(gpus(1, 80), domain="tiny").choice.model.alias == "qwen3_small"
    assert get_domain("tiny").sampling == {"temperature": 0.1}


def test_a_model_on_disk_wins_when_the_choice_is_otherwise_equal(tmp_path, monkeypatch):
    repo = tmp_path / "models--unsloth--Qwen3.5-4B-GGUF"
    (repo / "snapshots" / "abc").mkdir(parents=True)
    (repo / "snapshots" / "abc" / "Qwen3.5-4B-Q4_K_M.gguf").write_bytes(b"GGUF")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    choice = recommend(cpu(8, 6)).choice
    assert (choice.model.alias, choice.precision, choice.on_disk) == (
        "qwen3.5_4b", "Q4_K_M", True)


def test_with_nothing_downloaded_the_manager_says_what_it_would_pick(monkeypatch):
    monkeypatch.setattr(hardware_module.HardwareProfile, "detect",
                        classmethod(lambda cls: cpu(8, 6)))
    manager = ModelManager()
    assert manager.source.embedded
    assert "would pick qwen3.5_4b Q6_K" in manager.explanation
    assert "adam pull hf:unsloth/Qwen3.5-4B-GGUF:Q6_K" in manager.explanation


def test_the_manager_uses_the_pick_when_it_is_on_disk(tmp_path, monkeypatch,
                                                      chat_gguf_path):
    repo = tmp_path / "models--unsloth--Qwen3.5-0.8B-GGUF"
    (repo / "snapshots" / "abc").mkdir(parents=True)
    (repo / "snapshots" / "abc" / "Qwen3.5-0.8B-Q8_0.gguf").symlink_to(chat_gguf_path)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hardware_module.HardwareProfile, "detect",
                        classmethod(lambda cls: cpu(4, 2)))
    manager = ModelManager()
    assert manager.source.kind == "gguf" and not manager.source.embedded
    assert manager.explanation.startswith("no model named; picked for this machine: "
                                          "qwen3.5_0.8b = Qwen/Qwen3.5-0.8B Q8_0")
    assert "(on disk)" in manager.explanation


def test_speeds_measured_here_move_the_pick_and_are_compared(tmp_path, monkeypatch,
                                                              chat_gguf_path):
    """``adam eval``'s figures (``core.measurements``) for the catalog's files on disk:
    a precision measured below the wanted speed gives way to a smaller one on disk, and
    the explanation compares the two; a file changed since it was measured is estimated
    again."""
    import os
    import shutil

    from adam_integrations.core.measurements import record

    snapshot = tmp_path / "hub" / "models--unsloth--Qwen3.5-0.8B-GGUF" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    q8, q4 = snapshot / "Qwen3.5-0.8B-Q8_0.gguf", snapshot / "Qwen3.5-0.8B-Q4_K_M.gguf"
    q8.symlink_to(chat_gguf_path)
    shutil.copyfile(chat_gguf_path, q4)  # another file: measurements follow the file
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("ADAM_CACHE_DIR", str(tmp_path / "cache"))
    machine = cpu(4, 2)
    model = find_qwen3("qwen3.5_0.8b")
    assert recommend(machine).choice.precision == "Q8_0"  # the best on disk
    for path, precision, perplexity, speed in ((q8, "Q8_0", 10.0, 6.0),
                                               (q4, "Q4_K_M", 10.5, 15.0)):
        record(path, quantization=precision, text="the same text", text_name="notes.md",
               backend="llamacpp", perplexity=perplexity, prefill_tokens_per_s=100.0,
               decode_tokens_per_s=speed)
    pick = recommend(machine)
    assert (pick.choice.model, pick.choice.precision) == (model, "Q4_K_M")
    assert pick.choice.tokens_per_second == 15.0
    assert "15 tokens/s measured here" in pick.explanation
    assert ("Q4_K_M: 5.0% higher perplexity than Q8_0, 2.5x faster here (adam eval over "
            "notes.md)") in pick.explanation
    q8_line = next(o.line() for o in pick.options if o.model is model
                   and o.precision == "Q8_0")
    assert "Q8_0 measured here: perplexity 10.000 over notes.md, 6.0 tok/s" in q8_line
    assert selection.best_quantization(model, machine) == "Q4_K_M"
    assert selection.best_quantization(model, machine, min_speed=5) == "Q8_0"
    stat = q4.stat()
    os.utime(q4, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert recommend(machine).choice.measured is None  # changed since: estimated again


def test_every_alias_and_id_resolves_and_chat_ids_warn():
    for model in ALL_QWEN3:
        assert resolve(model.alias).location == model.hf_id
        assert find_qwen3(model.hf_id) is model
    with pytest.warns(UserWarning, match="'Qwen/Qwen3-8B'"):
        assert resolve("Qwen/Qwen3-8B-Chat").location == "Qwen/Qwen3-8B"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve("qwen3_moe_large")


def test_the_catalog_reports_real_shapes_and_files():
    by_alias = {m.alias: m for m in ALL_QWEN3}
    assert by_alias["qwen3_small"].quants == ("Q8_0",)  # the 0.6B repo ships Q8_0 only
    assert by_alias["qwen3_xl"].gguf_file("Q4_K_M") == "Qwen3-8B-Q4_K_M.gguf"
    assert by_alias["qwen3_moe_small"].moe and by_alias["qwen3_moe_small"].kv_heads == 4
    assert by_alias["qwen3_4b_instruct_2507"].native_context == 262_144
    assert by_alias["qwen3_embedding_xl"].embedding_dimension == 4096
    assert [m.native_context for m in QWEN3_MODELS] == [32_768] * 8


def test_detection_on_this_machine_returns_sane_values():
    profile = HardwareProfile.detect()
    assert profile.cpu_cores >= 1 and profile.cpu_threads >= profile.cpu_cores
    assert profile.ram_total >= profile.ram_available > 0
    assert profile.gpus == () and any(line.startswith("RAM") for line in profile.describe())


def test_detection_never_crashes_when_gpu_libraries_are_missing(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_gpu_libraries(name, *args, **kwargs):
        if name in ("pynvml", "torch"):
            raise ImportError(f"no {name}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(hardware_module, "gpu_kind", lambda: "cuda")
    monkeypatch.setattr(builtins, "__import__", no_gpu_libraries)
    monkeypatch.setattr("shutil.which", lambda name: None)
    profile = HardwareProfile.detect()
    assert profile.gpus == () and any("nvidia-ml-py" in n for n in profile.notes)
