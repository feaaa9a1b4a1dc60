"""NE-1000 emulator on a pseudo-terminal: framing, timing and fault injection.

The pump logic lives in :mod:`simulator.ne1000_model`; this module is the
pump's UART: basic and safe-mode framing, the 0.5 s inter-byte discard of
partial safe-mode packets, unprompted alarm packets in safe mode, and faults
injected in the manner of OctoPrint's virtual printer, either from Python
(``emulator.faults``) or in-band on the link itself (a basic-mode line that
starts with ``!!``, see :meth:`PumpFaults.apply_inband`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from pathlib import Path

from drivers.clock import now_s
from drivers.ne1000_protocol import CR, ETX, STX, crc16_xmodem, encode_safe
from drivers.tasks import cancel_and_wait
from simulator.links import device_link
from simulator.ne1000_model import NE1000Model, PlungerHook

log = logging.getLogger(__name__)

INTER_BYTE_TIMEOUT_S = 0.5
TICK_S = 0.002


class PumpFaults:
    """Faults the emulator can be told to show. Times are loop-monotonic seconds."""

    def __init__(self, emulator: NE1000Emulator) -> None:
        self._emu = emulator
        self.silent_until_s = 0.0
        self.reply_delay_s = 0.0
        self.corrupt_replies = 0
        self.bad_crc_replies = 0
        self._rng = random.Random(0)

    def go_silent(self, duration_s: float = float("inf")) -> None:
        """Ignore all input and send nothing, as a pump whose cable is cut."""
        self.silent_until_s = now_s() + duration_s

    def answer_late(self, delay_s: float) -> None:
        self.reply_delay_s = delay_s

    def corrupt_next_reply(self, count: int = 1) -> None:
        """Flip one bit in the data of the next ``count`` replies."""
        self.corrupt_replies += count

    def bad_crc_next_reply(self, count: int = 1) -> None:
        self.bad_crc_replies += count

    def inject_garbage(self, n_bytes: int = 16) -> None:
        noise = bytes(self._rng.randrange(256) for _ in range(n_bytes))
        self._emu.link.write(noise)

    def drop_link(self, duration_s: float) -> None:
        """Pull the cable: the pty disappears for ``duration_s`` and comes back."""
        self._emu.drop_link(duration_s)

    def reset(self) -> None:
        """Spontaneous reset, as on a brown-out."""
        self._emu.power_cycle()

    def stall(self) -> None:
        """Force a motor stall now, whatever the physics says."""
        self._emu.force_stall()

    def clear(self) -> None:
        self.silent_until_s = self.reply_delay_s = 0.0
        self.corrupt_replies = self.bad_crc_replies = 0

    @property
    def silent(self) -> bool:
        return now_s() < self.silent_until_s

    def apply_inband(self, line: str) -> None:
        """``!!silent 2``, ``!!delay 0.3``, ``!!corrupt``, ``!!crc``, ``!!garbage 20``,
        ``!!drop 1``, ``!!reset``, ``!!stall``, ``!!clear``."""
        words = line[2:].strip().lower().split()
        if not words:
            return
        verb, args = words[0], [float(w) for w in words[1:]]
        actions = {
            "silent": lambda: self.go_silent(args[0] if args else float("inf")),
            "delay": lambda: self.answer_late(args[0] if args else 0.0),
            "corrupt": lambda: self.corrupt_next_reply(int(args[0]) if args else 1),
            "crc": lambda: self.bad_crc_next_reply(int(args[0]) if args else 1),
            "garbage": lambda: self.inject_garbage(int(args[0]) if args else 16),
            "drop": lambda: self.drop_link(args[0] if args else 1.0),
            "reset": self.reset,
            "stall": self.stall,
            "clear": self.clear,
        }
        action = actions.get(verb)
        if action is None:
            log.warning("unknown in-band fault %r", line)
            return
        log.info("in-band fault: %s", line)
        action()


class _StallNow:
    """A plunger hook that stalls once, then hands back to the real plant."""

    def __init__(self, inner: PlungerHook, model: NE1000Model) -> None:
        self.inner, self.model = inner, model

    def on_plunger(self, t_mono_s: float, dt_s: float, flow_ml_min: float) -> bool:
        self.model.plant = self.inner
        return True


class NE1000Emulator:
    """One emulated pump serving a pty at ``link_path``."""

    def __init__(
        self,
        link_path: str | Path,
        *,
        address: int = 0,
        plant: PlungerHook | None = None,
        clock: Callable[[], float] = now_s,
    ) -> None:
        # ``clock`` is the pump's own time; a scaled clock runs the mechanism faster than
        # real time (a two-hour gravimetric test in a minute) while the UART keeps real time.
        self.clock = clock
        self.model = NE1000Model(address=address)
        if plant is not None:
            self.model.plant = plant
        self.link_target = str(link_path)
        self.link = device_link(link_path, self._on_bytes)
        self.faults = PumpFaults(self)
        self.ticked = asyncio.Event()  # set every tick: waiters re-check their condition
        self.commands_received: list[str] = []
        self.rx_errors = 0
        self._rx = bytearray()
        self._last_rx_s = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.model.now_s = self.clock()
        self.link.plug()
        self._ticker = asyncio.create_task(self._tick(), name="ne1000-emulator-tick")

    async def stop(self) -> None:
        await cancel_and_wait(self._ticker, *self._tasks)
        self._tasks.clear()
        self.link.unplug()

    async def __aenter__(self) -> NE1000Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def path(self) -> str:
        return self.link_target

    def external_stop(self, asserted: bool) -> None:
        """Drive the pump's TTL stop input (the bridge's interlock line)."""
        self.model.set_external_stop(asserted, self.clock())
        self._flush_unprompted()

    def power_cycle(self) -> None:
        self.model.power_cycle(self.clock())
        self._rx.clear()
        self._flush_unprompted()

    def force_stall(self) -> None:
        self.model.plant = _StallNow(self.model.plant, self.model)

    def drop_link(self, duration_s: float) -> None:
        self.link.unplug()
        self._rx.clear()
        self._spawn(self._replug_after(duration_s))

    async def _replug_after(self, duration_s: float) -> None:
        await asyncio.sleep(duration_s)
        self.link.plug()

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tick(self) -> None:
        """Advance the pump between commands: target reached, stall, safe-mode timeout."""
        while True:
            await asyncio.sleep(TICK_S)
            self.model.advance(self.clock())
            self._flush_unprompted()
            self.ticked.set()

    # ------------------------------------------------------------------ receive
    def _on_bytes(self, data: bytes, t_mono_s: float) -> None:
        if self.faults.silent:
            return
        if self._rx and t_mono_s - self._last_rx_s > INTER_BYTE_TIMEOUT_S:
            self._rx.clear()
        self._last_rx_s = t_mono_s
        now_s = self.clock()
        for byte in data:
            self._take_byte(byte, now_s)

    def _take_byte(self, byte: int, now_s: float) -> None:
        rx = self._rx
        if not rx and byte == STX:
            rx.append(byte)
            return
        if rx and rx[0] == STX:
            rx.append(byte)
            if len(rx) >= 2 and len(rx) == rx[1] + 1:
                packet = bytes(rx)
                rx.clear()
                self._on_safe_packet(packet, now_s)
            return
        if self.model.safe_mode:
            return  # outside a packet, safe mode discards stray bytes
        if byte == CR:
            line = rx.decode("ascii", "replace")
            rx.clear()
            self._on_basic_line(line, now_s)
        else:
            rx.append(byte)

    def _on_safe_packet(self, packet: bytes, now_s: float) -> None:
        data, crc = packet[2:-3], int.from_bytes(packet[-3:-1], "big")
        if packet[-1] != ETX or crc16_xmodem(data) != crc:
            self.rx_errors += 1
            self._send(self.model._reply("?COM"))
            return
        self.model.valid_packet(now_s)
        self._execute(data.decode("ascii", "replace"), now_s)

    def _on_basic_line(self, line: str, now_s: float) -> None:
        if line.lstrip().startswith("!!"):
            self.faults.apply_inband(line.strip())
            return
        cleaned = "".join(ch for ch in line if ch.isprintable() and not ch.isspace()).upper()
        self._execute(cleaned, now_s)

    def _execute(self, text: str, now_s: float) -> None:
        digits = len(text) - len(text.lstrip("0123456789"))
        if text.startswith("*"):
            address, command = self.model.address, text[1:]
        elif digits:
            address, command = int(text[: min(digits, 2)]), text[min(digits, 2) :]
        else:
            address, command = self.model.address, text
        if address != self.model.address:
            return
        self.commands_received.append(command)
        reply = self.model.handle(command, now_s)
        self._send(reply)
        self._flush_unprompted()

    # ------------------------------------------------------------------ transmit
    def _flush_unprompted(self) -> None:
        """Alarm packets the pump sends by itself: only in safe mode (Auto-Alarm)."""
        pending, self.model.unprompted = self.model.unprompted, []
        if self.model.safe_mode:
            for reply in pending:
                self._send(reply)

    def _send(self, reply: str) -> None:
        if self.faults.silent:
            return
        frame = self._frame(reply.encode("ascii"))
        if self.faults.reply_delay_s > 0:
            self._spawn(self._send_later(frame, self.faults.reply_delay_s))
        else:
            self.link.write(frame)

    async def _send_later(self, frame: bytes, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self.link.write(frame)

    def _frame(self, data: bytes) -> bytes:
        """Frame a reply, then apply line faults to the bytes as they travel."""
        safe = self.model.safe_mode
        frame = bytearray(encode_safe(data) if safe else bytes((STX,)) + data + bytes((ETX,)))
        if self.faults.corrupt_replies:
            self.faults.corrupt_replies -= 1
            frame[(2 if safe else 1) + len(data) // 2] ^= 0x10
        if safe and self.faults.bad_crc_replies:
            self.faults.bad_crc_replies -= 1
            frame[-2] ^= 0xFF
        return bytes(frame)
