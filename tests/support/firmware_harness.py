"""Drive the firmware core in CPython and read back typed messages."""

from __future__ import annotations

from typing import TypeVar

from firmware_bridge import messages as m
from firmware_bridge.firmware.core import BridgeCore
from firmware_bridge.ptb1 import FrameReceiver, encode_frame


class CoreHarness:
    """A core, a host-side receiver for what it sends, and a log of interlock moves."""

    def __init__(self, boot_at_us: int | None = 0) -> None:
        self.moves: list[bool] = []
        self.core = BridgeCore(0x1B2D0001, 0, 5369.0, on_interlock=self.moves.append)
        self.rx = FrameReceiver()
        self.host_seq = 0
        self.wire = b""
        self.last_seq = -1
        if boot_at_us is not None:
            self.core.boot(boot_at_us)

    def read(self) -> list[m.DeviceMessage]:
        self.wire = self.core.take_output()
        out = []
        for ptype, seq, payload in self.rx.feed(self.wire):
            self.last_seq = seq
            out.append(m.decode_device(ptype, payload))
        return out

    def send(self, command: tuple[int, bytes], t_us: int) -> list[m.DeviceMessage]:
        ptype, payload = command
        self.core.receive(encode_frame(ptype, self.host_seq, payload), t_us)
        self.host_seq = (self.host_seq + 1) & 0xFF
        return self.read()

    def samples(self, raws: list[int], t0_us: int, period_us: int = 1000) -> list[m.DeviceMessage]:
        for k, raw in enumerate(raws):
            self.core.sample(raw, t0_us + k * period_us)
        return self.read()


T = TypeVar("T")


def of_type(messages: list[m.DeviceMessage], kind: type[T]) -> list[T]:
    return [x for x in messages if isinstance(x, kind)]
