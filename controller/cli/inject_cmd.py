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

from controller.config import ControllerConfig
from controller.controller import Controller
from controller.injection import FINAL, InjectionRequest, State
from controller.procedure.limits import LimitRefused
from controller.records.recorder import Recorder
from drivers.ne1000 import NE1000
from drivers.ne1000_protocol import PumpError
from drivers.transducer import TransducerBridge
from drivers.transducer_link import BridgeError
from drivers.transport import PortOpenError

PROGRESS_PERIOD_S = 0.5


def add_parser(sub: Any) -> None:
    p = sub.add_parser("inject", help="run one injection from the command line")
    p.add_argument("--pump-port", required=True)
    p.add_argument("--transducer-port", required=True)
    p.add_argument("--pump-baud", type=int, default=19200)
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
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    try:
        pump = await NE1000.open(args.pump_port, args.pump_baud, command_timeout_s=0.2, retries=1)
    except (PortOpenError, PumpError) as exc:
        print(f"injectctl inject: pump: {exc}", file=sys.stderr)
        return 2
    recorder = Recorder(args.db)
    await recorder.start()
    bridge: TransducerBridge | None = None
    controller: Controller | None = None
    try:
        bridge = await TransducerBridge.open(args.transducer_port)
        controller = Controller(pump, bridge, recorder, ControllerConfig())
        await controller.start()
        if args.recover_only:
            print("recovered", flush=True)
            return 0
        return await _inject(args, controller)
    except (PortOpenError, BridgeError, PumpError, LimitRefused, ValueError) as exc:
        print(f"injectctl inject: {exc}", file=sys.stderr)
        return 2
    finally:
        if controller is not None:
            await controller.close()
        if bridge is not None:
            await bridge.close()
        await pump.close()
        await recorder.close()


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
    await controller.start_injection(injection.id)
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
