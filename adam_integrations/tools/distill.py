"""``adam distill``: a student model taught by a teacher's next-token distribution, on the
user's data (text, chat or prompt-completion, as ``adam tune`` reads it): the loss is
the KL divergence from the teacher's distribution to the student's at a temperature
(scaled by its square, as Hinton et al. do), mixed with the data's own loss by
``alpha``, on the tokens ``adam tune`` would train on. It is ``adam tune``'s run
(PEFT/TRL, checks, memory estimate, progress, checkpoints, resume) with TRL's
``SFTTrainer`` computing that loss; the student is trained whole by default (``full``),
or as a LoRA adapter.

The teacher runs without gradients beside the student; when the data repeats (more than
one epoch) its logits for each sequence are computed once and kept (as float16, up to
``CACHE_BYTES``). Teacher and student must share a tokenizer (the same vocabulary and
special tokens): one that does not is refused naming both. The typical use is recovering
what ``adam prune`` cut: distil the pruned model from the original.

Example:
    >>> distill("smollm2", "smollm2", "missing.jsonl")
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: no data file missing.jsonl: ...
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from adam_integrations.catalog.defaults import resolve_model
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.types import ModelSource
from adam_integrations.tools.tune import Tuned, TuneSettings, base_checkpoint, train

CACHE_BYTES = 2 * 1024**3
"""The most teacher logits kept between epochs (float16)."""


def distill(teacher: str | os.PathLike[str] | ModelSource,
            student: str | os.PathLike[str] | ModelSource, data: str | os.PathLike[str], *,
            output: str | os.PathLike[str] | None = None, temperature: float = 2.0,
            alpha: float = 0.5, eval_data: str | os.PathLike[str] | None = None,
            resume: bool = False, device: str | None = None, progress: bool = True,
            settings: TuneSettings | None = None, **options: Any) -> Tuned:
    """Teach ``student`` the distribution of ``teacher`` on ``data`` into ``output``
    (default ``<student>-distilled``): ``alpha`` of the loss is the KL divergence at
    ``temperature``, the rest the data's own loss; ``settings`` (or its fields as keyword
    ``options``) as ``tune`` takes them, ``full=True`` unless said otherwise."""
    for name, value, wanted in (("temperature", temperature, "a positive number"),
                                ("alpha", alpha, "between 0 and 1")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value) or value < 0 or (name == "alpha" and value > 1) or \
                (name == "temperature" and value == 0):
            raise InvalidRequestError(f"{name} must be {wanted}, got {value!r}", param=name)
    settings = settings or TuneSettings(**{"full": True, **options})
    source = teacher if isinstance(teacher, ModelSource) else resolve_model(teacher)
    return train(student, data, output=output, eval_data=eval_data, resume=resume,
                 device=device, progress=progress, settings=settings,
                 teacher=Teacher(source, float(temperature), float(alpha)),
                 suffix="distilled")


class Teacher:
    """The teacher's side of a run: checked against the student, loaded once, and the
    trainer class whose loss reads it (``tools.tune.train`` calls these)."""

    def __init__(self, source: ModelSource, temperature: float, alpha: float) -> None:
        self.source, self.temperature, self.alpha = source, temperature, alpha
        self.folder: Path | None = None
        self.weight_bytes = 0.0
        self.device = "cpu"

    def prepare(self, student: Path, device: str) -> None:
        """Check that teacher and student share a tokenizer; size the teacher."""
        from safetensors import safe_open
        from transformers import AutoTokenizer

        self.folder, _ = base_checkpoint(self.source)
        self.device = device
        mine, theirs = (AutoTokenizer.from_pretrained(f) for f in (self.folder, student))
        if mine.get_vocab() != theirs.get_vocab() or mine.eos_token != theirs.eos_token:
            raise InvalidRequestError(
                f"the teacher {self.source.name} and the student {student.name} have "
                f"different tokenizers ({len(mine)} and {len(theirs)} tokens); distillation "
                "compares their next-token distributions token by token, so they must share "
                "one")
        elements = 0
        for path in self.folder.glob("*.safetensors"):
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 (not a dict)
                    elements += math.prod(handle.get_slice(key).get_shape())
        self.weight_bytes = elements * (2.0 if device.startswith("cuda") else 4.0)

    def record(self) -> dict[str, Any]:
        """What ``adam-tune.json`` says of the distillation."""
        return {"distilled_from": str(self.folder), "temperature": self.temperature,
                "alpha": self.alpha}

    def trainer_class(self, base: type, dtype: Any) -> type:
        """``base`` (TRL's ``SFTTrainer``) with the distillation loss."""
        import torch
        from transformers import AutoModelForCausalLM

        from adam_integrations.backends.local.huggingface.devices import without_loading_bar

        with without_loading_bar():
            model = AutoModelForCausalLM.from_pretrained(self.folder, dtype=dtype)
        model.to(self.device).eval().requires_grad_(False)
        temperature, alpha = self.temperature, self.alpha
        cache: dict[tuple[int, ...], Any] = {}
        held = [0]

        def teacher_logits(inputs: dict[str, Any]) -> Any:
            ids, mask = inputs["input_ids"], inputs.get("attention_mask")
            keys = [tuple(row[m.bool()].tolist()) if mask is not None else tuple(row.tolist())
                    for row, m in zip(ids, mask if mask is not None else ids, strict=True)]
            if all(key in cache for key in keys):
                return torch.nn.utils.rnn.pad_sequence(
                    [cache[key].float() for key in keys], batch_first=True)[:, :ids.shape[1]]
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask).logits.float()
            for row, key in enumerate(keys):
                size = len(key) * logits.shape[-1] * 2
                if key not in cache and held[0] + size <= CACHE_BYTES:
                    cache[key] = logits[row, :len(key)].half()
                    held[0] += size
            return logits

        class DistillationTrainer(base):  # type: ignore[misc, valid-type]
            """TRL's trainer, its loss the teacher's distribution (and the data's)."""

            model_accepts_loss_kwargs = False  # the trainer averages over accumulation

            def compute_loss(self, model: Any, inputs: dict[str, Any],
                             return_outputs: bool = False,
                             num_items_in_batch: Any = None) -> Any:
                labels = inputs["labels"]
                outputs = model(input_ids=inputs["input_ids"],
                                attention_mask=inputs.get("attention_mask"))
                trained = labels[:, 1:] != -100
                student = outputs.logits[:, :-1][trained].float()
                taught = teacher_logits(inputs)[:, :-1].to(student.device)[trained]
                log_student = torch.log_softmax(student / temperature, dim=-1)
                log_teacher = torch.log_softmax(taught / temperature, dim=-1)
                kl = (log_teacher.exp() * (log_teacher - log_student)).sum(-1).mean()
                data = torch.nn.functional.cross_entropy(student, labels[:, 1:][trained])
                # evaluation reports the data's own loss (a held-out perplexity)
                loss = alpha * kl * temperature ** 2 + (1 - alpha) * data \
                    if model.training else data
                return (loss, outputs) if return_outputs else loss

        return DistillationTrainer


