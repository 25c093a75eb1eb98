"""``adam models``: every model on disk across all stores, what runs it, what is stored
twice."""

from __future__ import annotations

import argparse
from typing import Any


def add(commands: Any) -> None:
    models = commands.add_parser("models", help="every model on disk across all stores")
    models.add_argument("--dedupe", action="store_true",
                        help="report bytes stored twice across stores")
    models.add_argument("--link", action="store_true",
                        help="with --dedupe: replace the duplicates the stores own with "
                             "hardlinks (a file outside the stores is never replaced)")
    models.add_argument("--verify", action="store_true",
                        help="read every file again and check it against the digest it is "
                             "named after (slow for large models)")
    models.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.sharing.index import build_index, dedupe

    index = build_index(verify=args.verify)
    for stored in index.files:
        details = " ".join(x for x in (stored.format, stored.architecture or "",
                                       stored.size_label or "", stored.quantization or "",
                                       f"ctx {stored.context_length}"
                                       if stored.context_length else "") if x)
        print(f"{stored.size / 1024**2:10.1f} MiB  {details:<36} "
              f"{', '.join(stored.names)}")
        where = (f"BROKEN: {stored.problem}" if stored.problem
                 else f"[runs on: {', '.join(stored.backends)}]")
        print(f"{'':16}{stored.path}  {where}")
    broken = sum(1 for stored in index.files if stored.problem)
    if args.verify:
        print(f"\nverified {len(index.files)} file(s): {broken} broken")
    if args.dedupe:
        twice = index.duplicate_bytes()
        print(f"\nstored twice: {twice:,} bytes in {len(index.duplicates())} group(s)")
        if args.link and twice:
            print(f"replaced duplicates with hardlinks: {dedupe(index):,} bytes freed")
    for note in index.notes:
        print(f"note: {note}")
    return 1 if args.verify and broken else 0
