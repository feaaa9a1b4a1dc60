"""pytest fixtures for hardware-in-the-loop tests against the built-in simulator.

Installed with injectctl as the pytest plugin ``injectctl-sim`` (entry point
``pytest11``), so any test suite in the same environment can use:

- ``sim_rig``: a running :class:`~simulator.rig.SimRig` (pump and bridge on ptys) for
  the scenario named by ``@pytest.mark.scenario("name-or-path")`` (default
  ``normal-liver-saline-1ml``). The test gets ``rig.pump_port`` and ``rig.bridge_port``
  to open with its own drivers, ``rig.inject(kind, **params)`` for faults,
  ``rig.truth`` / ``rig.true_tip_pressure_mmhg()`` / ``rig.true_delivered_ml()`` /
  ``rig.onset(kind)`` for ground truth.
- ``sim_rig_factory``: ``async with sim_rig_factory("fault-leak-luer",
  ground_truth=path) as rig:`` for several rigs or an exported truth.
- ``offline_run``: ``offline_run("name")`` runs a scenario faster than real time and
  returns its :class:`~simulator.offline.OfflineResult`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from simulator.offline import OfflineResult, run_offline
from simulator.rig import SimRig
from simulator.scenario import load_scenario

DEFAULT_SCENARIO = "normal-liver-saline-1ml"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "scenario(name_or_path): the simulator scenario the sim_rig fixture runs"
    )


@pytest.fixture
def sim_rig_factory(tmp_path: Path) -> Callable[..., SimRig]:
    count = [0]

    def make(
        scenario: str | Path = DEFAULT_SCENARIO, *, ground_truth: Path | None = None
    ) -> SimRig:
        count[0] += 1
        folder = tmp_path / f"rig{count[0]}"
        folder.mkdir()
        return SimRig(
            load_scenario(scenario),
            folder / "pump",
            folder / "bridge",
            ground_truth_path=ground_truth,
        )

    return make


@pytest_asyncio.fixture
async def sim_rig(
    request: pytest.FixtureRequest, sim_rig_factory: Callable[..., SimRig]
) -> AsyncIterator[SimRig]:
    marker = request.node.get_closest_marker("scenario")
    scenario = marker.args[0] if marker is not None else DEFAULT_SCENARIO
    async with sim_rig_factory(scenario) as rig:
        yield rig


@pytest.fixture
def offline_run() -> Callable[..., OfflineResult]:
    def run(scenario: str | Path, duration_s: float | None = None) -> OfflineResult:
        return run_offline(load_scenario(scenario), duration_s=duration_s)

    return run
