"""Stream a multi-turn chat, cut it with a stop string, read usage, and stop early."""

from adam_integrations import ModelManager

manager = ModelManager()  # the default model for this machine
print(manager.explanation)

history = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Give me three tips for writing clear Python."},
]
usage = None
for chunk in manager.stream_chat(history, temperature=0.0, max_tokens=120, stop=["4."]):
    print(chunk.text, end="", flush=True)
    usage = chunk.usage or usage
print(f"\n\n{usage.prompt_tokens} prompt tokens, {usage.completion_tokens} generated, "
      f"{usage.tokens_per_second:.1f} tokens/s")

# Leaving the loop early stops generation at the next token; nothing keeps running.
for count, _ in enumerate(manager.stream_chat(history, max_tokens=400), start=1):
    if count == 5:
        break
print("stopped after 5 chunks")
