"""``adam share``: put a GGUF from the HF cache or a package into Ollama's store (a
hardlink, no second copy)."""

from __future__ import annotations

import argparse
from typing import Any

from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.types import ModelSource


def add(commands: Any) -> None:
    share = commands.add_parser(
        "share", help="put a GGUF from the HF cache or a package into Ollama's store "
                      "(a hardlink, no second copy)")
    share.add_argument("model", help="a GGUF reference: hf:org/repo:Q4_K_M, a path, smollm2")
    share.add_argument("--to", default="ollama", choices=["ollama"])
    share.add_argument("--name", default=None, help="the Ollama name (default: derived)")
    share.add_argument("--copy", action="store_true",
                       help="copy when no link is possible (uses the disk twice)")
    share.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.sharing.ollama_share import default_ollama_name, share_gguf

    source = gguf_source(args.model)
    name = args.name or default_ollama_name(source)
    result = share_gguf(source.location, name, allow_copy=args.copy)
    how = {"hardlink": "as a hardlink (0 extra bytes)", "reflink": "as a reflink",
           "symlink": "as a symlink", "existing": "(the blob was already there)",
           "copy": f"as a COPY ({result.extra_bytes:,} bytes written)"}[result.link]
    print(f"shared {source.location} with Ollama as {result.name} {how}")
    if result.repaired:
        print(f"  repaired: {result.repaired}")
    print(f"  manifest {result.manifest}\n  blob     {result.blob}")
    return 0


def gguf_source(reference: str) -> ModelSource:
    """The GGUF ``reference`` names, on disk (a hub GGUF from the cache)."""
    from adam_integrations.catalog.defaults import resolve_model
    from adam_integrations.core.stores.hub import hub_gguf

    source = resolve_model(reference)
    if source.kind == "hub" and source.gguf_repo:
        path = hub_gguf(source.location, source.quantization, revision=None, cache_dir=None,
                        allow_download=False)
        source = resolve_model(str(path))
    if source.kind != "gguf":
        raise InvalidRequestError(
            f"{reference!r} is a {source.kind} model; Ollama imports GGUF files only. For "
            "Qwen3 use the official GGUF (e.g. hf:Qwen/Qwen3-8B-GGUF:Q4_K_M); Ollama "
            "cannot import Qwen3 safetensors")
    return source
