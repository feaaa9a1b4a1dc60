"""``injectctl sim``: the built-in simulator on pseudo-terminals until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from simulator.ne1000_emulator import NE1000Emulator


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sim", help="run the simulated pump (and later the bridge) on ptys")
    p.add_argument("--pump-link", required=True, type=Path, help="symlink to create for the pump")
    p.add_argument("--pump-address", type=int, default=0, help="NE-1000 address (0-99)")
    p.add_argument("--transducer-link", type=Path, help="symlink for the PTB/1 bridge")
    p.add_argument("--scenario", type=Path, help="scenario file (TOML)")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    if args.transducer_link is not None or args.scenario is not None:
        print(
            "injectctl sim: the transducer bridge and scenarios are not built yet "
            "(issues 3 and 4); run with --pump-link only",
            file=sys.stderr,
        )
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    emulator = NE1000Emulator(args.pump_link, address=args.pump_address)
    await emulator.start()
    try:
        print(
            f"NE-1000 emulator (address {args.pump_address}) at {args.pump_link} "
            f"-> {emulator.link.device}",
            flush=True,
        )
        print(
            "in-band faults: send '!!silent 2', '!!delay 0.3', '!!corrupt', '!!crc', "
            "'!!garbage 20', '!!drop 1', '!!reset', '!!stall', '!!clear'",
            flush=True,
        )
        await stop.wait()
    finally:
        await emulator.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print("simulator stopped; links removed", flush=True)
    return 0
