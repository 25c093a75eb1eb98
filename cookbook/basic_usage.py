"""The ModelManager in five calls: pick a model, answer, chat with usage, use a domain."""

from adam_integrations import ModelManager

manager = ModelManager()          # the default model for this machine (see the explanation)
print(manager.explanation)

print(manager.generate_response("What is a vector database? One sentence.",
                                temperature=0.0, max_tokens=48))

completion = manager.chat([{"role": "system", "content": "Answer briefly."},
                           {"role": "user", "content": "Name a fast local LLM runtime."}],
                          temperature=0.0, max_tokens=32)
print(completion.text)
print(f"finish: {completion.finish_reason}; {completion.usage.prompt_tokens} prompt + "
      f"{completion.usage.completion_tokens} generated tokens")

# A domain brings its system prompt (when the conversation has none) and its sampling.
docker = ModelManager(domain="docker")
print(docker.generate_response("How do I list running containers?", max_tokens=48))
