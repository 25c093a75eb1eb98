"""``adam tune``: a LoRA adapter (or, with ``full``, all the weights of a small model)
trained on the user's data, with PEFT and TRL's ``SFTTrainer`` on the transformers
backend's CPU or GPU.

What is here is what the trainer does not do for a user:

- the data read in the shapes people have (``tune_data``) and rendered by the model's own
  chat template exactly as the backends render a request, the loss on the assistant's
  tokens only;
- every setting checked, and the memory the run needs estimated (``core.memory``), before
  anything is loaded or written: a run that would not fit is refused with the estimate
  and a smaller setting that fits;
- the base resolved like any model reference; a GGUF base (the embedded ``smollm2``) is
  trained on its dequantized checkpoint, so the adapter applies to that GGUF too;
- a progress bar with the loss, tokens/s and time left; checkpoints under
  ``<output>/checkpoints`` (a run killed or stopped with Ctrl-C resumes from the last
  whole one with ``resume=True``; the first Ctrl-C or SIGTERM saves and stops at the end
  of the step, leaving a usable adapter); the result written beside them under a temporary
  name and moved into place when whole, with ``adam-tune.json`` saying what it was
  trained on.

Example:
    >>> tune("smollm2", "missing.jsonl")
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: no data file missing.jsonl: ...
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adam_integrations.backends.local.huggingface.devices import (
    pick_device,
    without_loading_bar,
)
from adam_integrations.catalog.defaults import resolve_model
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.extras import require_extra
from adam_integrations.core.hardware import available_memory
from adam_integrations.core.memory import TrainingEstimate, training_estimate
from adam_integrations.core.types import ModelSource
from adam_integrations.sharing.checkpoint_gguf import checkpoint_folder
from adam_integrations.tools.quantize import checked_new, gguf_on_disk, stem
from adam_integrations.tools.tune_data import (
    TokenizedData,
    read_training_data,
    tokenize_training_data,
)

TUNE_RECORD = "adam-tune.json"
"""What a tuned folder was trained on and how (written last: a folder without it is not
a finished result)."""
CHECKPOINTS = "checkpoints"
EXCLUDED_MODULES = ("embed_tokens", "lm_head")
"""Linear layers an adapter leaves alone (PEFT's ``all-linear`` does too; llama.cpp's
adapters hold the blocks' projections)."""


@dataclass(frozen=True)
class TuneSettings:
    """How to train: LoRA ``rank`` and ``alpha`` (default twice the rank) on
    ``target_modules`` (``all-linear``, or names such as ``q_proj,v_proj``), or ``full``
    fine-tuning; ``epochs`` over the data or ``max_steps`` optimizer steps;
    ``learning_rate`` (default 2e-4 for LoRA, 2e-5 for full); ``batch_size`` sequences per
    step times ``grad_accum``; sequences cut at ``max_length`` tokens; a checkpoint every
    ``save_steps`` (default a tenth of the run)."""

    full: bool = False
    rank: int = 16
    alpha: float | None = None
    target_modules: str = "all-linear"
    epochs: float = 3.0
    max_steps: int | None = None
    learning_rate: float | None = None
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 1024
    seed: int = 0
    save_steps: int | None = None
    checkpointing: bool | None = None
    """Activation checkpointing (the backward pass recomputes each block's activations:
    a fraction of the memory, about a third slower); None: on only when the run would not
    fit without it."""

    def __post_init__(self) -> None:
        for name in ("rank", "batch_size", "grad_accum", "max_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidRequestError(f"{name} must be a whole number of at least 1, got "
                                          f"{value!r}", param=name)
        for name in ("max_steps", "save_steps"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise InvalidRequestError(f"{name} must be a whole number of at least 1, got "
                                          f"{value!r}", param=name)
        for name in ("alpha", "learning_rate", "epochs"):
            value = getattr(self, name)
            if value is None and name != "epochs":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value) or value <= 0:
                raise InvalidRequestError(f"{name} must be a positive number, got {value!r}",
                                          param=name)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise InvalidRequestError(f"seed must be a whole number, got {self.seed!r}",
                                      param="seed")
        if not self.target_modules.strip():
            raise InvalidRequestError("target_modules is empty: give all-linear or module "
                                      "names such as q_proj,v_proj", param="target_modules")

    @property
    def lora_alpha(self) -> float:
        return self.alpha if self.alpha is not None else 2.0 * self.rank

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return 2e-5 if self.full else 2e-4


@dataclass(frozen=True)
class Tuned:
    """What ``tune`` made: the folder (a PEFT adapter, or with ``full`` a checkpoint),
    the base checkpoint it was trained on (and the GGUF that came from, if any), and how
    the run went."""

    path: Path
    base: Path
    base_gguf: Path | None
    method: str
    steps: int
    train_loss: float | None
    eval_loss_before: float | None
    eval_loss: float | None
    tokens: int
    seconds: float
    estimate: TrainingEstimate = field(repr=False)
    interrupted: bool = False

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def tune(base: str | os.PathLike[str] | ModelSource, data: str | os.PathLike[str], *,
         output: str | os.PathLike[str] | None = None, eval_data: str | os.PathLike[str]
         | None = None, resume: bool = False, device: str | None = None,
         progress: bool = True, settings: TuneSettings | None = None,
         **options: Any) -> Tuned:
    """Train ``base`` on ``data`` into ``output`` (default ``<base>-tuned`` in the working
    directory), with ``settings`` (or its fields as keyword ``options``: ``rank=8``,
    ``max_steps=100``...); ``eval_data`` gives the held-out loss before and after.
    ``resume=True`` continues a run in ``output`` from its last whole checkpoint.

    Everything is checked first (settings, output, every data line, the target modules,
    the memory) and nothing is written when something is wrong.
    """
    return train(base, data, output=output, eval_data=eval_data, resume=resume,
                 device=device, progress=progress,
                 settings=settings or TuneSettings(**options))


def train(base: str | os.PathLike[str] | ModelSource, data: str | os.PathLike[str], *,
          output: str | os.PathLike[str] | None, eval_data: str | os.PathLike[str] | None,
          resume: bool, device: str | None, progress: bool, settings: TuneSettings,
          teacher: Any = None, suffix: str = "tuned") -> Tuned:
    """``tune``'s run, with a ``teacher`` (``tools.distill``'s) whose distribution the
    model learns when one is given; ``suffix`` names the default output folder."""
    data_read = read_training_data(data)
    eval_read = read_training_data(eval_data) if eval_data is not None else None
    source = base if isinstance(base, ModelSource) else resolve_model(base)
    target = _output(output, source, resume, suffix)
    require_extra("tune", "adam tune")
    folder, gguf = base_checkpoint(source)
    device = _device(device)
    shapes = _checkpoint_shapes(folder)
    targets = _target_modules(settings, shapes, folder)
    if teacher is not None:
        teacher.prepare(folder, device)  # its tokenizer checked, its size known
    settings, estimate = _fitting(settings, source.name, folder, shapes, targets, device,
                                  teacher.weight_bytes if teacher is not None else 0.0)

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    name = source.name
    train_tokens = tokenize_training_data(data_read, tokenizer,
                                          max_length=settings.max_length, model_name=name)
    eval_tokens = (tokenize_training_data(eval_read, tokenizer,
                                          max_length=settings.max_length, model_name=name)
                   if eval_read is not None else None)
    return _train(settings, folder, gguf, target, tokenizer, train_tokens, eval_tokens,
                  targets, estimate, device, resume=resume, progress=progress,
                  data=data_read.path, teacher=teacher)


# -- checks ------------------------------------------------------------------------------
def _output(output: str | os.PathLike[str] | None, source: ModelSource, resume: bool,
            suffix: str) -> Path:
    target = Path(output) if output is not None else \
        Path.cwd() / f"{stem(source)}-{suffix}"
    if not resume:
        return checked_new(target, "folder")
    if not (target / CHECKPOINTS).is_dir():
        raise InvalidRequestError(f"{target} holds no run of adam tune to resume (no "
                                  f"{CHECKPOINTS}/ folder); leave out resume to start one")
    return target


def base_checkpoint(source: ModelSource) -> tuple[Path, Path | None]:
    """The transformers checkpoint to train (or merge into), and the GGUF it was
    dequantized from."""
    if source.is_gguf:
        from adam_integrations.backends.local.huggingface.gguf_conversion import (
            converted_gguf,
        )

        gguf = gguf_on_disk(source, "tune")
        return converted_gguf(gguf)[0], gguf
    return checkpoint_folder(source), None


def _device(requested: str | None) -> str:
    device = pick_device(requested)
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise InvalidRequestError(f"tune trains on the CPU or a CUDA GPU, not {device}",
                                  param="device")
    return device


def _checkpoint_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Every weight's shape, from the safetensors headers (nothing loaded)."""
    from safetensors import safe_open

    shapes = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (not a dict)
                shapes[key] = tuple(handle.get_slice(key).get_shape())
    if not shapes:
        raise InvalidRequestError(f"{folder} has no .safetensors weights to train")
    return shapes


def _linear_names(shapes: dict[str, tuple[int, ...]]) -> set[str]:
    return {key.split(".")[-2] for key, shape in shapes.items()
            if key.endswith(".weight") and len(shape) == 2 and "." in key}


def _target_modules(settings: TuneSettings, shapes: dict[str, tuple[int, ...]],
                    folder: Path) -> tuple[str, ...]:
    """The module names the adapter trains (empty for full fine-tuning)."""
    if settings.full:
        return ()
    available = sorted(_linear_names(shapes) - set(EXCLUDED_MODULES))
    if settings.target_modules.strip() == "all-linear":
        return tuple(available)
    asked = tuple(n.strip() for n in settings.target_modules.split(",") if n.strip())
    unknown = [n for n in asked if n not in available]
    if unknown:
        raise InvalidRequestError(
            f"{folder.name} has no linear layers named {', '.join(unknown)}; its layers are "
            f"{', '.join(available)} (or all-linear)", param="target_modules")
    return asked


def _config(folder: Path) -> dict[str, Any]:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return {**config.get("text_config", {}), **config}


def _estimate(settings: TuneSettings, folder: Path, shapes: dict[str, tuple[int, ...]],
              targets: tuple[str, ...], device: str, teacher_bytes: float = 0.0
              ) -> TrainingEstimate:
    config = _config(folder)
    parameters = sum(math.prod(shape) for shape in shapes.values())
    if settings.full:
        trainable = parameters
    else:
        trainable = sum(settings.rank * (shape[0] + shape[1])
                        for key, shape in shapes.items()
                        if len(shape) == 2 and key.split(".")[-2] in targets)
    weight_bytes = 2.0 if device.startswith("cuda") else 4.0
    return training_estimate(
        parameters=parameters, trainable=trainable, weight_bytes=weight_bytes,
        full=settings.full, layers=config["num_hidden_layers"], hidden=config["hidden_size"],
        intermediate=config.get("intermediate_size") or 4 * config["hidden_size"],
        vocab=config["vocab_size"],
        batch=settings.batch_size, length=settings.max_length,
        checkpointing=bool(settings.checkpointing), activation_bytes=weight_bytes,
        teacher_bytes=teacher_bytes)


def _budget(device: str) -> float | None:
    if device.startswith("cuda"):
        import torch

        return float(torch.cuda.mem_get_info(torch.device(device))[0])
    memory = available_memory()
    return float(memory) if memory is not None else None


def _fitting(settings: TuneSettings, name: str, folder: Path,
             shapes: dict[str, tuple[int, ...]], targets: tuple[str, ...], device: str,
             teacher_bytes: float = 0.0) -> tuple[TuneSettings, TrainingEstimate]:
    """The settings to train with (activation checkpointing decided, when left to this:
    on only if the run does not fit without it) and their memory estimate; refused,
    naming a smaller setting that fits, when they do not fit."""
    budget = _budget(device)
    choices = [settings] if settings.checkpointing is not None else \
        [_replaced(settings, checkpointing=False), _replaced(settings, checkpointing=True)]
    if budget is None:  # memory unknown: as asked
        return choices[0], _estimate(choices[0], folder, shapes, targets, device,
                                           teacher_bytes)
    for choice in choices:
        estimate = _estimate(choice, folder, shapes, targets, device, teacher_bytes)
        if estimate.fits(budget):
            return choice, estimate
    where = "GPU memory" if device.startswith("cuda") else "RAM"
    message = (f"training {name} needs about {estimate.describe()}, and "
               f"{budget / 1024**3:.1f} GiB of {where} is free")
    for smaller in _smaller_settings(choices[-1]):
        fitting = _estimate(smaller, folder, shapes, targets, device, teacher_bytes)
        if fitting.fits(budget):
            raise InvalidRequestError(
                f"{message}; {_flags(smaller, settings)} fits ({fitting.total / 1024**3:.1f} "
                "GiB) and trains on as many tokens per optimizer step")
    advice = "LoRA (leave out --full) or a smaller model" if settings.full else \
        "a smaller model, or a machine with more memory"
    raise InvalidRequestError(f"{message}; even one short sequence per step does not "
                              f"fit: use {advice}")


def _smaller_settings(settings: TuneSettings) -> Iterator[TuneSettings]:
    """Settings that need less memory, in the order to try them: fewer sequences per step
    (as many per optimizer step, by accumulating), then shorter sequences."""
    batch, accum, length = settings.batch_size, settings.grad_accum, settings.max_length
    while batch > 1:
        batch, accum = batch // 2, accum * 2
        yield _replaced(settings, batch_size=batch, grad_accum=accum)
    while length > 256:
        length //= 2
        yield _replaced(settings, batch_size=batch, grad_accum=accum, max_length=length)


def _replaced(settings: TuneSettings, **changes: Any) -> TuneSettings:
    return TuneSettings(**{**asdict(settings), **changes})


def _flags(smaller: TuneSettings, settings: TuneSettings) -> str:
    flags = {"batch_size": "--batch-size", "grad_accum": "--grad-accum",
             "max_length": "--max-length"}
    changed = [f"{flag} {getattr(smaller, key)}" for key, flag in flags.items()
               if getattr(smaller, key) != getattr(settings, key)]
    if smaller.checkpointing and not settings.checkpointing:
        changed.append("--checkpointing")
    return " ".join(changed)


# -- training ----------------------------------------------------------------------------
def _train(settings: TuneSettings, folder: Path, gguf: Path | None, target: Path,
           tokenizer: Any, train_tokens: TokenizedData, eval_tokens: TokenizedData | None,
           targets: tuple[str, ...], estimate: TrainingEstimate, device: str, *,
           resume: bool, progress: bool, data: Path, teacher: Any = None) -> Tuned:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    checkpoints = target / CHECKPOINTS
    last = _last_whole_checkpoint(checkpoints) if resume else None
    steps_per_epoch = math.ceil(len(train_tokens.sequences)
                                / (settings.batch_size * settings.grad_accum))
    total_steps = settings.max_steps or max(1, math.ceil(steps_per_epoch * settings.epochs))
    save_steps = settings.save_steps or max(10, total_steps // 10)
    half = device.startswith("cuda") and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if half else torch.float32
    with without_loading_bar():
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    peft_config = None if settings.full else LoraConfig(
        r=settings.rank, lora_alpha=settings.lora_alpha, lora_dropout=0.0,
        target_modules=list(targets), task_type="CAUSAL_LM")
    config = SFTConfig(
        output_dir=str(checkpoints), per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum, learning_rate=settings.lr,
        num_train_epochs=settings.epochs, max_steps=total_steps,
        max_length=settings.max_length, seed=settings.seed, data_seed=settings.seed,
        save_strategy="steps", save_steps=save_steps, save_total_limit=2,
        eval_strategy="steps" if eval_tokens else "no", eval_steps=save_steps,
        logging_strategy="steps", logging_steps=max(1, min(10, total_steps // 20)),
        report_to="none", disable_tqdm=True, bf16=half, use_cpu=device == "cpu",
        include_num_input_tokens_seen="non_padding", dataloader_pin_memory=False,
        activation_checkpointing=bool(settings.checkpointing))
    stop = _Stop()
    bar = _Progress(total_steps, progress, stop)
    # from here on a Ctrl-C saves and stops at the end of a step (the test waits for the
    # checkpoints folder to send one)
    with stop.on_interrupt():
        checkpoints.mkdir(parents=True, exist_ok=True)
        trainer_class = SFTTrainer if teacher is None else teacher.trainer_class(
            SFTTrainer, dtype)
        with _quiet_datasets():  # its per-step bars over a few hundred rows are noise
            trainer = trainer_class(
                model=model, args=config, processing_class=tokenizer,
                peft_config=peft_config,
                train_dataset=Dataset.from_list(list(train_tokens.sequences)),
                eval_dataset=(Dataset.from_list(list(eval_tokens.sequences))
                              if eval_tokens else None), callbacks=[bar.callback()])
        trainer.remove_callback(PrinterCallback)  # the bar shows the loss; no log lines
        before = _eval_loss(trainer) if eval_tokens and last is None else None
        started = time.perf_counter()
        with bar:
            result = trainer.train(resume_from_checkpoint=str(last) if last else None)
    seconds = time.perf_counter() - started
    after = _eval_loss(trainer) if eval_tokens else None
    tuned = Tuned(path=target, base=folder, base_gguf=gguf,
                  method="full" if settings.full else "lora",
                  steps=trainer.state.global_step, train_loss=bar.last_loss or
                  (result.training_loss if result else None), eval_loss_before=before,
                  eval_loss=after, tokens=int(trainer.state.num_input_tokens_seen or 0)
                  - bar.tokens_at_start, seconds=seconds, estimate=estimate,
                  interrupted=stop.requested)
    _write_result(trainer, tokenizer, tuned, settings, data, train_tokens,
                  teacher.record() if teacher is not None else {})
    return tuned


def _eval_loss(trainer: Any) -> float | None:
    loss = trainer.evaluate().get("eval_loss")
    return float(loss) if loss is not None else None


def _last_whole_checkpoint(checkpoints: Path) -> Path | None:
    """The checkpoint of the most steps whose trainer state was written (the trainer writes
    it last, so one without it was cut short); None when there is none."""
    whole = [path for path in checkpoints.glob("checkpoint-*")
             if path.name.split("-")[-1].isdigit() and (path / "trainer_state.json").is_file()]
    return max(whole, key=lambda p: int(p.name.split("-")[-1]), default=None)


def _write_result(trainer: Any, tokenizer: Any, tuned: Tuned, settings: TuneSettings,
                  data: Path, tokens: TokenizedData, extra: dict[str, Any]) -> None:
    """The adapter (or model), tokenizer and ``adam-tune.json`` written to a temporary
    folder inside the output, then moved into place file by file, the record last."""
    staging = Path(tempfile.mkdtemp(prefix=".result-", dir=tuned.path))
    try:
        trainer.model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        record = {
            "method": tuned.method, "base": str(tuned.base),
            "base_gguf": str(tuned.base_gguf) if tuned.base_gguf else None,
            "data": str(data), "settings": asdict(settings), "steps": tuned.steps,
            "train_loss": tuned.train_loss, "eval_loss_before": tuned.eval_loss_before,
            "eval_loss": tuned.eval_loss, "trained_tokens": tokens.trained_tokens,
            "interrupted": tuned.interrupted, **extra}
        (staging / TUNE_RECORD).write_text(json.dumps(record, indent=2) + "\n",
                                           encoding="utf-8")
        (tuned.path / TUNE_RECORD).unlink(missing_ok=True)
        for path in sorted(staging.iterdir(), key=lambda p: p.name == TUNE_RECORD):
            os.replace(path, tuned.path / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    from datasets.utils import logging as datasets_logging

    was_on = datasets_logging.is_progress_bar_enabled()
    datasets_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            datasets_logging.enable_progress_bar()


class _Stop:
    """The first Ctrl-C (or SIGTERM, as ``kill``, ``docker stop`` and job schedulers send
    it) asks the trainer to save and stop after the current step, so the weights are whole;
    a second one interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def on_interrupt(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            self.requested = True
            for number, was in previous.items():
                signal.signal(number, was)

        previous = {number: signal.signal(number, handler) for number in self.SIGNALS}
        try:
            yield
        finally:
            for number, was in previous.items():
                signal.signal(number, was)


class _Progress:
    """A tqdm bar over the optimizer steps with the loss and tokens/s (the trainer's
    callback, ``callback()``, feeds it); and the stop request turned into a save-and-stop
    at the end of a step."""

    def __init__(self, total: int, enabled: bool, stop: _Stop) -> None:
        self.total, self.enabled, self.stop = total, enabled, stop
        self.bar: Any = None
        self.last_loss: float | None = None
        self.tokens_at_start = 0
        self.started = 0.0

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def callback(self) -> Any:
        """A ``transformers.TrainerCallback`` reporting to this bar."""
        from transformers import TrainerCallback

        progress = self

        class Callback(TrainerCallback):  # type: ignore[misc]
            def on_train_begin(self, args: Any, state: Any, control: Any,
                               **kwargs: Any) -> None:
                progress.begin(state)

            def on_step_end(self, args: Any, state: Any, control: Any,
                            **kwargs: Any) -> None:
                progress.step(state, control)

            def on_log(self, args: Any, state: Any, control: Any,
                       logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
                if logs and "loss" in logs:
                    progress.last_loss = float(logs["loss"])

        return Callback()

    def begin(self, state: Any) -> None:
        from tqdm import tqdm

        self.tokens_at_start = int(state.num_input_tokens_seen or 0)
        self.started = time.perf_counter()
        self.bar = tqdm(total=self.total, initial=state.global_step, unit="step",
                        desc="tuning", disable=not self.enabled)

    def step(self, state: Any, control: Any) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
            elapsed = time.perf_counter() - self.started
            seen = int(state.num_input_tokens_seen or 0) - self.tokens_at_start
            postfix = {"tok/s": f"{seen / elapsed:.0f}" if elapsed > 0 else "-"}
            if self.last_loss is not None:
                postfix = {"loss": f"{self.last_loss:.3f}", **postfix}
            self.bar.set_postfix(postfix, refresh=False)
        if self.stop.requested:
            control.should_save = True
            control.should_training_stop = True
