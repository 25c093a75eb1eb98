"""Tools that make and measure model files: ``convert`` (a transformers checkpoint to a
GGUF), ``importance_matrix`` (what a text uses of each weight), ``quantize`` (llama.cpp's
quantizer, into a file or Ollama's store) and ``evaluate`` (perplexity, divergence from
the unquantized model, speed). The same as ``adam convert``, ``adam imatrix``,
``adam quantize`` and ``adam eval`` on the command line; and ``tune`` (a LoRA adapter or
a fine-tuned model, ``adam tune``), ``merge`` (an adapter into its base, ``adam
merge``), ``prune`` (a smaller model by measured importance, ``adam prune``) and
``distill`` (a student taught by a teacher, ``adam distill``)."""

from adam_integrations.tools.convert import Converted, convert
from adam_integrations.tools.distill import distill
from adam_integrations.tools.evaluate import Evaluation, evaluate
from adam_integrations.tools.imatrix import ImportanceMatrix, importance_matrix
from adam_integrations.tools.merge import Merged, merge
from adam_integrations.tools.prune import Pruned, prune
from adam_integrations.tools.quantize import (
    QUANTIZATIONS,
    Quantized,
    quantize,
    quantize_into_store,
)
from adam_integrations.tools.tune import Tuned, TuneSettings, tune

__all__ = ["QUANTIZATIONS", "Converted", "Evaluation", "ImportanceMatrix", "Merged",
           "Pruned", "Quantized", "TuneSettings", "Tuned", "convert", "distill", "evaluate",
           "importance_matrix", "merge", "prune", "quantize", "quantize_into_store", "tune"]
