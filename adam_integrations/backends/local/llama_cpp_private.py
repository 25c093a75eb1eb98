"""The llama-cpp-python internals the llama.cpp backend uses, in one place.

llama-cpp-python has no public API for two things the backend needs: a second context on
a loaded model (the parallel slots' own, with per-sequence KV streams:
``_internals.LlamaContext`` over ``Llama._model``) and a request's own sampler chain
(``Llama._init_sampler``, which ``Llama.generate`` builds its chain with). Both are
reached here only, after checking that this llama-cpp-python has them; a version without
them is refused with the range this was written against, instead of an
``AttributeError`` from deep inside a request.
"""

from __future__ import annotations

from typing import Any

from adam_integrations.core.errors import ModelLoadError

TESTED = "0.3.16 to 0.3.36"
"""The llama-cpp-python versions these internals were written against and tested with."""


def check_internals(llama: Any) -> None:
    """Refuse a llama-cpp-python without what this module reaches into."""
    import llama_cpp

    missing = [name for name, present in (
        ("llama_cpp._internals.LlamaContext", hasattr(_internals(), "LlamaContext")),
        ("Llama._model", hasattr(llama, "_model")),
        ("Llama._init_sampler", hasattr(llama, "_init_sampler")),
        ("llama_cpp.llama_memory_seq_rm", hasattr(llama_cpp, "llama_memory_seq_rm")),
        ("llama_context_params.kv_unified", hasattr(llama.context_params, "kv_unified")),
    ) if not present]
    if missing:
        raise ModelLoadError(
            f"this llama-cpp-python ({getattr(llama_cpp, '__version__', '?')}) lacks "
            f"{', '.join(missing)}, which the llama.cpp backend uses; it was written "
            f"against {TESTED}: pip install 'llama-cpp-python>=0.3.16,<0.4'")


def slot_context(llama: Any, params: Any) -> Any:
    """A new llama.cpp context on ``llama``'s weights with ``params`` (the slots')."""
    check_internals(llama)
    return _internals().LlamaContext(model=llama._model, params=params, verbose=False)


def sampler_chain(llama: Any, settings: dict[str, Any]) -> Any:
    """A sampler chain of ``settings`` (temperature, top_k, top_p, min_p...), seeded from
    ``llama``'s seed, as ``Llama.generate`` makes one."""
    check_internals(llama)
    return llama._init_sampler(**settings)


def _internals() -> Any:
    from llama_cpp import _internals as internals

    return internals
