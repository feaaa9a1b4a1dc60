"""The SimRig in its own process, as real devices would be.

Devices keep their own time whatever the host is doing. A simulator inside the server's
process does not: a garbage collection, a page load or a browser starting holds the
interpreter for tens of milliseconds, and the host rightly calls that a silent
transducer. In its own process (``spawn``: no forked event loop) the rig keeps real time,
so ``serve --sim`` runs with the same 20 ms staleness limit as on hardware.

The parent talks to it over a pipe with a few named requests (``REQUESTS``); the child
stops when asked or when the pipe closes (the parent died).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import multiprocessing
import multiprocessing.connection
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.tasks import cancel_and_wait
from simulator.rig import SimRig
from simulator.scenario import FAULT_KINDS, Scenario

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
DEVICE_RT_PRIORITY = 5  # low among real-time priorities; above every ordinary process
Connection = multiprocessing.connection.Connection


class RigProcessError(RuntimeError):
    pass


def _inject(rig: SimRig, kind: str, params: dict[str, float]) -> dict[str, Any]:
    onset = rig.inject(kind, **params)
    return {"kind": onset.kind, "t_s": onset.t_s, "delivered_ml": onset.delivered_ml}


def _stopcock(
    rig: SimRig, to: str | None = None, reference_mmhg: float | None = None
) -> dict[str, Any]:
    """Turn the stopcock (``to`` given) and say where it is: line, air or a manometer."""
    plant = rig.plant
    if to is not None:
        plant.stopcock_to_air = to == "air"
        plant.reference_mmhg = reference_mmhg if to == "reference" else None
    where = (
        "air" if plant.stopcock_to_air else "line" if plant.reference_mmhg is None else "reference"
    )
    return {"stopcock": where, "reference_mmhg": plant.reference_mmhg}


def _describe(rig: SimRig) -> dict[str, Any]:
    scenario = rig.scenario
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "fault_kinds": list(FAULT_KINDS),
        **_stopcock(rig),
    }


def _state(rig: SimRig) -> dict[str, Any]:
    """The true state of the physics, for tests that check what the controller believes."""
    return {
        "pump_moving": rig.pump.model.status.moving,
        "delivered_ml": rig.true_delivered_ml(),
        "line_mmhg": rig.true_line_pressure_mmhg(),
        "interlock": rig.bridge.interlock,
        "onsets": [o.kind for o in rig.truth.onsets],
    }


async def _pump_stopped(rig: SimRig, timeout_s: float) -> float:
    """Wait until the pump is still; the monotonic time (shared by every process) it was."""
    await rig.until(lambda: not rig.pump.model.status.moving, timeout_s)
    return rig.plant.t_s


REQUESTS: dict[str, Callable[..., Any]] = {
    "pump_stopped": _pump_stopped,
    "inject": _inject,
    "stopcock": _stopcock,
    "describe": _describe,
    "state": _state,
}


class RigProcess:
    def __init__(self, scenario: Scenario, pump_link: str | Path, bridge_link: str | Path) -> None:
        self.scenario = scenario
        self.pump_link, self.bridge_link = Path(pump_link), Path(bridge_link)
        self._context = multiprocessing.get_context("spawn")
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._lock = asyncio.Lock()

    @property
    def pump_port(self) -> str:
        return str(self.pump_link)

    @property
    def bridge_port(self) -> str:
        return str(self.bridge_link)

    async def start(self) -> None:
        """Start the process; return when both emulators listen on their links."""
        parent, child = self._context.Pipe()
        self._process = self._context.Process(
            target=_child_main,
            args=(child, self.scenario, str(self.pump_link), str(self.bridge_link)),
            name="injectctl-sim",
            daemon=True,
        )
        self._process.start()
        child.close()
        self._conn = parent
        ready = await asyncio.to_thread(parent.poll, START_TIMEOUT_S)
        if not ready:
            await self.stop()
            raise RigProcessError(f"simulator did not start within {START_TIMEOUT_S:.0f} s")
        status, detail = await asyncio.to_thread(_receive, parent)
        if status != "ready":
            await self.stop()
            raise RigProcessError(f"simulator did not start: {detail}")

    async def stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self._conn.send(("stop", ()))
        if self._process is not None:
            await asyncio.to_thread(self._process.join, STOP_TIMEOUT_S)
            if self._process.is_alive():
                self._process.kill()
                await asyncio.to_thread(self._process.join)
            self._process = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def request(self, name: str, *args: Any) -> Any:
        """Run one of ``REQUESTS`` in the simulator and return its answer."""
        if self._conn is None:
            raise RigProcessError("simulator not running")
        async with self._lock:
            self._conn.send((name, args))
            status, answer = await asyncio.to_thread(_receive, self._conn)
        if status != "ok":
            raise RigProcessError(f"simulator: {answer}")
        return answer

    async def inject(self, kind: str, **params: float) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("inject", kind, params)
        return result

    async def state(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("state")
        return result


def _receive(conn: Connection) -> tuple[str, Any]:
    try:
        message: tuple[str, Any] = conn.recv()
    except EOFError:
        return "error", "the simulator process ended"
    return message


# ---------------------------------------------------------------- in the child process
def _child_main(conn: Connection, scenario: Scenario, pump_link: str, bridge_link: str) -> None:
    _take_device_priority()
    try:
        asyncio.run(_serve(conn, SimRig(scenario, pump_link, bridge_link)))
    except Exception as exc:  # reported to the parent, which is waiting for "ready"
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _take_device_priority() -> None:
    """Ask the OS to schedule this process ahead of ordinary ones, as hardware would be.

    The emulators sleep between 1 ms ticks, so a real-time round-robin class costs the
    rest of the machine little; without it, a browser rendering on a two-core machine can
    hold the emulated bridge back past the host's 20 ms staleness limit. Where the OS
    refuses (no privilege), a higher nice value is tried, then nothing: the rig still runs.
    """
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(DEVICE_RT_PRIORITY))
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, -10)


async def _serve(conn: Connection, rig: SimRig) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    waiting: set[asyncio.Future[None]] = set()
    await rig.start()
    # Real-time priority does not help against this process's own garbage collector: a
    # full collection over everything built at start-up can hold the emulated bridge past
    # the host's 20 ms staleness limit (a fresh-clone run met a 20.8 ms silence with the
    # host's timer on time and nothing pending). What start-up built is never scanned again.
    gc.collect()
    gc.freeze()

    def on_request() -> None:
        try:
            name, args = conn.recv()
        except EOFError:  # the parent is gone: stop
            done.set()
            return
        if name == "stop":
            done.set()
            return
        try:
            answer = REQUESTS[name](rig, *args)
        except Exception as exc:
            conn.send(("error", f"{name}: {type(exc).__name__}: {exc}"))
            return
        if inspect.isawaitable(answer):  # answered when done; the parent waits in between
            later = asyncio.ensure_future(_answer_later(conn, name, answer))
            waiting.add(later)
            later.add_done_callback(waiting.discard)
        else:
            conn.send(("ok", answer))

    loop.add_reader(conn.fileno(), on_request)
    try:
        conn.send(("ready", None))
        await done.wait()
    finally:
        loop.remove_reader(conn.fileno())
        try:
            # an answer still pending may end in error (the pipe broke: the parent died);
            # the emulators are stopped whatever it ended with
            await cancel_and_wait(*waiting)
        finally:
            await rig.stop()


async def _answer_later(conn: Connection, name: str, answer: Any) -> None:
    try:
        conn.send(("ok", await answer))
    except Exception as exc:
        conn.send(("error", f"{name}: {type(exc).__name__}: {exc}"))
