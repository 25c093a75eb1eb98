"""What models exist: the embedded offline defaults and the Qwen3 catalog.

``catalog.names.resolve_reference`` resolves a reference with the catalog's short names;
``catalog.defaults.resolve_model`` adds the default model for this machine.
"""
