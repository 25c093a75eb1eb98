"""Qwen3: the catalog, the pick for this machine and why, thinking on and off, a domain.

    python cookbook/qwen3_example.py                 # the pick, when it is on disk
    python cookbook/qwen3_example.py ./Qwen3-8B-Q4_K_M.gguf   # any Qwen3 model
"""

import sys

from adam_integrations import ModelManager
from adam_integrations.catalog.qwen3 import QWEN3_MODELS
from adam_integrations.catalog.selection import recommend

for model in QWEN3_MODELS:
    print(f"{model.alias:<16} {model.hf_id:<22} {model.ollama_tag:<14} "
          f"context {model.native_context}")

pick = recommend()
print(f"pick for this machine: {pick.explanation}")

reference = sys.argv[1] if len(sys.argv) > 1 else None
manager = ModelManager(model=reference)
print(manager.explanation)
question = [{"role": "user", "content": "Is 17 a prime number?"}]
if "thinking" in manager.info.capabilities:
    thinking = manager.chat(question, think=True, max_tokens=96)   # reasoning apart
    print(f"reasoning: {thinking.thinking[:80]!r}\nanswer: {thinking.text[:80]!r}")
else:
    print(f"{manager.source.name} cannot think; a Qwen3 model can")
quick = manager.chat(question, think=False, max_tokens=48)     # no reasoning
print(f"without thinking: {quick.text[:80]!r} (reasoning: {quick.thinking!r})")

coder = ModelManager(model=reference, domain="code")  # the code domain's prompt, sampling
print(coder.generate_response("Reverse a list in Python.", max_tokens=48))
