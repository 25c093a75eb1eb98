"""Backend-neutral core: types, the ModelBackend interface, registry, resolver, manager."""
