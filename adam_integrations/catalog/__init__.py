"""What models exist: the embedded offline defaults and the Qwen3 catalog."""
