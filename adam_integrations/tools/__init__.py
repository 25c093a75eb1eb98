"""Tools that make and measure model files: ``quantize`` (llama.cpp's quantizer, into a
file or Ollama's store). The same as ``adam quantize`` on the command line."""

from adam_integrations.tools.quantize import (
    QUANTIZATIONS,
    Quantized,
    quantize,
    quantize_into_store,
)

__all__ = ["QUANTIZATIONS", "Quantized", "quantize", "quantize_into_store"]
