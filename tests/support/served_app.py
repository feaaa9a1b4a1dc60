"""``served``: the real app under uvicorn on the simulator, with an httpx client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from bench.hil import situation
from controller.cli.sim_cmd import DEFAULT_SCENARIO
from controller.cli.simulation import BuiltInSimulator
from controller.records.people import Role, token_digest
from dashboard.app import create_app
from dashboard.runtime import Runtime, ServeSettings
from dashboard.server import Server
from tests.support.controller_rig import sampled_until
from tests.support.timing import SHARED_STALENESS_S, limits_for

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}  # the first operator (INJECTCTL_TOKEN)
# an automation person every served app has: what a test rig uses to calibrate (an
# operator may not)
RIG_TOKEN = "rig-token-9876543210"
RIG_AUTH = {"Authorization": f"Bearer {RIG_TOKEN}"}
BODY = {
    "volume_ml": 0.5,
    "rate_ml_min": 5.0,
    "syringe": "bd-luerlok-5ml",
    "needle": "22g-coaxial-150mm",
    "target": "liver segment VI",
    "checklist_confirmed": True,
}


def sim_settings(db: Path, **more: Any) -> ServeSettings:
    """``serve --sim``'s settings, as the CLI wires them, with the test token; at a
    staleness limit wider than the product's, the shared watchdog too (``timing``)."""
    if "staleness_s" in more:
        config = limits_for(more["staleness_s"], more.pop("config", None))
        if config is not None:
            more["config"] = config
    return ServeSettings(db=db, token=TOKEN, simulation=BuiltInSimulator(DEFAULT_SCENARIO), **more)


def simulator(runtime: Runtime) -> BuiltInSimulator:
    """The runtime's simulator, as the CLI built it (for faults and the true state)."""
    assert isinstance(runtime.sim, BuiltInSimulator), "not serving the built-in simulator"
    return runtime.sim


class Served:
    def __init__(self, base: str, runtime: Runtime) -> None:
        self.base, self.runtime = base, runtime
        self.http = httpx.AsyncClient(base_url=base, timeout=10)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    # about the API, not the 20 ms rule: the shared limit (tests/support/timing.py)
    settings = sim_settings(tmp_path / "db.sqlite", staleness_s=SHARED_STALENESS_S)
    async with serving(settings) as running:
        yield running


@contextlib.asynccontextmanager
async def serving(settings: ServeSettings) -> AsyncIterator[Served]:
    """The app with these settings under uvicorn on a free port, until the block ends."""
    runtime = Runtime(settings)
    app = create_app(settings, runtime)
    server = Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        await server.ready.wait()
    await runtime.recorder.user("rig", str(Role.AUTOMATION), token_digest(RIG_TOKEN))
    await runtime.people.load()  # at once (an unknown token re-reads at most once a second)
    served = Served(f"http://127.0.0.1:{server.port}", runtime)
    try:
        yield served
    finally:
        await served.http.aclose()
        server.should_exit = True
        await task


async def until(runtime: Runtime, done: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait until ``done()`` holds, re-checked on every transducer sample (no polling)."""
    assert runtime.bridge is not None
    try:
        await sampled_until(runtime.bridge, done, timeout_s)
    except TimeoutError:
        raise AssertionError(f"not so within {timeout_s} s: {_situation(runtime)}") from None


def _situation(runtime: Runtime) -> str:
    """What a failed wait needs to say: the alarm, the injection's state, the line's."""
    controller = runtime.controller
    return "no controller" if controller is None else situation(controller)


async def start_running(served: Served, **body: object) -> str:
    """Zero, plan, wait for the line to settle and start an injection through the API."""
    http = served.http
    assert (await http.post("/api/v1/transducer/zero", headers=AUTH)).is_success
    created = await http.post("/api/v1/injections", json={**BODY, **body}, headers=AUTH)
    assert created.status_code == 201, created.text
    injection_id: str = created.json()["id"]
    await line_settled(served)
    assert (await http.post(f"/api/v1/injections/{injection_id}/start", headers=AUTH)).is_success
    return injection_id


async def line_settled(served: Served, timeout_s: float = 60.0) -> None:
    """Until the state says the line is at rest (as the operator's Start waits for)."""
    controller = served.runtime.controller
    assert controller is not None
    await until(served.runtime, lambda: controller.supervisor.rest_status().settled, timeout_s)


async def spawn_serve(db: Path, *extra: str, **pipes: int) -> asyncio.subprocess.Process:
    """``injectctl serve --sim`` in its own process, with the test token in its environment."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.cli",
        "serve",
        "--sim",
        "--port",
        "0",
        "--db",
        str(db),
        *extra,
        env={**os.environ, "INJECTCTL_TOKEN": TOKEN},
        **pipes,  # type: ignore[arg-type]
    )
