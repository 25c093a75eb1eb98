"""``adam quantize``: a GGUF requantized by llama.cpp's own quantizer.

llama.cpp's ``llama_model_quantize`` (through llama-cpp-python's binding, the same code
as its ``llama-quantize`` tool) reads an unquantized GGUF (F32, F16 or BF16) and writes
it at the type asked for (``Q8_0``, ``Q6_K``, ``Q5_K_M``, ``Q4_K_M``, ``Q4_0``,
``IQ4_XS``...), choosing per tensor as llama-quantize does. The output is written to a
temporary file beside its destination and moved into place once whole, so an
interrupted run leaves nothing half-written; an existing file is never overwritten. With
``name``, the result goes straight into Ollama's store as that model (inheriting the
source model's template, system prompt and parameters when it came from the store).

Quantizing an already quantized file compounds two roundings: it is refused unless
``allow_requantize`` says it is meant.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adam_integrations.catalog.defaults import resolve_model
from adam_integrations.core.atomic import replacing
from adam_integrations.core.errors import AdamError, InvalidRequestError
from adam_integrations.core.extras import require_extra
from adam_integrations.core.stores.gguf_header import read_gguf_header
from adam_integrations.core.stores.ollama_store import model_layers
from adam_integrations.core.types import ModelSource

UNQUANTIZED = frozenset({"ALL_F32", "F16", "BF16"})
"""The file types (``general.file_type``) a quantization starts from."""
QUANTIZATIONS = ("Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S",
                 "Q4_1", "Q4_0", "IQ4_XS", "IQ4_NL", "Q3_K_L", "Q3_K_M", "Q3_K_S", "IQ3_M",
                 "IQ3_S", "IQ3_XS", "IQ3_XXS", "Q2_K", "Q2_K_S", "IQ2_M", "IQ2_S", "IQ2_XS",
                 "IQ2_XXS", "IQ1_M", "IQ1_S", "F16", "BF16")
"""The types ``quantize`` writes (llama.cpp's ``LLAMA_FTYPE_MOSTLY_<type>``)."""
NEEDS_IMATRIX = frozenset({"IQ3_XS", "IQ3_XXS", "Q2_K_S", "IQ2_M", "IQ2_S", "IQ2_XS",
                           "IQ2_XXS", "IQ1_M", "IQ1_S"})
"""The types whose tensors llama.cpp quantizes only with an importance matrix
(``tensor_requires_imatrix`` in its src/llama-quant.cpp: IQ3_XXS, IQ2_*, IQ1_* and Q2_K_S
tensors)."""


@dataclass(frozen=True)
class Quantized:
    """What ``quantize`` wrote."""

    path: Path
    quantization: str
    source: Path
    source_bytes: int
    output_bytes: int
    seconds: float
    ollama_name: str | None = None


def quantize(model: str | os.PathLike[str] | ModelSource, quantization: str, *,
             output: str | os.PathLike[str] | None = None, name: str | None = None,
             allow_requantize: bool = False, threads: int | None = None,
             imatrix: str | os.PathLike[str] | None = None,
             progress: bool = True) -> Quantized:
    """Quantize the GGUF of ``model`` (a path, an Ollama name, an ``hf:`` reference or a
    catalog name, on disk) to ``quantization``, written to ``output`` or, with ``name``,
    into Ollama's store as that model; neither: ``<model>-<quantization>.gguf`` in the
    working directory. ``imatrix``: an importance matrix file (``importance_matrix``, or
    llama.cpp's ``llama-imatrix``), which the IQ1/IQ2 types need and the others use.

    >>> quantize("smollm2", "Q4_K_X")
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: 'Q4_K_X' is not a quantization ...
    """
    kind = _quantization(quantization)
    source = model if isinstance(model, ModelSource) else resolve_model(model)
    path = gguf_on_disk(source, "quantize")
    if output is not None and name is not None:
        raise InvalidRequestError("give an output file or an Ollama name, not both")
    started = time.perf_counter()
    if name is not None:
        blob = quantize_into_store(path, kind, allow_requantize=allow_requantize,
                                   threads=threads, imatrix=imatrix, progress=progress)
        from adam_integrations.sharing.ollama_create import create_model

        inherited = model_layers(source.ollama_name) if source.ollama_name else None
        target = create_model(name, blob, inherited=inherited).blob
    else:
        target = new_output(output, source, kind)
        _quantize_file(path, target, kind, allow_requantize=allow_requantize,
                       threads=threads, imatrix=imatrix, progress=progress)
    return Quantized(target, kind, path, path.stat().st_size, target.stat().st_size,
                     time.perf_counter() - started, name)


def quantize_into_store(gguf: Path, quantization: str, *, allow_requantize: bool = False,
                        threads: int | None = None, progress: bool = False,
                        imatrix: str | os.PathLike[str] | None = None,
                        report: Callable[[str], None] = lambda status: None) -> Path:
    """``gguf`` quantized into a blob of Ollama's store (named by its sha256, as the store
    names blobs), for a model to be created from it (``/api/create`` with ``quantize``)."""
    from adam_integrations.sharing.ollama_create import blob_written_by

    kind = _quantization(quantization)

    def write(made: Path) -> None:
        current = _quantize_file(gguf, made, kind, allow_requantize=allow_requantize,
                                 threads=threads, imatrix=imatrix, progress=progress,
                                 overwrite=True)  # made: the store's own temporary file
        report(f"quantizing {current.removeprefix('ALL_')} model to {kind}")

    return blob_written_by(write)


def _attach_imatrix(params: Any, path: str | os.PathLike[str]) -> list[Any]:
    """Point ``params.imatrix`` at the importance matrix in ``path`` (llama.cpp's
    ``llama_model_imatrix_data`` array, ended by an empty entry); the objects that must
    stay alive while llama.cpp reads them."""
    import ctypes

    import llama_cpp

    from adam_integrations.tools.imatrix import read_importance_matrix

    values = read_importance_matrix(path)
    names = [name.encode() for name in values]
    entries = (llama_cpp.llama_model_imatrix_data * (len(values) + 1))()
    arrays = []
    for entry, name, data in zip(entries, names, values.values(), strict=False):
        array = (ctypes.c_float * data.size).from_buffer_copy(data.tobytes())
        arrays.append(array)
        entry.name, entry.data, entry.size = name, array, data.size
    params.imatrix = entries
    return [entries, names, arrays]


def _quantization(text: str) -> str:
    kind = text.strip().upper()
    if kind not in QUANTIZATIONS:
        raise InvalidRequestError(
            f"{text!r} is not a quantization this can write; use one of "
            f"{', '.join(QUANTIZATIONS)}", param="quantize")
    return kind


def gguf_on_disk(source: ModelSource, tool: str) -> Path:
    """The GGUF file of ``source``, which ``tool`` reads; refused, saying what to give,
    when it is not a GGUF on this machine."""
    if source.kind == "gguf":
        return Path(source.location)
    raise InvalidRequestError(
        f"{source.name} is not a GGUF file on this machine ({source.explanation}). {tool} "
        "reads GGUF files: give a GGUF's path, an Ollama name or an hf: reference to a GGUF "
        "that is downloaded (adam pull); a transformers checkpoint must be converted to an "
        "F16 GGUF first")


def new_output(output: str | os.PathLike[str] | None, source: ModelSource, kind: str
               ) -> Path:
    """The file to write: ``output``, or ``<model>-<kind>.gguf`` in the working directory;
    refused when it exists (nothing is overwritten) or its folder does not."""
    target = Path(output) if output is not None else Path.cwd() / f"{stem(source)}-{kind}.gguf"
    return checked_new(target)


def checked_new(target: Path, what: str = "file") -> Path:
    """``target``, refused when it exists (nothing is overwritten) or its folder does not;
    ``what`` it is, for the message (an output "file" or "folder")."""
    if target.exists():
        raise InvalidRequestError(f"{target} already exists; choose another output {what} "
                                  "(-o) or remove it first")
    if not target.parent.is_dir():
        raise InvalidRequestError(f"the folder {target.parent} does not exist; create it "
                                  f"or choose another output {what}")
    return target


def stem(source: ModelSource) -> str:
    """A file-name stem for outputs made from ``source``."""
    name = source.ollama_name or Path(source.location).stem or source.name
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in name).strip("-.")


def _expected_bytes(parameters: int, kind: str) -> int:
    """About what the output will weigh (for the progress bar)."""
    from adam_integrations.catalog.qwen3 import BITS_PER_WEIGHT

    return int(parameters * BITS_PER_WEIGHT.get(kind, 5.0) / 8)


def _quantize_file(source: Path, target: Path, kind: str, *, allow_requantize: bool,
                   threads: int | None, progress: bool,
                   imatrix: str | os.PathLike[str] | None = None,
                   overwrite: bool = False) -> str:
    """llama.cpp's quantizer on a worker thread, writing ``target`` through a temporary
    file beside it (a progress bar follows the file as it grows; a file at ``target``
    is replaced only with ``overwrite``); the source's type."""
    require_extra("llamacpp", "quantizing")
    import llama_cpp
    from tqdm import tqdm

    header = read_gguf_header(source)
    current = header.quantization or "unknown"
    if current not in UNQUANTIZED and not allow_requantize:
        raise InvalidRequestError(
            f"{source.name} is already quantized ({current}): quantizing it again adds a "
            "second rounding to the first. Quantize an F16, BF16 or F32 GGUF of the model "
            "instead (its original's; `adam convert MODEL --type f16` dequantizes this "
            "one, keeping its rounding), or pass allow_requantize=True (adam quantize "
            "--allow-requantize) if that is what you want", param="quantize")
    if kind in NEEDS_IMATRIX and imatrix is None:
        raise InvalidRequestError(
            f"{kind} needs an importance matrix: compute one over a text like the model's "
            "use (adam imatrix MODEL --text FILE) and pass it with --imatrix (imatrix= "
            "from Python)", param="quantize")
    expected = _expected_bytes(header.parameter_count, kind)

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}")
    params.allow_requantize = allow_requantize
    params.nthread = threads or 0
    keep = _attach_imatrix(params, imatrix) if imatrix is not None else None
    outcome: list[object] = []
    # llama.cpp logs every tensor it falls back on, some lines at its error level: quiet
    # while it quantizes (a failure is reported below, by what it returned)
    log = logging.getLogger("llama-cpp-python")
    level = log.level
    with replacing(target, overwrite=overwrite) as partial:

        def work() -> None:
            try:
                outcome.append(llama_cpp.llama_model_quantize(
                    str(source).encode(), str(partial).encode(), params))
            except BaseException as error:  # handed to the caller
                outcome.append(error)

        log.setLevel(logging.CRITICAL + 1)
        worker = threading.Thread(target=work, name="adam-quantize", daemon=True)
        worker.start()
        try:
            with tqdm(total=expected, unit="B", unit_scale=True, disable=not progress,
                      desc=f"quantizing to {kind}") as bar:
                while worker.is_alive():
                    worker.join(0.2)
                    size = partial.stat().st_size if partial.exists() else 0
                    bar.update(max(0, min(size, expected) - bar.n))
                bar.update(expected - bar.n)
        finally:
            worker.join()
            log.setLevel(level)
        result = outcome[0] if outcome else None
        if isinstance(result, BaseException):
            raise AdamError(f"llama.cpp could not quantize {source}: {result}") from result
        if result != 0 or not partial.is_file():
            raise AdamError(
                f"llama.cpp could not quantize {source} to {kind} (it returned {result}); "
                + ("does the importance matrix come from this model, and cover every "
                   "tensor the type needs it for?" if keep is not None else
                   "is the file a whole GGUF of a model llama.cpp runs?"))
    return current
