"""``injectctl gravimetric``: the pump accuracy test, on the bench or on the simulator.

On the bench: ``--pump-port`` and ``--balance-port`` (an MT-SICS balance, 9600 8N1
by default), the needle tip under oil in a beaker on the balance. With
``--sim`` the pump and the balance are emulated on pseudo-terminals and
``--speed`` runs the test faster than real time (120 runs the two-hour
protocol in a minute). The report is stored with the pump's calibration record
(JSON, PNG, HTML) and its path printed; the exit status is 0 for a pass, 3 for
a fail, 2 when the test could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from controller.calibration.gravimetric_record import save_report
from controller.calibration.gravimetric_run import (
    Clock,
    GravimetricAborted,
    GravimetricPlan,
    GravimetricReport,
    RealClock,
    WeightSample,
    run_gravimetric,
)
from controller.calibration.transducer import default_store_dir
from controller.procedure.catalog import CatalogError
from drivers.balance import Balance
from drivers.mtsics import BalanceError
from drivers.ne1000 import NE1000
from drivers.ne1000_protocol import PumpError
from drivers.transport import PortOpenError
from simulator.gravimetric_rig import gravimetric_rig


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "gravimetric",
        help="pump accuracy test with a balance (IEC 60601-2-24 start-up and trumpet curves)",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--sim", action="store_true", help="emulated pump and balance")
    where.add_argument("--pump-port", help="NE-1000 device path or pyserial URL")
    p.add_argument("--balance-port", help="MT-SICS balance device path or pyserial URL")
    p.add_argument("--pump-baud", type=int, default=19200)
    p.add_argument("--pump-address", type=int, default=0)
    p.add_argument("--balance-baud", type=int, default=9600)
    p.add_argument("--speed", type=float, default=120.0, help="with --sim: times real time")
    p.add_argument("--syringe", default="bd-luerlok-5ml", help="syringe id (config/syringes.toml)")
    p.add_argument("--rate-ml-h", type=float, default=1.0)
    p.add_argument("--duration-min", type=float, default=120.0)
    p.add_argument("--interval-s", type=float, default=30.0)
    p.add_argument("--tolerance-pct", type=float, default=2.0, help="allowed mean flow error")
    p.add_argument("--density-g-ml", type=float, default=0.9982, help="of the test liquid")
    p.add_argument("--cal-dir", type=Path, help="calibration records (default: user data)")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    try:
        plan = _plan(args)
    except (CatalogError, ValidationError) as exc:
        print(f"injectctl gravimetric: {_one_line(exc)}", file=sys.stderr)
        return 2
    if args.pump_port and not args.balance_port:
        print("injectctl gravimetric: --balance-port is needed with --pump-port", file=sys.stderr)
        return 2
    try:
        async with _devices(args, plan) as (pump, balance, clock, speed):
            _announce(plan, pump, balance, speed)
            report = await run_gravimetric(
                pump, balance, plan, clock, clock_speed=speed, on_progress=_progress
            )
    except (PortOpenError, PumpError, BalanceError, GravimetricAborted, OSError) as exc:
        print(f"\ninjectctl gravimetric: {exc}", file=sys.stderr)
        return 2
    path = save_report(args.cal_dir or default_store_dir(), report)
    _summary(report, path)
    return 0 if report.passed else 3


def _plan(args: argparse.Namespace) -> GravimetricPlan:
    return GravimetricPlan.for_syringe(
        args.syringe,
        rate_ml_h=args.rate_ml_h,
        duration_min=args.duration_min,
        interval_s=args.interval_s,
        tolerance_pct=args.tolerance_pct,
        density_g_ml=args.density_g_ml,
    )


@contextlib.asynccontextmanager
async def _devices(
    args: argparse.Namespace, plan: GravimetricPlan
) -> AsyncIterator[tuple[NE1000, Balance, Clock, float]]:
    clock: Clock
    async with contextlib.AsyncExitStack() as stack:
        if args.sim:
            rig = await stack.enter_async_context(
                gravimetric_rig(plan.diameter_mm, speed=args.speed)
            )
            pump_port, balance_port, clock, speed = (
                rig.pump.path,
                rig.balance.path,
                rig.clock,
                args.speed,
            )
        else:
            pump_port, balance_port, clock, speed = (
                args.pump_port,
                args.balance_port,
                RealClock(),
                1.0,
            )
        pump = await NE1000.open(pump_port, args.pump_baud, args.pump_address)
        stack.push_async_callback(pump.close)
        balance = await Balance.open(balance_port, args.balance_baud)
        stack.push_async_callback(balance.close)
        yield pump, balance, clock, speed


def _announce(plan: GravimetricPlan, pump: NE1000, balance: Balance, speed: float) -> None:
    ident = balance.identity
    real_s = plan.duration_min * 60 / speed
    takes = f"{real_s / 60:.1f} min" if real_s >= 120 else f"{real_s:.0f} s"
    print(
        f"Gravimetric test: {plan.syringe} ({plan.diameter_mm:g} mm) at {plan.rate_ml_h:g} mL/h "
        f"for {plan.duration_min:g} min, weighed every {plan.interval_s:g} s"
        f"{'' if speed == 1 else f' (simulated, {speed:g}x real time)'}; "
        f"takes {takes}. Balance: {ident.model if ident else '?'}."
    )


def _progress(i: int, n: int, sample: WeightSample) -> None:
    end = "\r" if sys.stderr.isatty() else "\n"
    if end == "\n" and i % 20 and i != n:
        return  # in a log, one line every ten minutes of test time is enough
    print(
        f"  {i:4d}/{n} t {sample.t_s / 60:6.1f} min  net {sample.net_g:9.5f} g  "
        f"pump {sample.pump_infused_ml:.4f} mL{'' if sample.stable else '  (unstable)'}",
        end=end,
        file=sys.stderr,
        flush=True,
    )


def _summary(report: GravimetricReport, path: Path) -> None:
    print()
    print(f"mean flow {report.mean_flow_ml_h:.4f} mL/h, error A {report.mean_error_pct:+.2f} %")
    for row in report.trumpet:
        print(
            f"  window {row.window_min:4g} min: Ep(max) {row.max_error_pct:+6.2f} %  "
            f"Ep(min) {row.min_error_pct:+6.2f} %"
        )
    for note in report.notes:
        print(f"note: {note}")
    verdict = "PASSED" if report.passed else "FAILED"
    print(f"{verdict}; report {path.with_suffix('.html')} (curves {path.with_suffix('.png')})")


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "plan"
        return f"{field}: {err['msg']}"
    return str(exc)
