"""``injectctl sim``: the built-in simulator, on pseudo-terminals until SIGINT/SIGTERM.

With a scenario (default ``normal-liver-saline-1ml``) one physics model drives the
pump and the bridge, and its timed faults fire; ``--pressure-mmhg`` replaces the
physics with a still pressure, as on a bench manometer. ``--offline`` runs the
scenario faster than real time with no ptys and writes its ground truth.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

from controller.procedure.catalog import CatalogError
from simulator.bridge_emulator import BridgeEmulator
from simulator.ne1000_emulator import NE1000Emulator
from simulator.offline import run_offline
from simulator.rig import SimRig
from simulator.scenario import load_scenario, scenario_library
from simulator.transducer_model import ConstantPressure

DEFAULT_SCENARIO = "normal-liver-saline-1ml"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sim", help="run the simulated pump and transducer bridge on ptys")
    p.add_argument("--pump-link", type=Path, help="symlink to create for the pump")
    p.add_argument("--pump-address", type=int, default=0, help="NE-1000 address (0-99)")
    p.add_argument("--transducer-link", type=Path, help="symlink for the PTB/1 bridge")
    p.add_argument("--scenario", help=f"scenario file or library name (default {DEFAULT_SCENARIO})")
    p.add_argument(
        "--pressure-mmhg", type=float, help="no physics: the bridge sees this still pressure"
    )
    p.add_argument("--ground-truth", type=Path, help="write the true signals here (.npz or .csv)")
    p.add_argument("--offline", action="store_true", help="faster than real time, no ptys")
    p.add_argument("--duration-s", type=float, help="offline: simulated seconds to run")
    p.add_argument("--list-scenarios", action="store_true", help="list the scenario library")
    p.set_defaults(run=run)


def _fail(message: str) -> int:
    print(f"injectctl sim: {message}", file=sys.stderr)
    return 2


async def run(args: argparse.Namespace) -> int:
    if args.list_scenarios:
        for name, path in scenario_library().items():
            scenario = load_scenario(path)
            print(f"{name:34s} expect {scenario.expect:13s} {scenario.description}")
        return 0
    if args.pressure_mmhg is not None and args.scenario is not None:
        return _fail("--pressure-mmhg replaces the physics; give it or --scenario, not both")
    try:
        scenario = load_scenario(args.scenario or DEFAULT_SCENARIO)
    except CatalogError as exc:
        return _fail(str(exc))
    if args.offline:
        return await _offline(args, scenario)
    if args.pump_link is None:
        return _fail("--pump-link is needed (or --offline)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if args.pressure_mmhg is not None:
            await _bench(args, stop)
        else:
            await _rig(args, scenario, stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print("simulator stopped; links removed", flush=True)
    return 0


def _announce_pump(emulator: NE1000Emulator, args: argparse.Namespace) -> None:
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


def _announce_bridge(bridge: BridgeEmulator, args: argparse.Namespace) -> None:
    print(
        f"PTB/1 transducer bridge at {args.transducer_link} -> {bridge.link.device}; "
        "its interlock is wired to the pump's external stop input",
        flush=True,
    )


async def _rig(args: argparse.Namespace, scenario: Any, stop: asyncio.Event) -> None:
    bridge_link = args.transducer_link or args.pump_link.with_name(args.pump_link.name + "-bridge")
    rig = SimRig(
        scenario,
        args.pump_link,
        bridge_link,
        pump_address=args.pump_address,
        ground_truth_path=args.ground_truth,
    )
    await rig.start()
    try:
        _announce_pump(rig.pump, args)
        args.transducer_link = bridge_link
        _announce_bridge(rig.bridge, args)
        print(f"scenario {scenario.name}: {scenario.description}", flush=True)
        await stop.wait()
    finally:
        await rig.stop()
    if args.ground_truth is not None:
        print(f"ground truth written to {args.ground_truth}", flush=True)


async def _bench(args: argparse.Namespace, stop: asyncio.Event) -> None:
    emulator = NE1000Emulator(args.pump_link, address=args.pump_address)
    await emulator.start()
    bridge: BridgeEmulator | None = None
    try:
        _announce_pump(emulator, args)
        if args.transducer_link is not None:
            bridge = BridgeEmulator(
                args.transducer_link,
                source=ConstantPressure(args.pressure_mmhg),
                on_interlock=emulator.external_stop,
            )
            await bridge.start()
            _announce_bridge(bridge, args)
        await stop.wait()
    finally:
        if bridge is not None:
            await bridge.stop()
        await emulator.stop()


async def _offline(args: argparse.Namespace, scenario: Any) -> int:
    started = time.perf_counter()
    result = await asyncio.to_thread(run_offline, scenario, duration_s=args.duration_s)
    elapsed = time.perf_counter() - started
    simulated = result.truth.last("t_s")
    print(
        f"scenario {scenario.name}: {simulated:.1f} s simulated in {elapsed:.2f} s "
        f"({simulated / max(elapsed, 1e-9):.0f}x real time); delivered "
        f"{result.truth.last('delivered_ml'):.3f} mL, peak line pressure "
        f"{max(result.truth.columns['p_line_mmhg']):.1f} mmHg"
    )
    for onset in result.truth.onsets:
        where = "" if onset.applied else " (no link offline: recorded only)"
        print(f"  {onset.kind} at {onset.t_s:.3f} s, {onset.delivered_ml:.3f} mL{where}")
    if args.ground_truth is not None:
        await asyncio.to_thread(result.truth.save, args.ground_truth)
        print(f"ground truth written to {args.ground_truth}")
    return 0
