"""What the controller does to the devices, one short function per job.

Kept apart from the state machine so that each step (stop now, arm the watchdogs, program
a fill, zero) reads as the sequence it is.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from controller.calibration.transducer import collect_raw, still_reading
from controller.procedure.fluid_path import FluidPath
from controller.records.recorder import utc_now
from controller.safety.line_model import LinePrior
from drivers.clock import now_s
from drivers.ne1000 import NE1000
from drivers.ne1000_protocol import Direction, PumpError, format_reply_number
from drivers.transducer import Scale, TransducerBridge
from drivers.transducer_link import BridgeError

if TYPE_CHECKING:
    from controller.config import ControllerConfig
    from controller.injection import Injection

MIN_FILL_ML = 0.001


def dis_resolution_ml(volume_ml: float) -> float:
    """The last digit of a DIS reading of this volume. Replies carry 4 digits, at most 3
    after the point, in mL or (syringes up to 14 mm) in uL; the mL reading's is the coarser:
    1 uL under 10 mL, 10 uL under 100 mL. (A fixed 0.1 uL once made a fill resumed after a
    pause end "by itself": its target, 0.2484 + 1.625 mL, sat 0.4 uL above the last
    reading, 1873 uL; population normal #120.)"""
    whole_digits = len(format_reply_number(volume_ml).partition(".")[0])
    return 10.0 ** (whole_digits - 4)


def stop_now(pump: NE1000, bridge: TransducerBridge, why: str) -> None:
    """The stop path, synchronous: no infusing RUN may leave the driver from now on, STP to
    the OS, INTERLOCK to the OS; each tried even if another fails."""
    pump.inhibit_run(why)
    with contextlib.suppress(PumpError):
        pump.stop_nowait()
    with contextlib.suppress(BridgeError):
        bridge.assert_interlock_nowait()


async def arm(
    pump: NE1000, bridge: TransducerBridge, config: ControllerConfig, limit_mmhg: float
) -> None:
    """Both hardware watchdogs and the bridge's own over-pressure trip, for an injection."""
    await pump.enable_safe_mode(config.safe_timeout_s)
    await bridge.arm_watchdog(config.bridge_watchdog_ms)
    await bridge.set_trip_limit(limit_mmhg, config.trip_consecutive)


async def disarm(pump: NE1000, bridge: TransducerBridge) -> None:
    with contextlib.suppress(PumpError):
        await pump.disable_safe_mode()
    with contextlib.suppress(BridgeError):
        await bridge.disarm_watchdog()


async def program_fill(pump: NE1000, injection: Injection, remaining_ml: float) -> float:
    """Diameter, direction, rate and the fill's volume target; a new fill clears DIS.
    Returns the target the pump accepted (its 4-digit format rounds it)."""
    await pump.set_diameter_mm(injection.path.syringe.inner_diameter_mm)
    await pump.set_direction(Direction.INFUSE)
    await pump.set_rate_ml_min(injection.request.rate_ml_min)
    accepted = await pump.set_volume_ml(max(remaining_ml, MIN_FILL_ML))
    if injection.fill_delivered_ml == 0.0:
        await pump.clear_dispensed(Direction.INFUSE)
        await pump.clear_dispensed(Direction.WITHDRAW)
    return accepted


async def net_dispensed_ml(pump: NE1000) -> float:
    """What the plunger really moved into the line since the fill began: infused less
    withdrawn (a relief's momentary reverse included)."""
    infused, withdrawn = await pump.dispensed_ml()
    return infused - withdrawn


async def read_delivery(pump: NE1000, injection: Injection) -> None:
    """The fill's net plunger travel from the pump, and when it was read (what an estimate
    starts from if the pump goes quiet before the next reading)."""
    injection.fill_delivered_ml = await net_dispensed_ml(pump)
    injection.dis_read_mono_s = now_s()
    injection.delivery_estimate = None


def line_prior(path: FluidPath) -> LinePrior:
    """What the catalogs say: compliance of syringe, line and dome, and the Hagen-Poiseuille
    resistance of needle and extension line for the drug (the detectors correct it)."""
    return LinePrior(path.compliance_ml_per_mmhg, path.resistance)


async def zero(bridge: TransducerBridge, samples: int) -> float:
    """Mean of still samples at atmosphere becomes the zero; the gain is kept."""
    raw = await collect_raw(bridge, samples, timeout_s=5 + samples / 500)
    gain = bridge.scale.gain_counts_per_mmhg
    reading = still_reading(raw, gain)
    source = f"zeroed {utc_now()}; gain {bridge.scale.source}"
    bridge.scale = Scale(reading.raw_mean, gain, source, bridge.scale.calibrated)
    return reading.raw_mean
