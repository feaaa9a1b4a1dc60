"""A bench for the gravimetric test: an emulated NE-1000 and balance on their own ptys.

Both emulators and the test share one :class:`~simulator.delivery.ScaledClock`,
so ``speed=120`` runs the two-hour IEC protocol in a minute through the real
drivers and the real bytes. The pump delivers through a
:class:`~simulator.delivery.DeliveryModel` (slack, compliance, lead-screw
wobble, bore error), which is what the balance weighs.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from simulator.balance_emulator import BalanceEmulator, BalanceSpec
from simulator.delivery import DeliveryModel, PumpMechanics, ScaledClock
from simulator.ne1000_emulator import NE1000Emulator

_MEMORY_RIGS = itertools.count(1)  # one name per rig in this process


@dataclass
class GravimetricRig:
    clock: ScaledClock
    delivery: DeliveryModel
    pump: NE1000Emulator
    balance: BalanceEmulator

    @property
    def pump_port(self) -> str:
        return self.pump.path

    @property
    def balance_port(self) -> str:
        return self.balance.path


@contextlib.asynccontextmanager
async def gravimetric_rig(
    diameter_mm: float,
    *,
    speed: float = 1.0,
    mechanics: PumpMechanics | None = None,
    spec: BalanceSpec | None = None,
    directory: Path | None = None,
    seed: int = 0,
    in_memory: bool = False,
) -> AsyncIterator[GravimetricRig]:
    """Serve ``<directory>/pump`` and ``<directory>/balance`` until the block ends.

    ``in_memory``: ``memory://`` ports instead of ptys, for the simulator's virtual-clock
    loop (``simulator.virtual_clock``), where a pty's kernel buffer would be overtaken.
    """
    with contextlib.ExitStack() as stack:
        links: tuple[str | Path, str | Path]
        if in_memory:
            tag = f"grav-{next(_MEMORY_RIGS)}"
            links = (f"memory://{tag}-pump", f"memory://{tag}-balance")
        else:
            if directory is None:
                directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="grav-")))
            links = (directory / "pump", directory / "balance")
        clock = ScaledClock(speed)
        delivery = DeliveryModel(diameter_mm, mechanics or PumpMechanics())
        pump = NE1000Emulator(links[0], plant=delivery, clock=clock.now_s)
        delivery.pump_diameter_mm = lambda: pump.model.settings.diameter_mm
        balance = BalanceEmulator(links[1], delivery.delivered_ml, clock, spec, seed=seed)
        async with pump, balance:
            yield GravimetricRig(clock, delivery, pump, balance)
