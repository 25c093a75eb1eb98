"""One model on disk for every backend and for Ollama (the original note's example).

A Qwen3 catalog model shared with Ollama uses Qwen's official GGUF of that size: the one
file in the Hugging Face cache is what transformers loads, what llama.cpp runs, and what
Ollama gets, as a hardlink. With nothing downloaded yet, the explanation says which file
it would need, how large it is, and the `adam pull` that gets it.
"""

from adam_integrations import ModelManager

manager = ModelManager(model_type="huggingface", model_size="qwen3_medium",
                       share_with_ollama=True)
print(manager.explanation)
if manager.shared_as is None:
    print("nothing shared yet: run the `adam pull` above, then this example again")
else:
    print(f"shared with Ollama as {manager.shared_as}: `ollama run {manager.shared_as}` "
          "reads the same file, with no second copy")
    print(manager.generate_response("Say hello.", max_tokens=8))
