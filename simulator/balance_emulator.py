"""An MT-SICS analytical balance on a pseudo-terminal, weighing what the pump delivers.

The load is a beaker of water under an oil layer (the IEC 60601-2-24 set-up);
its mass is the tare plus the delivered volume times the density, minus any
evaporation, plus the balance's noise, rounded to its readability. Faults in
the manner of OctoPrint's virtual printer: ``go_silent``, ``draft`` (readings
dynamic and ``S`` never settles), ``overload`` (the beaker knocked onto the pan
edge reads over capacity), ``inject_garbage``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drivers.mtsics import CRLF, MAX_LINE_BYTES, format_weight
from drivers.tasks import cancel_and_wait
from simulator.delivery import ScaledClock
from simulator.links import device_link

WATER_DENSITY_G_ML = 0.9982  # at 20 degC
STABLE_TIMEOUT_S = 3.0  # on the balance's clock: ``S`` gives up with ``S I`` after this


@dataclass
class BalanceSpec:
    model: str = "XPE205 DeltaRange"
    serial_number: str = "B912345678"
    capacity_g: float = 220.0
    readability_g: float = 0.00001
    noise_g: float = 0.00002
    tare_g: float = 48.21034  # beaker, water and oil layer before the run
    density_g_ml: float = WATER_DENSITY_G_ML
    evaporation_mg_h: float = 0.0  # under an oil layer: negligible


class BalanceEmulator:
    """Serve ``link_path``; ``delivered_ml(t)`` says how much has reached the beaker."""

    def __init__(
        self,
        link_path: str | Path,
        delivered_ml: Callable[[float], float],
        clock: ScaledClock,
        spec: BalanceSpec | None = None,
        *,
        seed: int = 0,
    ) -> None:
        self.spec = spec or BalanceSpec()
        self.link_target = str(link_path)
        self.link = device_link(link_path, self._on_bytes)
        self.commands_received: list[str] = []
        self._delivered_ml = delivered_ml
        self._clock = clock
        self._rng = random.Random(seed)
        self._zero_g = 0.0
        self._rx = bytearray()
        self._tasks: set[asyncio.Task[None]] = set()
        self.silent = False
        self.draft = False
        self.overload = False

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> BalanceEmulator:
        self.link.plug()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await cancel_and_wait(*self._tasks)
        self.link.unplug()

    @property
    def path(self) -> str:
        return self.link_target

    # ------------------------------------------------------------------ faults
    def go_silent(self, silent: bool = True) -> None:
        self.silent = silent

    def inject_garbage(self, n_bytes: int = 12) -> None:
        self.link.write(bytes(self._rng.randrange(256) for _ in range(n_bytes)))

    # ------------------------------------------------------------------ the load
    def gross_g(self, t_s: float) -> float:
        s = self.spec
        evaporated_g = s.evaporation_mg_h * t_s / 3600.0 / 1000.0
        noise_g = self._rng.gauss(0.0, s.noise_g * (20 if self.draft else 1))
        return s.tare_g + self._delivered_ml(t_s) * s.density_g_ml - evaporated_g + noise_g

    def _reading_g(self) -> float | None:
        """Net reading rounded to the readability; None when out of range."""
        gross_g = self.gross_g(self._clock.now_s())
        if self.overload or gross_g > self.spec.capacity_g:
            return None
        step = self.spec.readability_g
        return round((gross_g - self._zero_g) / step) * step

    # ------------------------------------------------------------------ protocol
    def _on_bytes(self, data: bytes, t_mono_s: float) -> None:
        if self.silent:
            return
        self._rx += data
        while (end := self._rx.find(CRLF)) >= 0:
            line = bytes(self._rx[:end])
            del self._rx[: end + len(CRLF)]
            self._answer(line)
        if len(self._rx) > MAX_LINE_BYTES:
            self._rx.clear()
            self._send("ET")

    def _answer(self, raw: bytes) -> None:
        try:
            command = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            self._send("ET")
            return
        self.commands_received.append(command)
        handler: Callable[[], None] | None = {
            "SI": self._weigh_now,
            "S": self._weigh_stable,
            "Z": self._zero,
            "ZI": self._zero,
            "I2": lambda: self._send(f'I2 A "{self.spec.model} {self.spec.capacity_g:.5f} g"'),
            "I4": lambda: self._send(f'I4 A "{self.spec.serial_number}"'),
            "@": lambda: self._send(f'I4 A "{self.spec.serial_number}"'),
        }.get(command)
        if handler is None:
            self._send("ES")
        else:
            handler()

    def _weigh_now(self) -> None:
        reading = self._reading_g()
        if reading is None:
            self._send("S +")
        else:
            self._send(format_weight(reading, stable=not self.draft))

    def _weigh_stable(self) -> None:
        if self._reading_g() is None:
            self._send("S +")
        elif self.draft:
            self._spawn(self._give_up_after(STABLE_TIMEOUT_S, "S I"))
        else:
            self._weigh_now()

    def _zero(self) -> None:
        if self.draft:
            self._spawn(self._give_up_after(STABLE_TIMEOUT_S, "Z I"))
            return
        self._zero_g = self.gross_g(self._clock.now_s())
        self._send("Z A")

    async def _give_up_after(self, balance_s: float, reply: str) -> None:
        await self._clock.sleep_until(self._clock.now_s() + balance_s)
        self._send(reply)

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send(self, text: str) -> None:
        self.link.write(text.encode("ascii") + CRLF)
