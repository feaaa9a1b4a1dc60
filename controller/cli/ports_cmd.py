"""``injectctl ports``: the serial ports this machine has."""

from __future__ import annotations

import argparse
from typing import Any

from drivers.transport import list_ports


def add_parser(sub: Any) -> None:
    p = sub.add_parser("ports", help="list serial ports")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    found = list_ports()
    if not found:
        print("no serial ports found")
    for port in found:
        print(f"{port.device}\t{port.description}\t{port.hwid}")
    return 0
