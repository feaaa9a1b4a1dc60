"""Issue 18's races, each through the real drivers on the emulated devices with the fault
landing at the awaited step it names: a trip during a start, an acknowledge while the last
stop is still handled, a pump that answers garbage, a STOP the pump does not confirm, a
start that fails half-way, a crash in the second fill, an alarm while idle.

Each runs on the virtual clock (``simulator.virtual_clock``), the rig on memory ports: the
subject is the order of awaited steps, which a run on the loop's time repeats exactly
whatever else the machine does, so the bridge is held to the product's 20 ms staleness
rule. On the wall clock, beside another real-time test, the acknowledge test's line twice
did not reach ``monitoring`` within 20 s (session 31 at -n 3, session 33's fresh clone at
-n 2; not traced, and ``SimRig.until`` now says where the rig and the controller stood).
The ptys and the wall clock stay the subject of the driver and chaos tests."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bench.hil import settled
from controller.controller import Controller, StartRefused
from controller.injection import State, StateError
from controller.records.queries import read_rows
from controller.records.recorder import Recorder
from controller.recovery import recover_interrupted
from drivers.transducer_link import InterlockReleaseRefused
from simulator.rig import SimRig
from tests.support.controller_rig import (
    controller_on_virtual,
    fault_inside,
    infusing,
    on_virtual_rig,
    request,
)
from tests.support.timing import PRODUCT_STALENESS_S

pytestmark = pytest.mark.virtual_clock  # no wall-clock deadline: runs beside other tests
LINK_LOST_SILENCE_S = 3 * PRODUCT_STALENESS_S  # a bridge silence the 20 ms rule sees


def link_lost_now(rig: SimRig, controller: Controller) -> Callable[[], Awaitable[None]]:
    """The bridge goes quiet past the 20 ms rule; returns once link_lost is latched."""

    async def fault() -> None:
        rig.inject("bridge_silence", duration_s=LINK_LOST_SILENCE_S)
        await rig.until(lambda: controller.alarm is not None, timeout_s=2)

    return fault


@pytest.mark.parametrize(
    ("method", "before"),
    [
        ("enable_safe_mode", False),
        ("set_volume_ml", False),
        ("set_rate_ml_min", False),
        ("run", True),
    ],
)
def test_a_trip_during_the_start_keeps_the_pump_from_running(
    tmp_path: Path, method: str, before: bool
) -> None:
    async def body(sim_rig: SimRig) -> None:
        async with controller_on_virtual(sim_rig, tmp_path / "db.sqlite") as controller:
            injection = controller.create_injection(request(1.0, 3.0))
            fault = link_lost_now(sim_rig, controller)
            with (
                fault_inside(controller, method, fault, before=before),
                pytest.raises(StartRefused, match=r"link_lost|the pump was stopped"),
            ):
                await controller.start_injection(injection.id)
            assert controller.alarm is not None and controller.alarm.kind == "link_lost"
            assert injection.state is State.ALARM
            assert not controller.supervisor.infusing  # the latched supervisor still watches
            t0 = sim_rig.plant.t_s
            await sim_rig.until(lambda: sim_rig.plant.t_s > t0 + 0.3)
            assert not sim_rig.pump.model.status.moving
            assert sim_rig.plant.delivered_ml < 0.001  # no RUN went out after the trip
            await sim_rig.until(lambda: not sim_rig.pump.model.safe_mode, timeout_s=5)

    on_virtual_rig(body)


def test_acknowledge_waits_for_the_last_stop_and_the_next_injection_keeps_its_watch(
    tmp_path: Path,
) -> None:
    async def body(sim_rig: SimRig) -> None:
        async with controller_on_virtual(sim_rig, tmp_path / "db.sqlite") as controller:
            first = controller.create_injection(request(2.0, 3.0))
            await controller.start_injection(first.id)
            await sim_rig.until(lambda: controller.supervisor.line.state == "monitoring", 20)
            sim_rig.inject("occlusion", duration_s=3.0)
            await sim_rig.until(lambda: controller.alarm is not None, timeout_s=5)
            assert controller.stop_path.busy  # confirming the stop, then the relief
            with pytest.raises(StateError, match="still being handled"):
                await controller.acknowledge()
            await sim_rig.until(lambda: not controller.stop_path.busy, timeout_s=10)
            await _acknowledge(sim_rig, controller)
            await settled(controller)
            second = controller.create_injection(request(0.5, 5.0))
            await controller.start_injection(second.id)
            # the first injection's finish is long done: nothing of it ends the second's watch
            await sim_rig.until(lambda: second.state is State.COMPLETED, timeout_s=30)
            assert controller.alarm is None
            assert second.delivered_ml == pytest.approx(0.5, abs=0.01)
            # disarmed by its own finish, which follows the state it reports
            await sim_rig.until(lambda: not sim_rig.pump.model.safe_mode, timeout_s=5)

    on_virtual_rig(body)


def test_a_pump_that_answers_garbage_is_a_fault_not_a_silent_watch(tmp_path: Path) -> None:
    async def body(sim_rig: SimRig) -> None:
        async with controller_on_virtual(sim_rig, tmp_path / "db.sqlite") as controller:
            injection = await infusing(controller, sim_rig)
            sim_rig.inject("pump_corrupt", count=40)  # more than the retries of any query
            await sim_rig.until(lambda: injection.state is State.ALARM, timeout_s=5)
            assert injection.alarm is not None
            assert injection.alarm.kind in ("pump_fault", "link_lost"), injection.alarm
            await sim_rig.until(lambda: not sim_rig.pump.model.status.moving, timeout_s=1)
            assert sim_rig.bridge.interlock

    on_virtual_rig(body)


def test_stop_on_a_pump_that_does_not_confirm_ends_with_the_interlock(tmp_path: Path) -> None:
    async def body(sim_rig: SimRig) -> None:
        async with controller_on_virtual(sim_rig, tmp_path / "db.sqlite") as controller:
            injection = await infusing(controller, sim_rig)
            sim_rig.pump.faults.go_silent()  # the cable cut: STP is never answered
            stopped = await controller.stop_injection(injection.id)  # no exception, no 500
            assert stopped.state is State.ALARM
            assert controller.alarm is not None and "did not confirm STP" in controller.alarm.detail
            await sim_rig.until(lambda: sim_rig.bridge.interlock, timeout_s=0.5)
            await sim_rig.until(lambda: not sim_rig.pump.model.status.moving, timeout_s=1)
            sim_rig.pump.faults.silent_until_s = 0.0

    on_virtual_rig(body)


def test_a_start_that_fails_half_way_leaves_nothing_armed_or_moving(tmp_path: Path) -> None:
    async def body(sim_rig: SimRig) -> None:
        async with controller_on_virtual(sim_rig, tmp_path / "db.sqlite") as controller:
            injection = controller.create_injection(request(1.0, 3.0))

            async def garbled() -> None:
                sim_rig.pump.faults.corrupt_next_reply(3)  # every attempt of this set

            with (
                fault_inside(controller, "set_rate_ml_min", garbled),
                pytest.raises(StartRefused, match="the start failed and the pump was stopped"),
            ):
                await controller.start_injection(injection.id)
            assert controller.alarm is not None and controller.alarm.kind == "pump_fault"
            assert injection.state is State.ALARM and not controller.supervisor.infusing
            await sim_rig.until(lambda: not sim_rig.pump.model.safe_mode, timeout_s=5)
            await sim_rig.until(lambda: not sim_rig.bridge.core.flags & 0x80, timeout_s=5)
            assert not sim_rig.pump.model.status.moving and sim_rig.plant.delivered_ml < 0.001

    on_virtual_rig(body)


def test_a_crash_in_the_second_fill_recovers_both_fills(tmp_path: Path) -> None:
    async def body(sim_rig: SimRig) -> None:
        db, snapshot = tmp_path / "db.sqlite", tmp_path / "at-the-crash.sqlite"
        async with controller_on_virtual(sim_rig, db) as controller:
            injection = controller.create_injection(request(0.6, 5.0, aliquots=2))
            await controller.start_injection(injection.id)
            await sim_rig.until(lambda: injection.waiting_for == "needle_position", timeout_s=30)
            await controller.resume_injection(injection.id)
            await sim_rig.until(lambda: sim_rig.plant.delivered_ml > 0.4, timeout_s=30)
            await controller.recorder.sync()
            await asyncio.to_thread(_copy_committed, db, snapshot)  # what a killed process left
            await controller.stop_injection(injection.id)  # as the watchdogs would stop it
            truth_ml = sim_rig.true_delivered_ml()
            recorder = Recorder(snapshot)
            await recorder.start()
            try:
                assert await recover_interrupted(recorder, controller.pump) == [injection.id]
                await recorder.sync()
                [row] = await recorder.read(read_rows, "SELECT state, delivered_ml FROM injections")
            finally:
                await recorder.close()
            assert row["state"] == "interrupted"
            assert row["delivered_ml"] == pytest.approx(truth_ml, abs=0.005)  # fill 1 + fill 2

    on_virtual_rig(body)


def test_an_alarm_while_idle_belongs_to_no_injection(tmp_path: Path) -> None:
    async def body(sim_rig: SimRig) -> None:
        async with controller_on_virtual(sim_rig, tmp_path / "db.sqlite") as controller:
            done = controller.create_injection(request(0.5, 5.0))
            await controller.start_injection(done.id)
            await sim_rig.until(lambda: done.state is State.COMPLETED, timeout_s=30)
            await sim_rig.until(lambda: done.events[-1]["kind"] == "completed")
            sim_rig.inject("bridge_silence", duration_s=LINK_LOST_SILENCE_S)
            await sim_rig.until(lambda: controller.alarm is not None, timeout_s=2)
            assert done.state is State.COMPLETED and done.alarm is None
            await controller.recorder.sync()
            rows = await controller.recorder.read(
                read_rows, "SELECT injection_id, kind FROM alarms"
            )
            assert [(r["injection_id"], r["kind"]) for r in rows] == [(None, "link_lost")]

    on_virtual_rig(body)


def test_nothing_reads_a_catalog_between_arming_and_run(tmp_path: Path) -> None:
    """Issue 18.13: catalog TOML was re-read on the loop between arming and RUN (a slow
    disk then delays the start with the watchdogs armed, and an edited file changes what
    was checked). The path is resolved once, at creation: the start opens no TOML."""

    async def body(sim_rig: SimRig) -> None:
        opened: list[str] = []
        watching = [False]

        def audit(event: str, args: tuple[Any, ...]) -> None:
            if watching[0] and event == "open" and str(args[0]).endswith(".toml"):
                opened.append(str(args[0]))

        sys.addaudithook(audit)  # for the life of the process; it only looks while watching
        async with controller_on_virtual(sim_rig, tmp_path / "db.sqlite") as controller:
            injection = controller.create_injection(request(0.5, 5.0))
            watching[0] = True
            try:
                await controller.start_injection(injection.id)
            finally:
                watching[0] = False
            assert opened == []
            await controller.stop_injection(injection.id)

    on_virtual_rig(body)


async def _acknowledge(rig: SimRig, controller: Controller) -> None:
    """Acknowledge once the bridge no longer sees the cause (the line back under the trip
    limit after the occlusion cleared)."""
    async with asyncio.timeout(10):
        while True:
            with contextlib.suppress(InterlockReleaseRefused):
                await controller.acknowledge()
                return
            await _rig_time_passes(rig, 0.1)


def _copy_committed(source: Path, target: Path) -> None:
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


async def _rig_time_passes(rig: SimRig, seconds: float) -> None:
    t0 = rig.plant.t_s
    await rig.until(lambda: rig.plant.t_s > t0 + seconds)
