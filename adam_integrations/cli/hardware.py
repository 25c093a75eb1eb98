"""``adam hardware``: what this machine has for models."""

from __future__ import annotations

import argparse
from typing import Any


def add(commands: Any) -> None:
    hardware = commands.add_parser("hardware", help="what this machine has for models")
    hardware.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.core.hardware import HardwareProfile

    print("\n".join(HardwareProfile.detect().describe()))
    return 0
