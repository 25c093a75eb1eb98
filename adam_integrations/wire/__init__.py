"""One module per wire format (``ollama``, ``openai``), shared by the client backends and
``adam serve``, so both sides of a protocol are written once."""
