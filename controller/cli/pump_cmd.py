"""``injectctl pump status|infuse|stop``: a bench tool for biomedical engineers.

``infuse`` arms the pump's safe mode for the run, so that if this program is
killed the pump stops by itself; Ctrl-C stops the pump before exiting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from typing import Any, TextIO

from controller.procedure.catalog import CatalogError, load_syringes
from drivers.ne1000 import NE1000
from drivers.ne1000_protocol import Direction, PumpError
from drivers.transport import PortOpenError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("pump", help="talk to an NE-1000 pump directly (bench use)")
    actions = p.add_subparsers(dest="action", required=True)
    for name, helptext in (
        ("status", "identify the pump and print its settings"),
        ("infuse", "infuse a volume at a rate, with a progress display"),
        ("stop", "stop the pump"),
    ):
        a = actions.add_parser(name, help=helptext)
        a.add_argument("--port", required=True, help="device path or pyserial URL")
        a.add_argument("--baud", type=int, default=19200)
        a.add_argument("--address", type=int, default=0)
        a.set_defaults(run=run, action=name)
        if name == "infuse":
            which = a.add_mutually_exclusive_group(required=True)
            which.add_argument("--syringe", help="syringe id from config/syringes.toml")
            which.add_argument("--diameter-mm", type=float, help="syringe inner diameter")
            a.add_argument("--volume-ml", type=float, required=True)
            a.add_argument("--rate-ml-min", type=float, required=True)
            a.add_argument(
                "--safe-timeout-s",
                type=int,
                default=2,
                help="pump stops by itself if this program is silent this long",
            )


async def run(args: argparse.Namespace) -> int:
    try:
        diameter = _diameter(args) if args.action == "infuse" else None
        pump = await NE1000.open(args.port, args.baud, args.address)
    except (PortOpenError, CatalogError, PumpError, OSError) as exc:
        print(f"injectctl pump: {exc}", file=sys.stderr)
        return 2
    try:
        if args.action == "status":
            await print_status(pump, sys.stdout)
        elif args.action == "stop":
            print(f"pump {(await pump.stop()).name.lower()}")
        else:
            assert diameter is not None
            return await infuse(
                pump, diameter, args.volume_ml, args.rate_ml_min, args.safe_timeout_s
            )
        return 0
    except PumpError as exc:
        print(f"injectctl pump: {exc}", file=sys.stderr)
        return 1
    finally:
        await pump.close()


def _diameter(args: argparse.Namespace) -> float:
    if args.diameter_mm is not None:
        return float(args.diameter_mm)
    syringes = load_syringes()
    if args.syringe not in syringes:
        raise CatalogError(f"unknown syringe {args.syringe!r}; known: {', '.join(syringes)}")
    return syringes[args.syringe].inner_diameter_mm


async def print_status(pump: NE1000, out: TextIO) -> None:
    ident = pump.identity
    assert ident is not None
    infused, withdrawn = await pump.dispensed_ml()
    lines = [
        f"model         NE-{ident.model} firmware {ident.firmware[0]}.{ident.firmware[1]}",
        f"status        {(await pump.status()).name.lower()}",
        f"diameter      {await pump.diameter_mm():g} mm",
        f"rate          {await pump.rate_ml_min():.4g} mL/min",
        f"volume        {await pump.volume_ml():.4g} mL (0 = continuous)",
        f"direction     {(await pump.direction()).name.lower()}",
        f"dispensed     {infused:.4g} mL infused, {withdrawn:.4g} mL withdrawn",
    ]
    lines += [f"alarm at connect A?{a.alarm.value} (acknowledged)" for a in pump.alarms if a.alarm]
    print("\n".join(lines), file=out)


async def infuse(
    pump: NE1000, diameter_mm: float, volume_ml: float, rate_ml_min: float, safe_timeout_s: int
) -> int:
    accepted_d = await pump.set_diameter_mm(diameter_mm)
    accepted_r = await pump.set_rate_ml_min(rate_ml_min)
    accepted_v = await pump.set_volume_ml(volume_ml)
    await pump.set_direction(Direction.INFUSE)
    await pump.clear_dispensed(Direction.INFUSE)
    print(
        f"pump accepted: diameter {accepted_d:g} mm, rate {accepted_r:.4g} mL/min, "
        f"volume {accepted_v:.4g} mL"
    )
    await pump.enable_safe_mode(safe_timeout_s)
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, interrupted.set)
    try:
        await pump.run()
        delivered = await _follow(pump, accepted_v, accepted_r, interrupted)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if not await pump.stop_then_disable_safe_mode():
            print("the pump did not confirm STP: its safe-mode timeout will stop it")
    verdict = "stopped by operator" if interrupted.is_set() else "complete"
    print(f"\n{verdict}: delivered {delivered:.4g} of {accepted_v:.4g} mL")
    return 130 if interrupted.is_set() else 0


async def _follow(
    pump: NE1000, volume_ml: float, rate_ml_min: float, interrupted: asyncio.Event
) -> float:
    """Poll DIS and draw progress until the pump stops or the operator interrupts."""
    start = time.monotonic()
    infused = 0.0
    while not interrupted.is_set():
        infused, _ = await pump.dispensed_ml()
        _draw(infused, volume_ml, rate_ml_min, time.monotonic() - start)
        if not (await pump.status()).moving:
            break
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.25):
                await interrupted.wait()
    infused, _ = await pump.dispensed_ml()
    _draw(infused, volume_ml, rate_ml_min, time.monotonic() - start)
    return infused


def _draw(infused_ml: float, volume_ml: float, rate_ml_min: float, elapsed_s: float) -> None:
    fraction = min(infused_ml / volume_ml, 1.0) if volume_ml else 0.0
    bar = "#" * int(fraction * 30)
    left_s = max(volume_ml - infused_ml, 0.0) / rate_ml_min * 60.0 if rate_ml_min else 0.0
    line = (
        f"[{bar:<30}] {infused_ml:.3f}/{volume_ml:.3f} mL  {rate_ml_min:.4g} mL/min  "
        f"{elapsed_s:5.1f} s elapsed  {left_s:5.1f} s left"
    )
    end = "\r" if sys.stderr.isatty() else "\n"
    print(line, end=end, file=sys.stderr, flush=True)
