"""``injectctl inject``: one injection from the command line (bench, HIL rigs, scripts).

The same controller as ``serve``, without the dashboard: it recovers whatever a
previous run left (an interrupted injection is marked and reconciled with the pump's
DIS), runs one injection with both hardware watchdogs armed, prints its progress, and
stops the pump before exiting on SIGINT or SIGTERM. ``--recover-only`` does the
recovery and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

from controller.controller import Controller, StartRefused
from controller.injection import FINAL, Injection, InjectionRequest, State
from controller.procedure.limits import LimitRefused
from controller.system import (
    ConfigError,
    DeviceSettings,
    System,
    SystemSettings,
    build_system,
    keep_built_out_of_the_collector,
    load_config,
)
from drivers.ne1000_protocol import PumpError
from drivers.transducer_link import BridgeError
from drivers.transport import PortOpenError

PROGRESS_PERIOD_S = 0.5
SETTLE_CHECK_S = 0.5


def add_parser(sub: Any) -> None:
    p = sub.add_parser("inject", help="run one injection from the command line")
    p.add_argument("--pump-port", required=True)
    p.add_argument("--transducer-port", required=True)
    p.add_argument("--pump-baud", type=int, default=19200)
    p.add_argument("--pump-address", type=int, default=0)
    p.add_argument("--transducer-baud", type=int, default=460800)
    p.add_argument("--config", type=Path, help="controller settings (TOML), as for serve")
    p.add_argument("--cal-dir", type=Path, help="transducer calibration store (default: yours)")
    p.add_argument(
        "--uncalibrated",
        metavar="REASON",
        help="inject on the bridge's nominal gain when no calibration is saved (recorded)",
    )
    p.add_argument("--db", type=Path, required=True, help="SQLite record (created if missing)")
    p.add_argument("--recover-only", action="store_true", help="recover and exit")
    p.add_argument("--syringe", default="bd-luerlok-5ml")
    p.add_argument("--needle", default="22g-coaxial-150mm")
    p.add_argument("--drug", default="saline")
    p.add_argument("--volume-ml", type=float)
    p.add_argument("--rate-ml-min", type=float)
    p.add_argument("--target", default="unspecified")
    p.add_argument("--checklist-confirmed", action="store_true")
    p.add_argument("--assume-zeroed", metavar="REASON", help="skip zeroing, recording why")
    p.add_argument(
        "--settle-timeout-s",
        type=float,
        default=120.0,
        help="how long to wait for the line to settle at rest before starting",
    )
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"injectctl inject: {exc}", file=sys.stderr)
        return 2
    settings = SystemSettings(
        devices=DeviceSettings(
            args.pump_port,
            args.transducer_port,
            pump_baud=args.pump_baud,
            pump_address=args.pump_address,
            transducer_baud=args.transducer_baud,
        ),
        db=args.db,
        config=config,
        calibration_dir=args.cal_dir,
        uncalibrated_reason=args.uncalibrated,
    )
    try:
        system = await build_system(settings)
    except (PortOpenError, BridgeError, PumpError) as exc:
        print(f"injectctl inject: {exc}", file=sys.stderr)
        return 2
    keep_built_out_of_the_collector()
    try:
        if args.recover_only:
            print("recovered", flush=True)
            return 0
        if not _calibration_ok(system, args):
            return 2
        return await _inject(args, system.controller)
    except (BridgeError, PumpError, LimitRefused, ValueError) as exc:
        print(f"injectctl inject: {exc}", file=sys.stderr)
        return 2
    finally:
        await system.close()


def _calibration_ok(system: System, args: argparse.Namespace) -> bool:
    """Say which calibration is in force; without one, refuse unless told why not."""
    scale = system.bridge.scale
    if scale.calibrated:
        print(f"calibration: {scale.source}", flush=True)
        return True
    if args.uncalibrated:
        print(
            f"WARNING: transducer NOT CALIBRATED, injecting on the bridge's nominal gain "
            f"({args.uncalibrated}; recorded)",
            file=sys.stderr,
            flush=True,
        )
        return True
    print(
        f"injectctl inject: no saved calibration for transducer bridge "
        f"{system.calibration.hello.device_id:08x} in {system.store.directory}: calibrate it "
        "(injectctl transducer calibrate), give --cal-dir, or --uncalibrated REASON",
        file=sys.stderr,
    )
    return False


async def _wait_for_rest(controller: Controller, injection: Injection, timeout_s: float) -> None:
    """A first fill starts on a settled line: say so and wait, as the operator would."""
    said = False
    try:
        async with asyncio.timeout(timeout_s):
            while (why := controller.why_not_startable(injection)) and "settling" in why:
                if not said:
                    print(f"waiting: {why}", flush=True)
                    said = True
                await asyncio.sleep(SETTLE_CHECK_S)  # the operator's glance at the line
    except TimeoutError:
        raise ValueError(
            f"the line did not settle at rest within {timeout_s:g} s ({why}): check the "
            "stopcock is turned to the patient and the line is not leaking"
        ) from None


async def _inject(args: argparse.Namespace, controller: Controller) -> int:
    if args.volume_ml is None or args.rate_ml_min is None:
        raise ValueError("--volume-ml and --rate-ml-min are needed")
    if args.assume_zeroed:
        controller.assume_zeroed(args.assume_zeroed)
    else:
        await controller.zero_transducer()
    injection = controller.create_injection(
        InjectionRequest(
            volume_ml=args.volume_ml,
            rate_ml_min=args.rate_ml_min,
            syringe=args.syringe,
            needle=args.needle,
            drug=args.drug,
            target=args.target,
            checklist_confirmed=args.checklist_confirmed,
        )
    )
    await _wait_for_rest(controller, injection, args.settle_timeout_s)
    try:
        await controller.start_injection(injection.id)
    except StartRefused as refused:  # one line that says why (a latched alarm by name)
        print(f"injectctl inject: START refused: {refused}", file=sys.stderr)
        return 2
    print(f"started {injection.id}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        while injection.state not in FINAL and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PROGRESS_PERIOD_S):  # progress display period
                    await stop.wait()
            print(
                f"{injection.state:9s} {injection.delivered_ml * 1e3:7.1f} uL "
                f"{controller.supervisor.last_pressure_mmhg:7.1f} mmHg",
                flush=True,
            )
        if injection.state in (State.RUNNING, State.PAUSED):
            await controller.stop_injection(injection.id)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    alarm = f" ({injection.alarm.kind}: {injection.alarm.detail})" if injection.alarm else ""
    print(f"{injection.state}: delivered {injection.delivered_ml:.3f} mL{alarm}", flush=True)
    return 0 if injection.state is State.COMPLETED else 1
