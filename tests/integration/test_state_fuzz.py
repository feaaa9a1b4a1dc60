"""Hypothesis drives the real controller (real drivers, emulated devices) through random
sequences of operator actions and device faults, faults landing between steps and inside
the start's own awaited pump commands; after every step the safety invariants must hold:
once a verdict latched the pump has stopped (within the 50 ms each step waits) and stays
stopped until acknowledged; no infusion without a zero or a running injection; never more
delivered than was asked for; every task the controller started is alive or has ended and
been accounted for (an exception in one is a latched ``software_fault``).

Each sequence runs on the virtual clock (``simulator.virtual_clock``) with the rig on
memory ports: the same controller, drivers and emulators, its timers and waits on the
loop's time, so a sequence costs only its CPU, the product's 20 ms staleness rule holds
whatever else the machine runs, and the same sequence gives the same run (hypothesis can
shrink a failure and replay it). The ptys and the wall clock are the subject of the
driver, chaos and race tests.

``make test`` runs a bounded number of sequences; ``make soak`` runs many more
(``INJECTCTL_FUZZ_EXAMPLES``). Figures in ``docs/reliability.md``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bench.hil import settled, vented
from controller.calibration.transducer import CalibrationError
from controller.controller import Controller
from controller.injection import State, StateError
from drivers.ne1000_protocol import PumpError
from drivers.transducer_link import BridgeError
from simulator.rig import SimRig
from tests.support.controller_rig import fault_inside, on_virtual_rig, request, wired_controller
from tests.support.timing import PRODUCT_STALENESS_S

# no wall-clock deadline: runs beside the unit tests (the virtual clock cannot be starved)
pytestmark = pytest.mark.virtual_clock
SILENCE_S = 3 * PRODUCT_STALENESS_S  # a bridge silence the 20 ms rule sees as link_lost

ACTIONS = (
    "create",
    "zero",
    "start",
    "pause",
    "resume",
    "stop",
    "acknowledge",
    "occlusion",
    "leak",
    "bridge_silence",
    "pump_stall",
    "run_a_while",
    "settle",
)
# a start with a fault landing inside one of its awaited pump commands
AWAITED = ("enable_safe_mode", "set_rate_ml_min", "set_volume_ml", "clear_dispensed", "run")
FAULTED_STARTS = tuple(f"start@{m}:{f}" for m in AWAITED for f in ("link_lost", "garbled"))
EXAMPLES = int(os.environ.get("INJECTCTL_FUZZ_EXAMPLES", "20"))
REFUSALS = (StateError, CalibrationError, BridgeError, PumpError, KeyError)
OVER_UL = 5.0


async def _act(action: str, rig: SimRig, controller: Controller) -> None:
    created = list(controller.injections.values())
    injection = created[-1] if created else None
    if action == "create":
        controller.create_injection(request(volume_ml=0.5, rate_ml_min=3.0))
    elif action == "zero":
        rig.plant.stopcock_to_air = True
        try:
            await vented(controller)
            await controller.zero_transducer(samples=200)
        finally:
            rig.plant.stopcock_to_air = False
    elif action == "acknowledge":
        await controller.acknowledge()
    elif action in ("start", "pause", "resume", "stop"):
        if injection is None:
            raise KeyError("nothing created yet")
        method = getattr(controller, f"{action}_injection")
        await method(injection.id)
    elif action.startswith("start@"):
        if injection is None:
            raise KeyError("nothing created yet")
        method, fault = action.removeprefix("start@").split(":")
        with fault_inside(controller, method, _fault(fault, rig, controller)):
            await controller.start_injection(injection.id)
    elif action == "settle":
        with contextlib.suppress(TimeoutError):
            await settled(controller, timeout_s=20)
    elif action == "run_a_while":
        for _ in range(10):
            await _settle(rig)
    elif action == "bridge_silence":
        rig.inject(action, duration_s=SILENCE_S)
    else:
        rig.inject(action)


def _fault(kind: str, rig: SimRig, controller: Controller) -> Callable[[], Awaitable[None]]:
    async def link_lost() -> None:
        rig.inject("bridge_silence", duration_s=SILENCE_S)
        with contextlib.suppress(TimeoutError):
            await rig.until(lambda: controller.alarm is not None, timeout_s=1)

    async def garbled() -> None:
        rig.pump.faults.corrupt_next_reply(3)  # every attempt of the command

    return link_lost if kind == "link_lost" else garbled


def _check_tasks(controller: Controller) -> None:
    """Every task the controller owns is alive (an ended one leaves the set at once, and
    if it ended by an exception a software_fault is latched); each running injection has
    its pump watch alive."""
    for task in controller.owned_tasks():
        assert not task.done(), f"ended but not accounted for: {task!r}"
    for injection in controller.injections.values():
        if injection.state is State.RUNNING:
            watch = controller.watch_of(injection.id)
            assert watch is not None and not watch.done(), f"{injection.id} runs unwatched"


async def _settle(rig: SimRig) -> None:
    """50 ms of the rig's time: an STP written on a verdict has reached the pump by then."""
    t0 = rig.plant.t_s
    await rig.until(lambda: rig.plant.t_s > t0 + 0.05)


def _check(rig: SimRig, controller: Controller, started_ml: float) -> None:
    model = rig.pump.model
    infusing = model.status.moving and model.settings.direction.value == "INF"
    if controller.alarm is not None:
        assert not infusing, f"infusing with {controller.alarm.kind} latched"
    if infusing:
        running = [i for i in controller.injections.values() if i.state is State.RUNNING]
        assert running, "the pump infuses but no injection is running"
        assert controller.zeroed_at_mono_s is not None, "infusing without a zero"
    delivered_ul = rig.true_delivered_ml() * 1e3
    assert delivered_ul <= started_ml * 1e3 + OVER_UL, (delivered_ul, started_ml)


@pytest.mark.slow
@pytest.mark.timeout(60 + 10 * EXAMPLES)  # the whole run, not each sequence (about 2 s each)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(st.sampled_from(ACTIONS + FAULTED_STARTS), min_size=6, max_size=14).map(
        lambda steps: ["zero", "settle", "create", "start", *steps]  # most start from a run
    )
)
def test_no_sequence_of_actions_and_faults_reaches_an_unsafe_state(
    tmp_path_factory: pytest.TempPathFactory, steps: list[str]
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    on_virtual_rig(lambda rig: _run_sequence(rig, folder, steps))


async def _run_sequence(rig: SimRig, folder: Path, steps: list[str]) -> None:
    """One sequence on a fresh rig and controller, the invariants checked after each step."""
    async with wired_controller(
        rig.pump_port, rig.bridge_port, folder / "db.sqlite", staleness_s=PRODUCT_STALENESS_S
    ) as controller:
        for step in steps:
            with contextlib.suppress(*REFUSALS):  # refusals are fine; unsafe states are not
                await _act(step, rig, controller)
            await _settle(rig)
            started_ml = sum(
                i.request.volume_ml
                for i in controller.injections.values()
                if i.state is not State.READY
            )
            _check(rig, controller, started_ml)
            _check_tasks(controller)
            reached = sorted({str(i.state) for i in controller.injections.values()})
            event(f"states reached: {reached}")
