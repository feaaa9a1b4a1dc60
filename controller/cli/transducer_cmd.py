"""``injectctl transducer zero|calibrate|monitor``: the transducer at the bench.

Every command opens the bridge, loads the newest calibration stored for that
transducer (or says it is using HELLO's nominal gain), streams at 1000 Hz and
only accepts readings taken while the signal is still.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from controller.calibration.transducer import (
    CalibrationError,
    CalibrationPoint,
    CalibrationRecord,
    CalibrationStore,
    collect_raw,
    default_store_dir,
    fit_record,
    nominal_record,
    still_reading,
    zero_record,
)
from controller.cli.prompt import Prompter, reference_points
from controller.cli.verify_cmd import verify
from drivers.transducer import TransducerBridge
from drivers.transducer_link import BridgeError
from drivers.transport import PortOpenError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("transducer", help="zero, calibrate or watch the pressure transducer")
    actions = p.add_subparsers(dest="action", required=True)
    for name, helptext in (
        ("zero", "zero the transducer to atmosphere"),
        ("calibrate", "span or multi-point calibration against a reference manometer"),
        ("monitor", "live pressure readout"),
        ("verify", "check against a reference manometer: pass/fail and a certificate"),
    ):
        a = actions.add_parser(name, help=helptext)
        a.add_argument("--port", required=True, help="device path or pyserial URL")
        a.add_argument("--baud", type=int, default=460800)
        a.add_argument("--cal-dir", type=Path, help="calibration records (default: user data)")
        a.add_argument("--samples", type=int, default=1000, help="samples averaged per reading")
        a.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        a.set_defaults(run=run, action=name)
        if name == "monitor":
            a.add_argument("--duration-s", type=float, help="stop after this long")
        if name == "verify":
            a.add_argument("--tolerance-mmhg", type=float, default=1.0, help="absolute part")
            a.add_argument("--tolerance-pct", type=float, default=1.0, help="%% of reading")


async def run(args: argparse.Namespace) -> int:
    store = CalibrationStore(args.cal_dir or default_store_dir())
    try:
        bridge = await TransducerBridge.open(args.port, baud=args.baud)
    except (PortOpenError, BridgeError) as exc:
        print(f"injectctl transducer: {exc}", file=sys.stderr)
        return 1
    try:
        assert bridge.hello is not None
        record = store.latest(bridge.hello.device_id) or nominal_record(bridge.hello)
        bridge.scale = record.scale()
        _describe(bridge, record)
        await bridge.start_stream(1000, 1)
        actions = {"zero": _zero, "calibrate": _calibrate, "monitor": _monitor, "verify": verify}
        return await actions[args.action](args, bridge, record, store)
    except (BridgeError, CalibrationError) as exc:
        print(f"injectctl transducer: {exc}", file=sys.stderr)
        return 1
    finally:
        await bridge.close()


def _describe(bridge: TransducerBridge, record: CalibrationRecord) -> None:
    hello = bridge.hello
    assert hello is not None
    print(
        f"bridge {hello.device_id:08x}, firmware {hello.fw_major}.{hello.fw_minor}, "
        f"PTB/{hello.proto}, excitation {hello.excitation_mv} mV"
    )
    if record.method == "nominal":
        print("calibration: none stored; using HELLO's nominal gain (uncalibrated)")
    else:
        print(
            f"calibration: {bridge.scale.source}, gain {record.gain_counts_per_mmhg:.1f} "
            f"counts/mmHg"
        )


async def _zero(
    args: argparse.Namespace,
    bridge: TransducerBridge,
    record: CalibrationRecord,
    store: CalibrationStore,
) -> int:
    if not args.yes:
        answer = await Prompter().ask(
            "Open the transducer to air (stopcock off to atmosphere, at the level of the "
            "needle tip), then press Enter: "
        )
        if answer is None:
            return 1
    raw = await collect_raw(bridge, args.samples, timeout_s=5 + args.samples / 500)
    reading = still_reading(raw, record.gain_counts_per_mmhg)
    zeroed = zero_record(reading, record)
    path = await asyncio.to_thread(store.save, zeroed)
    print(
        f"zero: {zeroed.zero_counts:.0f} counts, noise {reading.sd_mmhg:.2f} mmHg rms; "
        f"{zeroed.note}\nsaved {path}"
    )
    return 0


async def _calibrate(
    args: argparse.Namespace,
    bridge: TransducerBridge,
    record: CalibrationRecord,
    store: CalibrationStore,
) -> int:
    print(
        "Connect the reference manometer to the transducer. For each point, set a pressure, "
        "let it settle, and type the manometer's reading. Include 0 mmHg (open to air)."
    )
    points: list[CalibrationPoint] = []
    prompter = Prompter()
    gain = record.gain_counts_per_mmhg
    async for reference, reading in reference_points(prompter, bridge, gain, args.samples):
        points.append(
            CalibrationPoint(
                reference_mmhg=reference,
                raw_mean=reading.raw_mean,
                raw_sd=reading.raw_sd,
                n=reading.n,
            )
        )
        print(
            f"  {reference:8.2f} mmHg: {reading.raw_mean:12.1f} counts, "
            f"noise {reading.sd_mmhg:.2f} mmHg rms"
        )
    assert bridge.hello is not None
    fitted = fit_record(bridge.hello.device_id, points, bridge.hello.nominal_gain)
    _report_fit(fitted, bridge.hello.nominal_gain)
    if not args.yes:
        answer = await prompter.ask("Save this calibration? [y/N] ")
        if (answer or "").strip().lower() not in ("y", "yes"):
            print("not saved")
            return 1
    path = await asyncio.to_thread(store.save, fitted)
    print(f"saved {path}")
    return 0


def _report_fit(fitted: CalibrationRecord, nominal_gain: float) -> None:
    gain = fitted.gain_counts_per_mmhg
    print(f"{fitted.method} calibration from {len(fitted.points)} points:")
    print(
        f"  gain       {gain:.2f} counts/mmHg ({100 * (gain / nominal_gain - 1):+.2f} % "
        "from nominal)"
    )
    print(f"  offset     {fitted.zero_counts:.0f} counts ({fitted.zero_counts / gain:+.2f} mmHg)")
    print(f"  non-linearity {fitted.nonlinearity_pct_span:.3f} % of span")
    for point, residual in zip(fitted.points, fitted.residuals_mmhg, strict=True):
        print(f"  {point.reference_mmhg:8.2f} mmHg  residual {residual:+.3f} mmHg")


async def _monitor(
    args: argparse.Namespace,
    bridge: TransducerBridge,
    record: CalibrationRecord,
    store: CalibrationStore,
) -> int:
    window: list[float] = []
    bridge.add_sample_listener(lambda i, t, pressure, raw: window.append(pressure))
    tty = sys.stdout.isatty()
    period_s = 0.1 if tty else 0.5
    started = time.monotonic()
    while args.duration_s is None or time.monotonic() - started < args.duration_s:
        await asyncio.sleep(period_s)  # the display's refresh period, not synchronisation
        nan = float("nan")
        last, low, high = (window[-1], min(window), max(window)) if window else (nan, nan, nan)
        flags = bridge.status.flags.name if bridge.status else "?"
        line = (
            f"{last:8.2f} mmHg  min {low:8.2f}  max {high:8.2f}  "
            f"{len(window) / period_s:6.0f} Hz  lost {bridge.stats.lost_samples}  "
            f"rx errors {bridge.stats.rx_errors}  {flags}"
        )
        window.clear()
        print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)
    if tty:
        print()
    return 0
