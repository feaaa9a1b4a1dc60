"""``injectctl transducer verify``: a multi-point check against a reference manometer with
the calibration in force, pass/fail against a tolerance, and a stored certificate."""

from __future__ import annotations

import argparse

from controller.calibration.transducer import (
    CalibrationRecord,
    CalibrationStore,
)
from controller.calibration.verification import (
    CheckPoint,
    Tolerance,
    certify,
    check_point,
    save_certificate,
)
from controller.cli.prompt import Prompter, reference_points
from drivers.transducer import TransducerBridge


async def verify(
    args: argparse.Namespace,
    bridge: TransducerBridge,
    record: CalibrationRecord,
    store: CalibrationStore,
) -> int:
    tolerance = Tolerance(absolute_mmhg=args.tolerance_mmhg, percent_of_reading=args.tolerance_pct)
    print(
        f"Verification with {bridge.scale.source}, tolerance {tolerance.describe()}. For each "
        "point, set the manometer, let it settle, and type its reading."
    )
    points: list[CheckPoint] = []
    prompter = Prompter()
    gain = record.gain_counts_per_mmhg
    async for reference, reading in reference_points(prompter, bridge, gain, args.samples):
        point = check_point(reference, reading, record, tolerance)
        points.append(point)
        print(
            f"  {reference:8.2f} mmHg: reads {point.reading_mmhg:8.2f}, error "
            f"{point.error_mmhg:+.2f} (allowed ±{point.allowed_mmhg:.2f}) "
            f"{'pass' if point.passed else 'FAIL'}"
        )
    if len(points) < 2:
        print("a verification needs at least two reference points; nothing stored")
        return 1
    assert bridge.hello is not None
    certificate = certify(bridge.hello.device_id, record, tolerance, points)
    path = save_certificate(store.directory, certificate)
    print(
        f"{'PASSED' if certificate.passed else 'FAILED'}; certificate {path.with_suffix('.html')}"
    )
    return 0 if certificate.passed else 3
