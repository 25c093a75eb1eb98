"""One model on disk for every backend and for Ollama (the original note's example).

First the embedded SmolLM2, which works offline right now: its GGUF goes into Ollama's
store as a hardlink (no second copy), and `ollama run smollm2-135m-instruct:q4_1` (or
`adam serve`) reads that same file. Then a Qwen3 catalog model: shared with Ollama, it
uses Qwen's official GGUF of that size, the one file in the Hugging Face cache that
llama.cpp runs (transformers too, with model_type="huggingface") and Ollama gets. With
nothing downloaded yet, its explanation says which file it would need, how large it is,
and the `adam pull` that gets it.
"""

from adam_integrations import ModelManager

embedded = ModelManager(model="smollm2", share_with_ollama=True)
print(f"{embedded.source.name} shared with Ollama as {embedded.shared_as}: Ollama reads the "
      "same file, with no second copy")
print(embedded.generate_response("Say hello.", max_tokens=8, temperature=0))

qwen3 = ModelManager(model_size="qwen3_medium", share_with_ollama=True)
print(qwen3.explanation)
if qwen3.shared_as is None:
    print("the Qwen3 GGUF is not downloaded: run the `adam pull` above, then this example "
          "again")
else:
    print(f"shared with Ollama as {qwen3.shared_as}: `ollama run {qwen3.shared_as}` reads "
          "the same file, with no second copy")
    print(qwen3.generate_response("Say hello.", max_tokens=8))
