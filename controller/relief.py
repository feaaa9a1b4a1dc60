"""Relief after a blockage: withdraw what the line stored, watching the pressure fall.

When an occlusion (or the absolute limit) stops the pump, the line holds C x (P - rest) of
drug under pressure, released as a bolus when the blockage clears (GIP 1.10.7: at most
0.5 mL; pumps that back off keep it under 0.3 mL). A momentary reverse is allowed to
release it (GIP 1.10.6), continuous reverse delivery never (GIP 1.8.1). So: the pump
withdraws at a brisk rate, bounded by the pump's own volume target (the stored volume
estimated with the measured compliance, at most ``relief_max_ul``), and a listener on the
pressure stream sends STP the moment the line is back within a few mmHg of its rest,
so nothing is drawn back from the tissue. If the transducer goes quiet while it withdraws,
the withdrawal stops at once (it is never continued unwatched). The withdrawal is
recorded, and the delivered volume is the net plunger travel.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drivers.ne1000 import NE1000
from drivers.ne1000_protocol import Direction, PumpError
from drivers.transducer import TransducerBridge
from drivers.transducer_link import BridgeError

if TYPE_CHECKING:
    from controller.config import ControllerConfig
    from controller.safety.supervisor import Supervisor

TARGET_ABOVE_REST_MMHG = 2.0
ESTIMATE_MARGIN = 2.0  # the volume target: this much more than the estimate, for a line
# softer than the start-up fit said (30 % under in a real-time run); the pressure listener,
# not this bound, ends a normal relief
MIN_RELIEF_ML = 0.002
POLL_S = 0.02  # the pump's own status while it withdraws (the pressure listener stops it)
BLOCK_SAMPLES = 10


@dataclass(frozen=True)
class ReliefPlan:
    target_mmhg: float
    stored_ml: float  # what the line holds above the target, by the measured compliance
    volume_ml: float  # the pump's volume target: the most it may withdraw
    rate_ml_min: float


def plan_relief(
    supervisor: Supervisor, config: ControllerConfig, max_rate_ml_min: float
) -> ReliefPlan | None:
    """None if the line holds too little to be worth a reverse."""
    line = supervisor.line
    reference = supervisor.reference
    rest = reference.p_rest if reference is not None else line.p_rest
    target = rest + TARGET_ABOVE_REST_MMHG
    excess = supervisor.conditioner.filtered - target
    stored_ml = supervisor.compliance.value * max(0.0, excess)
    if stored_ml < MIN_RELIEF_ML:
        return None
    volume_ml = min(ESTIMATE_MARGIN * stored_ml, config.relief_max_ul / 1000.0)
    rate = min(config.relief_rate_ml_min, 0.8 * max_rate_ml_min)
    return ReliefPlan(target, stored_ml, volume_ml, rate)


async def relieve(
    pump: NE1000,
    bridge: TransducerBridge,
    supervisor: Supervisor,
    config: ControllerConfig,
    limit_mmhg: float,
) -> dict[str, Any]:
    """Withdraw the stored volume (see the module); interlock and trip limit are restored."""
    _, max_rate = await pump.rate_limits_ml_min()
    plan = plan_relief(supervisor, config, max_rate)
    before = supervisor.conditioner.filtered
    if plan is None:
        return {"withdrawn_ul": 0.0, "why": "stored pressure already small"}
    try:
        await bridge.clear_trip_limit()
        await bridge.release_interlock()
    except BridgeError as exc:
        return {"withdrawn_ul": 0.0, "why": f"interlock held by the bridge: {exc}"}
    withdrawn_ml, after_mmhg = 0.0, float("nan")
    try:
        withdrawn_ml, after_mmhg = await _withdraw(pump, bridge, plan)
    finally:
        with contextlib.suppress(PumpError):
            await pump.set_direction(Direction.INFUSE)
        with contextlib.suppress(BridgeError):
            await bridge.assert_interlock()
            await bridge.set_trip_limit(limit_mmhg, config.trip_consecutive)
    return {
        "withdrawn_ul": round(withdrawn_ml * 1e3, 1),
        "estimated_stored_ul": round(plan.stored_ml * 1e3, 1),
        "target_mmhg": round(plan.target_mmhg, 1),
        "pressure_before_mmhg": round(before, 1),
        "pressure_after_mmhg": None if math.isnan(after_mmhg) else round(after_mmhg, 1),
    }


class _StopAtTarget:
    """A sample listener for the withdrawal: STP once a block's median reaches the target;
    then, once asked (the pump confirmed stopped), the next block's median is the pressure
    the relief left (the spike-proof filter lags a fast fall by a quarter second)."""

    def __init__(self, pump: NE1000, target_mmhg: float) -> None:
        self.pump, self.target = pump, target_mmhg
        self.reached = asyncio.Event()
        self.settled = asyncio.Event()
        self.after_mmhg = float("nan")
        self._measuring = False
        self._block: list[float] = []

    def measure_after(self) -> None:
        self._block, self._measuring = [], True

    def __call__(self, index: int, t: float, pressure_mmhg: float, raw: int) -> None:
        self._block.append(pressure_mmhg)
        if len(self._block) < BLOCK_SAMPLES:
            return
        self._block.sort()
        median = self._block[BLOCK_SAMPLES // 2]
        self._block = []
        if self._measuring and not self.settled.is_set():
            self.after_mmhg = median
            self.settled.set()
        elif median <= self.target and not self.reached.is_set():
            with contextlib.suppress(PumpError):
                self.pump.stop_nowait()
            self.reached.set()


async def _withdraw(
    pump: NE1000, bridge: TransducerBridge, plan: ReliefPlan
) -> tuple[float, float]:
    """Withdraw until the target (or the volume bound); the volume withdrawn and the
    pressure a block after the pump confirmed its stop."""
    await pump.stop()  # a second STP clears the stopped infusion's program
    _, withdrawn_before = await pump.dispensed_ml()
    await pump.set_direction(Direction.WITHDRAW)
    await pump.set_rate_ml_min(plan.rate_ml_min)
    await pump.set_volume_ml(plan.volume_ml)
    watch = _StopAtTarget(pump, plan.target_mmhg)
    remove = bridge.add_sample_listener(watch)
    try:
        await pump.run()  # a withdrawal: allowed while infusing is inhibited
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60.0 * plan.volume_ml / plan.rate_ml_min + 2.0):
                while not watch.reached.is_set():  # the target or the pump's volume ends it
                    if not bridge.link_ok:  # never withdraw unwatched: the pressure is unknown
                        break
                    if not (await pump.status()).moving:
                        break
                    await asyncio.sleep(POLL_S)
        await pump.stop()
        watch.measure_after()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.2):
                await watch.settled.wait()
    finally:
        remove()
        await pump.stop()
    return (await pump.dispensed_ml())[1] - withdrawn_before, watch.after_mmhg
