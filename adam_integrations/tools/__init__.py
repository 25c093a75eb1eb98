"""Tools that make and measure model files: ``convert`` (a transformers checkpoint to a
GGUF), ``importance_matrix`` (what a text uses of each weight), ``quantize`` (llama.cpp's
quantizer, into a file or Ollama's store) and ``evaluate`` (perplexity, divergence from
the unquantized model, speed). The same as ``adam convert``, ``adam imatrix``,
``adam quantize`` and ``adam eval`` on the command line; and ``tune`` (a LoRA adapter or
a fine-tuned model, ``adam tune``) and ``merge`` (an adapter into its base, ``adam
merge``)."""

from adam_integrations.tools.convert import Converted, convert
from adam_integrations.tools.evaluate import Evaluation, evaluate
from adam_integrations.tools.imatrix import ImportanceMatrix, importance_matrix
from adam_integrations.tools.merge import Merged, merge
from adam_integrations.tools.quantize import (
    QUANTIZATIONS,
    Quantized,
    quantize,
    quantize_into_store,
)
from adam_integrations.tools.tune import Tuned, TuneSettings, tune

__all__ = ["QUANTIZATIONS", "Converted", "Evaluation", "ImportanceMatrix", "Merged",
           "Quantized", "TuneSettings", "Tuned", "convert", "evaluate",
           "importance_matrix", "merge", "quantize", "quantize_into_store", "tune"]
