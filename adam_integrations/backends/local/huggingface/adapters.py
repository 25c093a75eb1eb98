"""PEFT LoRA adapters on the transformers backend: injected into the loaded model in
place (PEFT's own layers, unmerged), so generation runs as before with the adapters' deltas
added; several adapters are active together, each at its scale, or each request chooses
its own (llama-server's per-request ``lora``) and the batcher switches between forward
passes. Each is checked against
the model first: one made for another model is refused naming both, not left to a
``size mismatch`` from torch."""

from __future__ import annotations

from typing import Any

from adam_integrations.core.adapters import Adapter, chosen_adapters
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.extras import require_extra


def apply_peft_adapters(model: Any, adapters: tuple[Adapter, ...],
                        model_name: str) -> ActiveAdapters:
    """Inject ``adapters`` into ``model`` (a transformers causal LM); all of them apply
    until ``ActiveAdapters.use`` chooses otherwise."""
    require_extra("tune", "LoRA adapters on the transformers backend")
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer

    from adam_integrations.sharing.adapter_gguf import read_peft_adapter

    names = []
    wrapped = None
    for index, adapter in enumerate(adapters):
        if adapter.path.is_file():
            raise InvalidRequestError(
                f"{adapter.path} is a GGUF adapter, which the llama.cpp backend applies; "
                "the transformers backend loads PEFT adapter folders (adam tune's output)",
                param="adapters")
        peft_adapter = read_peft_adapter(adapter.path)
        check_adapter_fits(model, peft_adapter, model_name)
        name = f"adapter{index}"
        if wrapped is None:
            wrapped = PeftModel.from_pretrained(model, str(adapter.path), adapter_name=name,
                                                is_trainable=False)
        else:
            wrapped.load_adapter(str(adapter.path), adapter_name=name, is_trainable=False)
        names.append(name)
    layers = [module for module in model.modules() if isinstance(module, LoraLayer)]
    active = ActiveAdapters(layers, names, [adapter.scale for adapter in adapters])
    active.use(active.defaults)
    return active


class ActiveAdapters:
    """Which of a model's injected adapters the next forward pass applies, and at what
    scales: requests choose their own (``GenerationConfig.lora``), so the batcher sets
    each group's choice before its forward pass; setting the choice already in place
    costs nothing."""

    def __init__(self, layers: list[Any], names: list[str], scales: list[float]) -> None:
        self._layers = layers
        self._names = names
        self._trained = [dict(layer.scaling) for layer in layers]
        """Each layer's scaling of each adapter as trained (alpha / rank)."""
        self.scales = scales
        """The scales the adapters were loaded with (``Adapter.scale``)."""
        self.defaults = chosen_adapters(None, scales)
        """What a request that does not choose runs with: every adapter at its scale."""
        self._current: tuple[tuple[int, float], ...] | None = None

    def use(self, chosen: tuple[tuple[int, float], ...]) -> None:
        """Apply the adapters ``chosen`` (``(index, scale)`` pairs), the others off."""
        if chosen == self._current:
            return
        active = [self._names[index] for index, _ in chosen]
        for layer, trained in zip(self._layers, self._trained, strict=True):
            layer.set_adapter(active, inference_mode=True)
            for index, scale in chosen:
                name = self._names[index]
                if name in trained:
                    layer.scaling[name] = trained[name] * scale
        self._current = chosen


def check_adapter_fits(model: Any, adapter: Any, model_name: str) -> None:
    """Refuse, naming both, a PEFT adapter (``sharing.adapter_gguf.PeftAdapter``) whose
    weights do not fit ``model``'s layers (made for another model)."""
    from safetensors import safe_open

    with safe_open(str(adapter.folder / "adapter_model.safetensors"), framework="pt") as f:
        for module_name, (key_a, key_b) in adapter.modules.items():
            try:
                weight = model.get_submodule(module_name).weight
            except AttributeError:
                raise InvalidRequestError(
                    f"the adapter {adapter.folder} was made for another model than "
                    f"{model_name}: {model_name} has no {module_name} (the adapter names "
                    f"{adapter.base or 'no base'})") from None
            rows, columns = f.get_slice(key_b).get_shape()[0], f.get_slice(key_a).get_shape()[1]
            if tuple(weight.shape) != (rows, columns):
                raise InvalidRequestError(
                    f"the adapter {adapter.folder} was made for another model than "
                    f"{model_name}: {module_name} is {weight.shape[0]} x {weight.shape[1]} "
                    f"there and {rows} x {columns} in the adapter (it names "
                    f"{adapter.base or 'no base'})")
