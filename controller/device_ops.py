"""What the controller does to the devices, one short coroutine per job.

Kept apart from the state machine so that each step (arm the watchdogs, program a
fill, relieve a blockage, recover after a crash) reads as the sequence it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import TYPE_CHECKING, Any

from controller.calibration.transducer import collect_raw, still_reading
from controller.procedure.fluid_path import FluidPath
from controller.records import queries
from controller.records.recorder import Recorder, utc_now
from controller.safety.line_model import LinePrior
from drivers.clock import now_s
from drivers.ne1000 import NE1000
from drivers.ne1000_protocol import Direction, PumpError
from drivers.transducer import Scale, TransducerBridge
from drivers.transducer_link import BridgeError

if TYPE_CHECKING:
    from controller.config import ControllerConfig
    from controller.injection import Injection
    from controller.safety.supervisor import Supervisor

MIN_FILL_ML = 0.001
PUMP_POLL_S = 0.02  # the NE-1000 reports nothing by itself in basic mode: it is polled


def stop_now(pump: NE1000, bridge: TransducerBridge) -> None:
    """STP to the OS, then INTERLOCK to the OS; each tried even if the other fails."""
    with contextlib.suppress(PumpError):
        pump.stop_nowait()
    with contextlib.suppress(BridgeError):
        bridge.assert_interlock_nowait()


async def arm(
    pump: NE1000, bridge: TransducerBridge, config: ControllerConfig, limit_mmhg: float
) -> None:
    await pump.enable_safe_mode(config.safe_timeout_s)
    await bridge.arm_watchdog(config.bridge_watchdog_ms)
    await bridge.set_trip_limit(limit_mmhg, config.trip_consecutive)


async def disarm(pump: NE1000, bridge: TransducerBridge) -> None:
    with contextlib.suppress(PumpError):
        await pump.disable_safe_mode()
    with contextlib.suppress(BridgeError):
        await bridge.disarm_watchdog()


async def program_fill(pump: NE1000, injection: Injection, remaining_ml: float) -> None:
    await pump.set_diameter_mm(injection.path.syringe.inner_diameter_mm)
    await pump.set_direction(Direction.INFUSE)
    await pump.set_rate_ml_min(injection.request.rate_ml_min)
    await pump.set_volume_ml(max(remaining_ml, MIN_FILL_ML))
    if injection.fill_delivered_ml == 0.0:
        await pump.clear_dispensed(Direction.INFUSE)


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


async def relieve(
    pump: NE1000,
    bridge: TransducerBridge,
    supervisor: Supervisor,
    config: ControllerConfig,
    injection: Injection,
) -> dict[str, Any]:
    """Withdraw the volume the blockage stored above the line's steady level, bounded.

    Momentary reverse only: the pump's own volume target stops it after at most
    ``relief_max_ul``; then infusion direction, interlock and trip limit are restored.
    """
    line = supervisor.line
    before = supervisor.last_pressure_mmhg
    steady = line.level if line.level > line.p_rest else line.p_rest
    volume_ml = min(line.c * max(0.0, before - steady), config.relief_max_ul / 1000.0)
    if volume_ml < 0.002:
        return {"withdrawn_ul": 0.0, "why": "stored pressure already small"}
    try:
        await bridge.clear_trip_limit()
        await bridge.release_interlock()
    except BridgeError as exc:
        return {"withdrawn_ul": 0.0, "why": f"interlock held by the bridge: {exc}"}
    withdrawn_ml = 0.0
    try:
        withdrawn_ml = await _withdraw(pump, volume_ml, config.relief_rate_ml_min)
    finally:
        with contextlib.suppress(PumpError):
            await pump.set_direction(Direction.INFUSE)
        with contextlib.suppress(BridgeError):
            await bridge.assert_interlock()
            await bridge.set_trip_limit(
                injection.checked.pressure_limit_mmhg, config.trip_consecutive
            )
    return {
        "withdrawn_ul": round(withdrawn_ml * 1e3, 1),
        "pressure_before_mmhg": round(before, 1),
        "pressure_after_mmhg": round(supervisor.last_pressure_mmhg, 1),
    }


async def _withdraw(pump: NE1000, volume_ml: float, rate_ml_min: float) -> float:
    await pump.stop()  # a second STP clears the stopped infusion's program
    _, withdrawn_before = await pump.dispensed_ml()
    await pump.set_direction(Direction.WITHDRAW)
    await pump.set_rate_ml_min(rate_ml_min)
    await pump.set_volume_ml(volume_ml)
    await pump.run()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60.0 * volume_ml / rate_ml_min + 2.0):
            while True:  # the pump's own volume target stops it; the host only watches
                if not (await pump.status()).moving:
                    break
                await asyncio.sleep(PUMP_POLL_S)
    await pump.stop()
    return (await pump.dispensed_ml())[1] - withdrawn_before


async def recover_interrupted(recorder: Recorder, pump: NE1000) -> list[str]:
    """Injections a crash left running or paused become ``interrupted``, reconciled with DIS."""
    rows = await recorder.read(queries.injections_in_states, ("running", "paused"))
    if not rows:
        return []
    try:
        dispensed_ml = (await pump.dispensed_ml())[0]
    except PumpError:
        dispensed_ml = float("nan")
    for row in rows:
        recorded = row["delivered_ml"] or 0.0
        reconciled = recorded if math.isnan(dispensed_ml) else max(recorded, dispensed_ml)
        update = dict(row)
        update.update(state="interrupted", ended_utc=utc_now(), delivered_ml=reconciled)
        await recorder.injection(update)
        await recorder.event(
            row["id"],
            "interrupted",
            {"recorded_ml": recorded, "pump_dis_ml": dispensed_ml, "delivered_ml": reconciled},
            now_s(),
        )
    return [row["id"] for row in rows]
