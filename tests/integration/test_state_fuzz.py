"""Hypothesis drives the real controller (real drivers, emulated devices) through random
sequences of operator actions and device faults; after every step the safety invariants
must hold: no infusion with an alarm latched, none without a zero, never more delivered
than was asked for."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from controller.calibration.transducer import CalibrationError
from controller.controller import Controller
from controller.injection import State, StateError
from drivers.ne1000_protocol import PumpError
from drivers.transducer_link import BridgeError
from simulator.rig import SimRig
from simulator.scenario import load_scenario
from tests.support.controller_rig import request, wired_controller

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
)
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
    elif action == "run_a_while":
        for _ in range(10):
            await _settle(rig)
    elif action == "bridge_silence":
        rig.inject(action, duration_s=0.1)
    else:
        rig.inject(action)


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
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(st.sampled_from(ACTIONS), min_size=6, max_size=14).map(
        lambda steps: ["zero", "create", "start", *steps]  # most sequences start from a run
    )
)
async def test_no_sequence_of_actions_and_faults_reaches_an_unsafe_state(
    tmp_path_factory: pytest.TempPathFactory, steps: list[str]
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    async with SimRig(load_scenario("normal-liver-saline-1ml"), folder / "p", folder / "b") as rig:
        db = folder / "db.sqlite"
        async with wired_controller(rig.pump_port, rig.bridge_port, db) as controller:
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
                reached = sorted({str(i.state) for i in controller.injections.values()})
                event(f"states reached: {reached}")
