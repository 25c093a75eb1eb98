"""Choosing a Qwen3 model for the hardware at hand, and saying why in one line.

``recommend(hardware, backend, domain, context)`` walks the catalog from the newest
generation to the oldest (Qwen3.6, Qwen3.5, Qwen3-Next, Qwen3) and within each from the
largest model down, each at its best precision first (GGUF: Q8_0 down to Q4_K_M; transformers:
bf16 on GPUs and bf16-capable CPUs, else fp32), estimates its memory with the formula in
``core.memory``, and picks the first that fits with headroom (need <= 85% of the budget).
The budget is the free GPU memory (all GPUs together: llama.cpp and transformers split
layers across them), Apple's Metal working set, or, without a GPU, the available RAM.
When nothing fits at the wanted context, the context is halved (down to 2,048) and the
walk repeats. Between equal choices a model already on disk wins.

Decisions written down here:
- Fast enough, not only fitting: on a CPU every generated token reads every active weight
  once, so decode speed is at most the RAM read bandwidth (measured once per machine,
  ``core.hardware.memory_bandwidth``) times ``DECODE_EFFICIENCY`` divided by the bytes
  per token (active parameters x bits per weight: a 30B-A3B MoE reads about 3B
  parameters' worth). The pick is the largest option that fits and reaches ``min_speed``
  (``MIN_SPEED`` tokens/s for chat unless asked otherwise); MoE models come first among
  equals by size, so one is picked where RAM allows. Where the bandwidth is unknown
  (synthetic profiles, GPUs) the older rule holds: on a CPU, dense models stop at 8B.
- The newest generation that fits and is fast enough wins over a larger model of an older
  one (Qwen3.5-4B over Qwen3-8B): its small models match the older generation's larger
  ones. Models whose attention shape is not verified (``Qwen3Model.shape_known``) are not
  considered: their memory cannot be estimated.
- Hybrid-attention models (Qwen3-Next, 3.5, 3.6) keep a KV cache on one layer in four
  only (``Qwen3Model.kv_layers``); the linear-attention layers' fixed state (a few MB per
  sequence) is within the compute allowance.
- A domain's preferred models (e.g. Qwen3-Coder-Next and Qwen3-Coder for "code") are
  tried first.
- Measured beats estimated: where ``adam eval`` measured a catalog file on disk (on
  llama.cpp, ``core.measurements``), its generation speed replaces the estimate (so a
  precision measured too slow here gives way to a smaller one), and the options and the
  explanation compare it with the best precision measured over the same text
  ("Q4_K_M: 4.2% higher perplexity than Q8_0, 1.7x faster here"). Quality alone does not
  move the pick: the best precision that fits and is fast enough stays the choice.
- ``ModelManager()`` with no model never starts a multi-GB download by surprise: it
  uses the pick when it is on disk, else the best local catalog model, else the embedded
  default, and the explanation says what it would choose and how to get it.
  ``ADAM_AUTO_DOWNLOAD=1`` lets it download the pick instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from adam_integrations.catalog.domains import DomainProfile, get_domain
from adam_integrations.catalog.qwen3 import (
    BITS_PER_WEIGHT,
    GENERATIONS,
    LATER_CHAT_MODELS,
    QWEN3_CODER_MODELS,
    QWEN3_MODELS,
    Qwen3Model,
)
from adam_integrations.core.hardware import HardwareProfile
from adam_integrations.core.measurements import measurements_of
from adam_integrations.core.memory import GIB, HEADROOM, MemoryEstimate, estimate
from adam_integrations.core.registry import gguf_backends

Backend = Literal["llamacpp", "huggingface", "ollama"]
MIN_CONTEXT = 2048
DEFAULT_CONTEXT = 8192
CPU_DENSE_LIMIT = 8.5e9
MIN_SPEED = 10.0  # tokens/s: below this a chat answer of a few hundred tokens takes minutes
# Decode time per token on a CPU = bytes read / (bandwidth x DECODE_EFFICIENCY) + a cost per
# layer (kernel launches, thread sync, attention at short context) + a cost per vocabulary
# entry (the logits and sampling). DECODE_EFFICIENCY is llama.cpp's usual share of the
# read bandwidth; the two costs were fitted on the 2-core development machine to
# llama.cpp's measured speed of the embedded SmolLM2 (79 tok/s) and the Qwen3 fixtures
# (288-301 tok/s). They matter for small models; for real sizes the bytes dominate.
DECODE_EFFICIENCY = 0.7
SECONDS_PER_LAYER = 0.16e-3
SECONDS_PER_VOCAB_ENTRY = 1.3e-8


@dataclass(frozen=True)
class Budget:
    """The memory a model may use, and what it is."""

    bytes: float
    device: str    # "cuda", "rocm", "metal" or "cpu"
    devices: int
    name: str      # e.g. "free GPU memory (2 GPUs)"


@dataclass(frozen=True)
class Measured:
    """What ``adam eval`` measured of an option's file on this machine, compared with the
    model's highest-precision file measured over the same text (``core.measurements``)."""

    perplexity: float
    tokens_per_second: float
    baseline: str
    """The precision compared with (the option's own when it is the best measured)."""
    perplexity_increase: float
    """Relative to the baseline's perplexity: 0.012 = 1.2% higher."""
    speedup: float
    """Generation speed over the baseline's."""
    text_name: str

    def describe(self, precision: str) -> str:
        if self.baseline == precision:
            return (f"{precision} measured here: perplexity {self.perplexity:.3f} over "
                    f"{self.text_name}, {self.tokens_per_second:.1f} tok/s")
        return (f"{precision}: {self.perplexity_increase:.1%} higher perplexity than "
                f"{self.baseline}, {self.speedup:.1f}x faster here (adam eval over "
                f"{self.text_name})")


@dataclass(frozen=True)
class Option:
    """One model at one precision and context, with its estimate and fit."""

    model: Qwen3Model
    backend: str
    precision: str
    context: int
    estimate: MemoryEstimate
    budget: Budget
    on_disk: bool = False
    tokens_per_second: float | None = None
    """Decode speed: measured here when ``measured``, else estimated (None: unknown, e.g.
    on a GPU or a synthetic profile)."""
    measured: Measured | None = None

    @property
    def fit(self) -> str:
        return self.estimate.fit(self.budget.bytes)

    @property
    def fits(self) -> bool:
        return self.fit in ("perfect", "good")

    def fast_enough(self, min_speed: float) -> bool:
        return self.tokens_per_second is None or self.tokens_per_second >= min_speed

    @property
    def reference(self) -> str:
        """The model reference that loads this option."""
        if self.backend == "ollama":
            suffix = "" if self.precision == "Q4_K_M" else f"-{self.precision.lower()}"
            return f"ollama:{self.model.ollama_tag}{suffix}"
        if self.precision in BITS_PER_WEIGHT and self.precision.startswith(("Q", "F", "B")):
            return f"hf:{self.model.gguf_repo}:{self.precision}"
        return f"hf:{self.model.hf_id}"

    def line(self) -> str:
        yarn = " (YaRN)" if self.context > self.model.native_context else ""
        disk = ", on disk" if self.on_disk else ""
        speed = (f", ~{self.tokens_per_second:.1f} tok/s" if self.tokens_per_second
                 is not None else "")
        measured = f"; {self.measured.describe(self.precision)}" if self.measured else ""
        return (f"{self.model.alias:<24} {self.model.size_label:<18} {self.precision:<8} "
                f"ctx {self.context}{yarn}: {self.fit:<12} needs "
                f"{self.estimate.describe()} of {self.budget.bytes / GIB:.1f} GiB "
                f"{self.budget.name}{speed}{disk}{measured}")


@dataclass(frozen=True)
class Recommendation:
    """The pick (None when nothing fits even at the shortest context), every option
    considered (best first), and the one-line reason."""

    choice: Option | None
    options: list[Option] = field(default_factory=list)
    explanation: str = ""


def budget_for(hardware: HardwareProfile, backend: str) -> Budget:
    """Where the model's memory comes from on this machine for this backend."""
    if hardware.gpus:
        count = len(hardware.gpus)
        return Budget(float(hardware.gpu_memory), hardware.gpus[0].kind, count,
                      f"free GPU memory ({count} GPU{'s' if count > 1 else ''})")
    if hardware.unified_memory:
        return Budget(float(hardware.unified_memory), "metal", 1,
                      "unified memory Metal may use")
    return Budget(float(hardware.ram_available), "cpu", 1, "available RAM")


def precisions(model: Qwen3Model, backend: str, hardware: HardwareProfile) -> list[str]:
    """The precisions to try, best first (none where the backend has no file of it)."""
    if backend == "ollama":
        quants = (model.quants if model.ollama_quants is None else model.ollama_quants) \
            if model.ollama_tag else ()
        return sorted(quants, key=lambda q: -BITS_PER_WEIGHT[q])
    if backend == "llamacpp":
        return sorted(model.quants, key=lambda q: -BITS_PER_WEIGHT[q])
    if hardware.gpus:
        return ["bfloat16"]
    if hardware.unified_memory:
        return ["float16"]
    return ["bfloat16" if hardware.cpu_bf16 else "float32"]


def estimate_option(model: Qwen3Model, precision: str, context: int, budget: Budget,
                    parallel: int = 1) -> MemoryEstimate:
    """The memory ``model`` needs at ``precision`` and ``context`` (transformers
    dequantizes GGUF, so its precision is a dtype)."""
    weights = model.parameters * BITS_PER_WEIGHT[precision] / 8
    return estimate(weights, model.kv_layers, model.kv_heads, model.head_dim, context,
                    parallel=parallel, device=budget.device, devices=budget.devices)


def decode_speed(model: Qwen3Model, precision: str, budget: Budget,
                 hardware: HardwareProfile) -> float | None:
    """Estimated tokens per second decoding ``model`` at ``precision`` on the CPU (None
    where unknown): read bandwidth x efficiency / bytes read per token."""
    if budget.device != "cpu" or not hardware.memory_bandwidth:
        return None
    active = model.active_parameters or model.parameters
    return cpu_decode_speed(active * BITS_PER_WEIGHT[precision] / 8, model.layers,
                            model.vocab, hardware.memory_bandwidth)


def cpu_decode_speed(bytes_per_token: float, layers: int, vocabulary: int,
                     bandwidth: float) -> float:
    """Tokens per second decoding on a CPU that reads ``bandwidth`` bytes/s, for a model
    reading ``bytes_per_token`` per token (see ``DECODE_EFFICIENCY``)."""
    seconds = (bytes_per_token / (bandwidth * DECODE_EFFICIENCY) + layers * SECONDS_PER_LAYER
               + vocabulary * SECONDS_PER_VOCAB_ENTRY)
    return 1.0 / seconds


def candidates(domain: DomainProfile | None, hardware: HardwareProfile) -> list[Qwen3Model]:
    """Chat models to consider: a domain's preferred ones first (they are better at its
    work than a larger general model, in the domain's order), then the newest generation
    first and within it the largest first; models without a verified shape are left out,
    and on a CPU whose bandwidth is unknown, dense models above 8B too (too slow to be
    useful)."""
    preferred = list(domain.prefer) if domain else []
    pool = [m for m in QWEN3_MODELS + LATER_CHAT_MODELS + QWEN3_CODER_MODELS
            if m.shape_known and (m.alias in preferred or m.mode == "hybrid")]
    if not hardware.gpus and not hardware.unified_memory and not hardware.memory_bandwidth:
        pool = [m for m in pool if m.moe or m.parameters <= CPU_DENSE_LIMIT]
    return sorted(pool, key=lambda m: (
        preferred.index(m.alias) if m.alias in preferred else len(preferred),
        GENERATIONS.index(m.generation), -m.parameters))


def recommend(hardware: HardwareProfile | None = None, *, backend: str = "llamacpp",
              domain: str | None = None, context: int = DEFAULT_CONTEXT,
              parallel: int = 1, min_speed: float = MIN_SPEED) -> Recommendation:
    """The largest catalog model that fits this machine and decodes at ``min_speed``
    tokens/s or more (where the speed can be estimated), with the reason.

    Example:
        >>> cpu_8gb = HardwareProfile(cpu_cores=4, cpu_threads=8, architecture="x86_64",
        ...                           ram_total=8 * 1024**3, ram_available=6 * 1024**3)
        >>> pick = recommend(cpu_8gb).choice
        >>> pick.model.alias, pick.precision
        ('qwen3.5_4b', 'Q6_K')
    """
    hardware = hardware or HardwareProfile.detect()
    profile = get_domain(domain) if domain else None
    budget = budget_for(hardware, backend)
    wanted, options = context, []
    while True:
        options = _options(hardware, backend, profile, wanted, budget, parallel)
        fitting = [o for o in options if o.fits]
        if fitting or wanted <= MIN_CONTEXT:
            break
        wanted = max(MIN_CONTEXT, wanted // 2)
    fast = [o for o in fitting if o.fast_enough(min_speed)]
    if fast:
        choice: Option | None = _prefer_on_disk(fast[0], fast)
    else:  # nothing reaches the speed: the fastest that fits
        choice = max(fitting, key=lambda o: o.tokens_per_second or 0.0, default=None)
    return Recommendation(choice, options,
                          _explain(choice, options, budget, context, wanted, min_speed))


def _options(hardware: HardwareProfile, backend: str, domain: DomainProfile | None,
             context: int, budget: Budget, parallel: int) -> list[Option]:
    from adam_integrations.catalog.local import local_path

    options = []
    for model in candidates(domain, hardware):
        if context > model.max_context:
            continue
        paths = {p: local_path(model, backend, p) for p in precisions(model, backend,
                                                                        hardware)}
        measured = measured_precisions(paths) if backend != "huggingface" else {}
        for precision, path in paths.items():
            known = measured.get(precision)
            options.append(Option(
                model, backend, precision, context,
                estimate_option(model, precision, context, budget, parallel), budget,
                path is not None, known.tokens_per_second if known else
                decode_speed(model, precision, budget, hardware), known))
    return options


def measured_precisions(paths: dict[str, Path | None]) -> dict[str, Measured]:
    """What ``adam eval`` measured on llama.cpp of a model's files on disk (``paths``: by
    precision, best first), each compared with the best precision measured over the same
    text; empty where nothing was measured."""
    found = measurements_of(path for path in paths.values() if path is not None)
    latest = {}
    for precision, path in paths.items():
        on_llama = [m for m in found.get(path, []) if m.backend == "llamacpp"] \
            if path is not None else []
        if on_llama:
            latest[precision] = on_llama[-1]
    if not latest:
        return {}
    # compare over the text measured for the most precisions (the newest such, on a tie)
    texts = [m.text_digest for m in sorted(latest.values(), key=lambda m: m.measured_at)]
    text = max(reversed(texts), key=texts.count)
    same = {p: m for p, m in latest.items() if m.text_digest == text}
    baseline_precision = next(p for p in paths if p in same)
    baseline = same[baseline_precision]
    return {p: Measured(m.perplexity, m.decode_tokens_per_s, baseline_precision,
                        m.perplexity / baseline.perplexity - 1,
                        m.decode_tokens_per_s / baseline.decode_tokens_per_s, m.text_name)
            for p, m in same.items()}


def _prefer_on_disk(first: Option, fitting: list[Option]) -> Option:
    """Among fitting options of the picked model, one already on disk wins."""
    same_model = [o for o in fitting if o.model is first.model]
    return next((o for o in same_model if o.on_disk), first)


def _explain(choice: Option | None, options: list[Option], budget: Budget, wanted: int,
             used: int, min_speed: float = MIN_SPEED) -> str:
    if choice is None:
        smallest = min(options, key=lambda o: o.estimate.total) if options else None
        need = f"; the smallest, {smallest.model.alias} {smallest.precision}, needs " \
               f"{smallest.estimate.total / GIB:.1f} GiB" if smallest else ""
        return (f"no Qwen3 model fits {budget.bytes / GIB:.1f} GiB {budget.name} with "
                f"{int((1 - HEADROOM) * 100)}% headroom{need}")
    bigger = [o for o in options if o.model.parameters > choice.model.parameters
              or (o.model is choice.model and BITS_PER_WEIGHT.get(o.precision, 0)
                  > BITS_PER_WEIGHT.get(choice.precision, 0))]
    limit = ""
    too_big = [o for o in bigger if not o.fits]
    if too_big:
        nearest = min(too_big, key=lambda o: o.estimate.total)
        limit = (f"; {nearest.model.alias} {nearest.precision} would need "
                 f"{nearest.estimate.total / GIB:.1f} GiB (the limit: {budget.name})")
    shorter = f" (context halved from {wanted} to fit)" if used < wanted else ""
    speed = ""
    if choice.tokens_per_second is not None:
        speed = (f", {choice.tokens_per_second:.0f} tokens/s measured here"
                 if choice.measured else f", about {choice.tokens_per_second:.0f} tokens/s")
        if not choice.fast_enough(min_speed):
            speed += f" (no option reaches {min_speed:g} tokens/s here: the fastest)"
        slow = [o for o in bigger if o.fits and not o.fast_enough(min_speed)]
        if slow:
            best = max(slow, key=lambda o: o.model.parameters)
            speed += (f" ({best.model.alias} {best.precision} fits but would decode at "
                      f"about {best.tokens_per_second:.1f}, under {min_speed:g} tokens/s)")
    measured = f"; {choice.measured.describe(choice.precision)}" if choice.measured else ""
    return (f"{choice.model.alias} = {choice.model.hf_id} {choice.precision} on "
            f"{choice.backend}, context {used}{shorter}: needs "
            f"{choice.estimate.total / GIB:.1f} of {budget.bytes / GIB:.1f} GiB "
            f"{budget.name}{speed}{limit}{measured}")


def best_quantization(model: Qwen3Model, hardware: HardwareProfile | None = None,
                      context: int = DEFAULT_CONTEXT, min_speed: float = MIN_SPEED) -> str:
    """The official GGUF quantization of ``model`` for this machine: the best one already
    on disk (passing over those ``adam eval`` measured below ``min_speed`` tokens/s here
    while another is fast enough), else the best that fits with headroom, else the
    smallest.

    Example:
        >>> from adam_integrations.catalog.qwen3 import find_qwen3
        >>> cpu_8gb = HardwareProfile(cpu_cores=4, cpu_threads=8, architecture="x86_64",
        ...                           ram_total=8 * 1024**3, ram_available=6 * 1024**3)
        >>> best_quantization(find_qwen3("qwen3_xl"), cpu_8gb)     # doctest: +SKIP
        'Q5_K_M'
    """
    from adam_integrations.catalog.local import local_path

    hardware = hardware or HardwareProfile.detect()
    ordered = precisions(model, "llamacpp", hardware)
    paths = {q: local_path(model, "llamacpp", q) for q in ordered}
    cached = [q for q, path in paths.items() if path is not None]
    if cached:
        measured = measured_precisions(paths)
        fast = [q for q in cached
                if q not in measured or measured[q].tokens_per_second >= min_speed]
        return fast[0] if fast else cached[0]
    budget = budget_for(hardware, "llamacpp")
    fitting = [q for q in ordered if estimate_option(model, q, context, budget).fit
               in ("perfect", "good")]
    return fitting[0] if fitting else ordered[-1]


def auto_download() -> bool:
    """Whether ``ModelManager()`` may download its pick (``ADAM_AUTO_DOWNLOAD=1``)."""
    return os.environ.get("ADAM_AUTO_DOWNLOAD", "").lower() in ("1", "true", "yes", "on")


def default_backend(hardware: HardwareProfile) -> str:
    """The backend the automatic choice gives a GGUF on ``hardware``
    (``core.registry.gguf_backends``)."""
    return gguf_backends(hardware.gpu_kind)[0][0]


def default_chat_reference(min_speed: float = MIN_SPEED) -> tuple[str | None, str]:
    """What ``ModelManager()`` loads when no model is named, and why (one line).

    The pick when it is on disk (or ``ADAM_AUTO_DOWNLOAD=1``); else the best catalog model
    on disk that fits; else None (the caller uses the embedded default), with the reason
    naming what would be chosen and how to get it.
    """
    from adam_integrations.catalog.local import local_path

    hardware = HardwareProfile.detect()
    rec = recommend(hardware, backend=default_backend(hardware), min_speed=min_speed)
    choice = rec.choice
    if choice is None:
        return None, f"picked for this machine: {rec.explanation}"
    if choice.on_disk:
        path = local_path(choice.model, choice.backend, choice.precision)
        return str(path), f"picked for this machine: {rec.explanation} (on disk)"
    if auto_download():
        return choice.reference, (f"picked for this machine: {rec.explanation} "
                                  "(downloading: ADAM_AUTO_DOWNLOAD is set)")
    hint = (f"would pick {choice.model.alias} {choice.precision} for this machine "
            f"({rec.explanation}); it is not on disk: `adam pull {choice.reference}` or "
            "ADAM_AUTO_DOWNLOAD=1 gets it")
    local = next((o for o in rec.options if o.fits and o.on_disk), None)
    if local is not None:
        path = local_path(local.model, local.backend, local.precision)
        return str(path), f"{hint}; using the best model on disk, {local.model.alias}"
    return None, hint
