"""The bridge firmware's pure core: everything the board decides, nothing it touches.

The core owns the sampling schedule, stream batching, the host watchdog, the trip
limit, the latched interlock, the STATUS flags and command handling. It never
reads a clock or a pin: the hardware layer (``main.py`` on the RP2040, the
emulator on a pty) passes the time in and drives the interlock line from the
``on_interlock`` callback, which the core calls *before* it queues the TRIP
message, so the line moves first. Because the core is pure it runs unchanged
under MicroPython and CPython, and the test suite checks that both give the
same bytes. Keep it in the subset both run: no dataclasses, enums or typing
at run time.

Times are device microseconds that wrap at 2**32, compared as ``ticks_diff``
does, so the core works for a board that has been up for years.
"""

import struct

from firmware_bridge import ptb1

try:
    from typing import TYPE_CHECKING
except ImportError:  # MicroPython has no typing module; annotations are not evaluated there
    TYPE_CHECKING = False  # type: ignore[misc]
if TYPE_CHECKING:
    from collections.abc import Callable

PROTO = 1
FW_MAJOR = 1
FW_MINOR = 0

# device -> host packet types
HELLO = 0x01
SAMPLES = 0x02
STATUS = 0x03
ACK = 0x04
PONG = 0x05
TRIP = 0x06
LOG = 0x07

# host -> device packet types
HELLO_REQUEST = 0x81
STREAM = 0x82
PING = 0x83
WATCHDOG = 0x84
TRIP_LIMIT = 0x85
INTERLOCK = 0x86

# STATUS flags
SENSOR_OPEN = 0x0001
ADC_SATURATED = 0x0002
EXCITATION_FAULT = 0x0004
INTERLOCK_ASSERTED = 0x0008
WATCHDOG_EXPIRED = 0x0010
STREAMING = 0x0020
TRIP_ARMED = 0x0040
WATCHDOG_ARMED = 0x0080
BOOTED = 0x0100
SENSOR_FAULTS = SENSOR_OPEN | ADC_SATURATED

# ACK results and TRIP reasons
OK = 0
BAD_ARGUMENT = 1
BAD_STATE = 2
UNKNOWN_TYPE = 3
OVER_LIMIT = 1
WATCHDOG_TRIP = 2
SENSOR_FAULT = 3
HOST_COMMAND = 4

U16_MAX = 0xFFFF
MASK32 = 0xFFFFFFFF
STATUS_PERIOD_US = 500000
IDLE_PERIOD_US = 10000  # the sensor is still supervised at 100 Hz when not streaming
EXCITATION_TOLERANCE = 0.05
TX_LIMIT_BYTES = 2048  # what the UART buffer holds; SAMPLES beyond it are overruns
NEVER = 1 << 30  # samples since the last over-limit sample, before any


def reached(now_us: int, deadline_us: int) -> bool:
    """True once ``now_us`` is at or past ``deadline_us`` on the wrapping clock."""
    return ((now_us - deadline_us) & MASK32) < 0x80000000


class BridgeCore:
    proto = PROTO  # an emulator may claim another version, to test the host's check

    def __init__(
        self,
        device_id: int,
        nominal_zero: int,
        nominal_gain: float,
        *,
        excitation_mv: int = 2500,
        max_rate_hz: int = 1000,
        adc_bits: int = 24,
        on_interlock: "Callable[[bool], None] | None" = None,
        tx_limit_bytes: int = TX_LIMIT_BYTES,
    ) -> None:
        self.device_id = device_id
        self.nominal_zero = nominal_zero
        self.nominal_gain = nominal_gain
        self.excitation_mv = excitation_mv
        self.max_rate_hz = max_rate_hz
        self.adc_bits = adc_bits
        self.on_interlock = on_interlock
        self.tx_limit_bytes = tx_limit_bytes
        self.raw_max = (1 << (adc_bits - 1)) - 1
        self.raw_min = -(1 << (adc_bits - 1))
        self._rx = ptb1.FrameReceiver()
        self._tx = bytearray()
        self._seq = 0
        self.flags = BOOTED
        self.interlock = False
        self.overruns = 0
        self.measured_excitation_mv = excitation_mv
        self.last_raw = 0
        self.rate_hz = 0
        self.period_us = IDLE_PERIOD_US
        self.per_frame = 1
        self.index = 0
        self._batch: list[int] = []
        self._batch_t_us = 0
        self.next_sample_us = 0
        self._next_status_us = 0
        self._wd_timeout_us = 0
        self._wd_deadline_us = 0
        self._limit_raw = 0
        self._limit_n = 0
        self._over_run = 0
        self._since_over = NEVER
        self._status_due = False

    # ------------------------------------------------------------ hardware-facing API
    def boot(self, now_us: int) -> None:
        """Power-on: announce HELLO and a STATUS with BOOTED set."""
        self.next_sample_us = (now_us + self.period_us) & MASK32
        self._next_status_us = (now_us + STATUS_PERIOD_US) & MASK32
        self._send_hello()
        self._send_status()

    def take_output(self) -> bytes:
        """Bytes for the UART, oldest first; the core forgets them."""
        out = bytes(self._tx)
        self._tx = bytearray()
        return out

    @property
    def rx_errors(self) -> int:
        return self._rx.rx_errors

    def next_deadline_us(self) -> int:
        """The earliest time the core wants ``sample`` or ``tick`` called again."""
        due = self.next_sample_us
        for t in (self._next_status_us, self._wd_deadline_us if self._wd_timeout_us else due):
            if not reached(t, due):
                due = t
        return due

    def receive(self, data: bytes, now_us: int) -> None:
        """Bytes from the host: every valid packet restarts the watchdog, then is handled."""
        for ptype, seq, payload in self._rx.feed(data):
            if self._wd_timeout_us:
                self._wd_deadline_us = (now_us + self._wd_timeout_us) & MASK32
            self._handle(ptype, seq, payload, now_us)
        self._report_status()

    def sample(
        self, raw: int, t_us: int, sensor_open: bool = False, excitation_mv: int = -1
    ) -> None:
        """One ADC conversion taken at ``t_us``: supervise it, then stream it."""
        self.last_raw = raw
        if excitation_mv >= 0:
            self.measured_excitation_mv = excitation_mv
        self._update_sensor_flags(raw, sensor_open)
        self._check_trip_limit(raw, t_us)
        if self.flags & STREAMING:
            self._stream_sample(raw, t_us)
        self.next_sample_us = (t_us + self.period_us) & MASK32
        self.tick(t_us)

    def tick(self, now_us: int) -> None:
        """Timers: watchdog expiry and the twice-a-second STATUS."""
        if self._wd_timeout_us and reached(now_us, self._wd_deadline_us):
            self._wd_timeout_us = 0
            self._set_flags((self.flags & ~WATCHDOG_ARMED) | WATCHDOG_EXPIRED)
            self._trip(WATCHDOG_TRIP, now_us)
            self._log(30, "host watchdog expired")
        if reached(now_us, self._next_status_us):
            self._next_status_us = (now_us + STATUS_PERIOD_US) & MASK32
            self._status_due = True
        self._report_status()

    # ------------------------------------------------------------ supervision
    def _update_sensor_flags(self, raw: int, sensor_open: bool) -> None:
        flags = self.flags & ~(SENSOR_OPEN | ADC_SATURATED | EXCITATION_FAULT)
        if sensor_open:
            flags |= SENSOR_OPEN
        if raw >= self.raw_max or raw <= self.raw_min:
            flags |= ADC_SATURATED
        error = abs(self.measured_excitation_mv - self.excitation_mv)
        if error > self.excitation_mv * EXCITATION_TOLERANCE:
            flags |= EXCITATION_FAULT
        self._set_flags(flags)

    def _check_trip_limit(self, raw: int, t_us: int) -> None:
        if not self._limit_n:
            return
        if raw >= self._limit_raw:
            self._over_run += 1
            self._since_over = 0
        else:
            self._over_run = 0
            if self._since_over < NEVER:
                self._since_over += 1
        if self._over_run >= self._limit_n:
            self._trip(OVER_LIMIT, t_us)
        elif self.flags & SENSOR_FAULTS:
            self._trip(SENSOR_FAULT, t_us)

    def _cause_present(self) -> bool:
        over = self._limit_n > 0 and self._since_over < self._limit_n
        return over or bool(self.flags & SENSOR_FAULTS)

    def _trip(self, reason: int, t_us: int) -> None:
        """Assert the line first, then tell the host. A standing cause trips once per latch."""
        if self.interlock and reason in (OVER_LIMIT, SENSOR_FAULT):
            return
        if not self.interlock:
            self.interlock = True
            if self.on_interlock is not None:
                self.on_interlock(True)
        self._emit(TRIP, struct.pack("<BiI", reason, self.last_raw, t_us & MASK32))
        self._set_flags(self.flags | INTERLOCK_ASSERTED)

    def _release(self) -> int:
        if self._cause_present():
            return BAD_STATE
        if self.interlock:
            self.interlock = False
            if self.on_interlock is not None:
                self.on_interlock(False)
        self._over_run = 0
        self._set_flags(self.flags & ~(INTERLOCK_ASSERTED | WATCHDOG_EXPIRED))
        return OK

    # ------------------------------------------------------------ streaming
    def _stream_sample(self, raw: int, t_us: int) -> None:
        if not self._batch:
            self._batch_t_us = t_us & MASK32
        self._batch.append(raw)
        if len(self._batch) >= self.per_frame:
            self._flush_batch()

    def _flush_batch(self) -> None:
        n = len(self._batch)
        if not n:
            return
        period = min(self.period_us, U16_MAX)
        head = struct.pack("<IIHB", self.index & MASK32, self._batch_t_us, period, n)
        payload = head + struct.pack(f"<{n}i", *self._batch)
        self.index += n
        self._batch = []
        if len(self._tx) + 2 * len(payload) > self.tx_limit_bytes:
            self.overruns += n
            return
        self._emit(SAMPLES, payload)

    def _start_stream(self, rate_hz: int, per_frame: int, now_us: int) -> None:
        self._batch = []
        self.rate_hz = rate_hz
        self.per_frame = per_frame
        self.index = 0
        self.period_us = 1000000 // rate_hz
        # SAMPLES carries period_us as a u16: below 16 Hz it does not fit (PTB/1 allows
        # 10 Hz). Then every sample goes in a packet of its own, whose t_us is exact, and
        # the period field saturates at 0xFFFF (the host needs it only within a packet).
        if self.period_us > U16_MAX:
            self.per_frame = 1
        self.next_sample_us = (now_us + self.period_us) & MASK32
        self._set_flags(self.flags | STREAMING)

    def _stop_stream(self, now_us: int) -> None:
        self._flush_batch()
        self.rate_hz = 0
        self.period_us = IDLE_PERIOD_US
        self.next_sample_us = (now_us + self.period_us) & MASK32
        self._set_flags(self.flags & ~STREAMING)

    # ------------------------------------------------------------ commands
    def _handle(self, ptype: int, seq: int, payload: bytes, now_us: int) -> None:
        if ptype == HELLO_REQUEST:
            if payload:
                self._ack(seq, BAD_ARGUMENT)
                return
            self._send_hello()
            self._set_flags(self.flags & ~BOOTED)
        elif ptype == PING:
            if len(payload) != 4:
                self._ack(seq, BAD_ARGUMENT)
                return
            self._emit(PONG, payload + struct.pack("<I", now_us & MASK32))
        elif ptype == STREAM:
            self._ack(seq, self._cmd_stream(payload, now_us))
        elif ptype == WATCHDOG:
            self._ack(seq, self._cmd_watchdog(payload, now_us))
        elif ptype == TRIP_LIMIT:
            self._ack(seq, self._cmd_trip_limit(payload))
        elif ptype == INTERLOCK:
            self._cmd_interlock(seq, payload, now_us)
        else:
            self._ack(seq, UNKNOWN_TYPE)

    def _cmd_stream(self, payload: bytes, now_us: int) -> int:
        if len(payload) != 3:
            return BAD_ARGUMENT
        rate_hz, per_frame = struct.unpack("<HB", payload)
        if rate_hz == 0:
            self._stop_stream(now_us)
            return OK
        if not 10 <= rate_hz <= self.max_rate_hz or not 1 <= per_frame <= 12:
            return BAD_ARGUMENT
        self._start_stream(rate_hz, per_frame, now_us)
        return OK

    def _cmd_watchdog(self, payload: bytes, now_us: int) -> int:
        if len(payload) != 2:
            return BAD_ARGUMENT
        timeout_ms = struct.unpack("<H", payload)[0]
        if timeout_ms == 0:
            self._wd_timeout_us = 0
            self._set_flags(self.flags & ~WATCHDOG_ARMED)
            return OK
        if not 20 <= timeout_ms <= 5000:
            return BAD_ARGUMENT
        self._wd_timeout_us = timeout_ms * 1000
        self._wd_deadline_us = (now_us + self._wd_timeout_us) & MASK32
        self._set_flags(self.flags | WATCHDOG_ARMED)
        return OK

    def _cmd_trip_limit(self, payload: bytes) -> int:
        if len(payload) != 5:
            return BAD_ARGUMENT
        raw_limit, consecutive = struct.unpack("<iB", payload)
        if consecutive > 50:
            return BAD_ARGUMENT
        self._limit_raw = raw_limit
        self._limit_n = consecutive
        self._over_run = 0
        self._since_over = NEVER
        flags = self.flags | TRIP_ARMED if consecutive else self.flags & ~TRIP_ARMED
        self._set_flags(flags)
        return OK

    def _cmd_interlock(self, seq: int, payload: bytes, now_us: int) -> None:
        if len(payload) != 1 or payload[0] > 1:
            self._ack(seq, BAD_ARGUMENT)
        elif payload[0] == 1:
            self._ack(seq, OK)
            self._trip(HOST_COMMAND, now_us)
        else:
            self._ack(seq, self._release())

    # ------------------------------------------------------------ output
    def _set_flags(self, flags: int) -> None:
        """Flag changes are reported once, at the end of the call that made them."""
        if flags != self.flags:
            self.flags = flags
            self._status_due = True

    def _report_status(self) -> None:
        if self._status_due:
            self._send_status()

    def _send_hello(self) -> None:
        self._emit(
            HELLO,
            struct.pack(
                "<BBBIBHifH",
                self.proto,
                FW_MAJOR,
                FW_MINOR,
                self.device_id,
                self.adc_bits,
                self.excitation_mv,
                self.nominal_zero,
                self.nominal_gain,
                self.max_rate_hz,
            ),
        )

    def _send_status(self) -> None:
        self._status_due = False
        payload = struct.pack(
            "<HHIH",
            self.flags,
            self.measured_excitation_mv & 0xFFFF,
            self.overruns & MASK32,
            self._rx.rx_errors & 0xFFFF,
        )
        self._emit(STATUS, payload)

    def _ack(self, seq: int, result: int) -> None:
        self._emit(ACK, struct.pack("<BB", seq, result))

    def _log(self, level: int, text: str) -> None:
        self._emit(LOG, bytes([level]) + text.encode()[:40])

    def _emit(self, ptype: int, payload: bytes) -> None:
        self._tx += ptb1.encode_frame(ptype, self._seq, payload)
        self._seq = (self._seq + 1) & 0xFF
