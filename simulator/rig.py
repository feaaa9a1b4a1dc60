"""A hardware-in-the-loop rig: pump and bridge emulators on ptys, one plant, scripted faults.

The plant is the pump's ``PlungerHook`` and the bridge's ``PressureSource``; the
bridge's interlock drives the pump's external stop input; faults fire from the
plant's own clock (time since start, time since the pump first moved, or
delivered volume). What really happened is in ``rig.truth``.
"""

from __future__ import annotations

import asyncio
import linecache
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulator.bridge_emulator import BridgeEmulator
from simulator.faults import FaultScheduler, FaultTargets
from simulator.ne1000_emulator import NE1000Emulator
from simulator.plant.model import Plant
from simulator.plant.truth import FaultOnset, GroundTruth
from simulator.scenario import Scenario

BOUNDED_TRUTH_ROWS = 120_000  # two minutes at 1 kHz when nobody asked for an export


class SimRig:
    def __init__(
        self,
        scenario: Scenario,
        pump_link: str | Path,
        bridge_link: str | Path,
        *,
        pump_address: int = 0,
        ground_truth_path: Path | None = None,
        truth_every_s: float = 0.0,
    ) -> None:
        self.scenario = scenario
        # device paths for ptys, or memory:// names (kept as strings: a Path would fold //)
        self.pump_link, self.bridge_link = str(pump_link), str(bridge_link)
        self.pump_address = pump_address
        self.ground_truth_path = ground_truth_path
        self.truth_every_s = truth_every_s  # 0: every plant step (see ``Plant``)
        self._plant: Plant | None = None
        self._pump: NE1000Emulator | None = None
        self._bridge: BridgeEmulator | None = None
        self._faults: FaultScheduler | None = None
        self._progress = asyncio.Event()
        self._noise_handles: set[asyncio.TimerHandle] = set()
        self._situations: list[Callable[[], str]] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        plant = self.scenario.build_plant(t0_s=loop.time(), truth_every_s=self.truth_every_s)
        if self.ground_truth_path is None:
            plant.truth.max_rows = BOUNDED_TRUTH_ROWS
        transducer = self.scenario.transducer.model()
        pump = NE1000Emulator(self.pump_link, address=self.pump_address, plant=plant)
        bridge = BridgeEmulator(
            self.bridge_link,
            source=plant,
            transducer=transducer,
            on_interlock=pump.external_stop,
            seed=self.scenario.seed,
        )
        plant.pump = pump.model
        targets = FaultTargets(plant, transducer, bridge=bridge, pump=pump, defer=loop.call_soon)
        self._faults = FaultScheduler(list(self.scenario.faults), targets)
        plant.on_advanced = self._advanced
        self._plant, self._pump, self._bridge = plant, pump, bridge
        await pump.start()
        await bridge.start()
        self._start_link_noise()

    def _start_link_noise(self) -> None:
        """The scenario's ordinary line noise: a reply latency, and garbage bursts at random
        (Poisson) times on either link, for the whole run (not faults: no onsets)."""
        links = self.scenario.links
        self.pump.faults.answer_late(links.pump_reply_delay_s)
        rng = random.Random(self.scenario.seed + 4_099)
        for rate_per_s, write in (
            (links.bridge_garbage_per_s, self.bridge.faults.inject_garbage),
            (links.pump_garbage_per_s, self.pump.faults.inject_garbage),
        ):
            if rate_per_s > 0:
                self._burst_later(rng, rate_per_s, write, links.burst_bytes)

    def _burst_later(
        self, rng: random.Random, rate_per_s: float, write: Callable[[int], None], n: int
    ) -> None:
        def burst() -> None:
            self._noise_handles.discard(handle)
            write(n)
            self._burst_later(rng, rate_per_s, write, n)

        loop = asyncio.get_running_loop()
        handle = loop.call_later(rng.expovariate(rate_per_s), burst)
        self._noise_handles.add(handle)

    async def stop(self) -> None:
        for handle in self._noise_handles:
            handle.cancel()
        self._noise_handles.clear()
        if self._bridge is not None:
            await self._bridge.stop()
        if self._pump is not None:
            await self._pump.stop()
        if self.ground_truth_path is not None and self._plant is not None:
            await asyncio.to_thread(self._plant.truth.save, self.ground_truth_path)

    async def __aenter__(self) -> SimRig:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ for the test
    @property
    def pump_port(self) -> str:
        return str(self.pump_link)

    @property
    def bridge_port(self) -> str:
        return str(self.bridge_link)

    @property
    def plant(self) -> Plant:
        assert self._plant is not None, "rig not started"
        return self._plant

    @property
    def pump(self) -> NE1000Emulator:
        assert self._pump is not None, "rig not started"
        return self._pump

    @property
    def bridge(self) -> BridgeEmulator:
        assert self._bridge is not None, "rig not started"
        return self._bridge

    @property
    def truth(self) -> GroundTruth:
        return self.plant.truth

    def inject(self, kind: str, **params: Any) -> FaultOnset:
        """Fire a fault now; returns its onset as recorded in the ground truth."""
        assert self._faults is not None, "rig not started"
        self.catch_up()
        self._faults.inject(kind, **params)
        return self.truth.onsets[-1]

    def _advanced(self, plant: Plant) -> None:
        assert self._faults is not None
        self._faults.check(plant)
        self._progress.set()

    async def until(self, done: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Wait until ``done()`` holds, re-checked each time the plant moves (no polling).

        On timeout a ``TimeoutError`` that names the condition (its source line) and where
        the rig and whatever watches it stood, so a failure says what it waited for."""
        try:
            async with asyncio.timeout(timeout_s):
                while not done():
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            raise TimeoutError(
                f"not so within {timeout_s} s: {_condition_text(done)}; {self.situation()}"
            ) from None

    def add_situation(self, describe: Callable[[], str]) -> Callable[[], None]:
        """Add what a timed-out ``until`` should also say (a controller's alarm and state);
        returns the function that removes it."""
        self._situations.append(describe)
        return lambda: self._situations.remove(describe)

    def situation(self) -> str:
        """The rig now: plant time, line and tip pressure, delivered volume, the pump, the
        faults fired, and each added description."""
        if self._plant is None or self._pump is None:
            return "rig not started"
        plant, pump = self._plant, self._pump.model
        parts = [
            f"rig at t={plant.t_s:.3f} s: line {plant.p_line:.1f} mmHg, tip "
            f"{plant.p_tip:.1f} mmHg, delivered {plant.delivered_ml * 1000:.1f} uL, pump "
            f"{'moving' if pump.status.moving else 'still'}"
            f"{', safe mode' if pump.safe_mode else ''}, faults "
            f"{[o.kind for o in self.truth.onsets] or 'none'}"
        ]
        for describe in self._situations:
            try:
                parts.append(describe())
            except Exception as exc:  # a description must not hide the timeout itself
                parts.append(f"(description failed: {exc!r})")
        return "; ".join(parts)

    async def wait_for_onset(self, kind: str, timeout_s: float = 10.0) -> FaultOnset:
        await self.until(lambda: self.onset(kind) is not None, timeout_s)
        onset = self.onset(kind)
        assert onset is not None
        return onset

    def catch_up(self) -> None:
        """Bring pump and plant to the present (they otherwise move when sampled)."""
        now = asyncio.get_running_loop().time()
        self.pump.model.advance(now)
        self.plant.advance_to(now, 0.0)

    def true_tip_pressure_mmhg(self) -> float:
        self.catch_up()
        return self.plant.p_tip

    def true_line_pressure_mmhg(self) -> float:
        self.catch_up()
        return self.plant.p_line

    def true_delivered_ml(self) -> float:
        self.catch_up()
        return self.plant.delivered_ml

    def onset(self, kind: str) -> FaultOnset | None:
        """When a fault began (scenario seconds; ``truth.t0_mono_s`` + that = host time)."""
        return self.truth.onset_of(kind)


def _condition_text(done: Callable[[], bool]) -> str:
    """The source line that wrote the condition, with its file and line, or its name."""
    code = getattr(done, "__code__", None)
    if code is None:
        return repr(done)
    line = linecache.getline(code.co_filename, code.co_firstlineno).strip()
    where = f"{Path(code.co_filename).name}:{code.co_firstlineno}"
    return f"{line} ({where})" if line else where
