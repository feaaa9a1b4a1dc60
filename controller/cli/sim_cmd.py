"""``injectctl sim``: the built-in simulator on pseudo-terminals until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from simulator.bridge_emulator import BridgeEmulator
from simulator.ne1000_emulator import NE1000Emulator
from simulator.transducer_model import ConstantPressure


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sim", help="run the simulated pump and transducer bridge on ptys")
    p.add_argument("--pump-link", required=True, type=Path, help="symlink to create for the pump")
    p.add_argument("--pump-address", type=int, default=0, help="NE-1000 address (0-99)")
    p.add_argument("--transducer-link", type=Path, help="symlink for the PTB/1 bridge")
    p.add_argument(
        "--pressure-mmhg", type=float, default=0.0, help="pressure the bridge sees (until issue 4)"
    )
    p.add_argument("--scenario", type=Path, help="scenario file (TOML)")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    if args.scenario is not None:
        print("injectctl sim: scenarios are not built yet (issue 4)", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    emulator = NE1000Emulator(args.pump_link, address=args.pump_address)
    await emulator.start()
    bridge: BridgeEmulator | None = None
    if args.transducer_link is not None:
        bridge = BridgeEmulator(
            args.transducer_link,
            source=ConstantPressure(args.pressure_mmhg),
            on_interlock=emulator.external_stop,
        )
        await bridge.start()
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
        if bridge is not None:
            print(
                f"PTB/1 transducer bridge at {args.transducer_link} -> {bridge.link.device}; "
                "its interlock is wired to the pump's external stop input",
                flush=True,
            )
        await stop.wait()
    finally:
        if bridge is not None:
            await bridge.stop()
        await emulator.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print("simulator stopped; links removed", flush=True)
    return 0
