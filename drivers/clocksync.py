"""Map the bridge's microsecond clock onto host monotonic time, tracking drift.

After Klipper's ``klippy/clocksync.py``: every PING/PONG gives a pair (host send
time, device clock). An exponentially decaying linear regression of device clock
against host time follows the crystal's frequency; the smallest half round-trip
seen (slowly aged, so a route that got slower is eventually believed) says how
long after the send the device read its clock. Outliers that arrive late are
ignored, and a real jump resets the prediction variance.

The device clock is given here already unwrapped to 64 bits.
"""

from __future__ import annotations

import math

DECAY = 1.0 / 30.0
RTT_AGE = 0.000010 / (60.0 * 60.0)
MAX_SKEW = 500e-6  # a crystal is within 50 ppm; anything past 500 ppm is noise in early fits


def unwrap_u32(t32: int, ref64: int) -> int:
    """The 64-bit value nearest ``ref64`` whose low 32 bits are ``t32`` (a wrapping clock)."""
    delta = (t32 - ref64) & 0xFFFFFFFF
    return ref64 + (delta - (1 << 32) if delta >= 1 << 31 else delta)


class ClockSync:
    def __init__(self, nominal_hz: float = 1e6) -> None:
        self.nominal_hz = nominal_hz
        self.ready = False
        self.samples = 0
        self.outliers = 0
        self.min_half_rtt_s = math.inf
        self._last_prediction_s = 0.0
        self._time_avg_s = 0.0
        self._clock_avg = 0.0
        self._time_var = 0.0
        self._covariance = 0.0
        self._prediction_var = 0.0
        self.freq_hz = nominal_hz

    def add(self, sent_s: float, received_s: float, device_clock: int) -> None:
        """A PING sent at ``sent_s``, answered with ``device_clock``, back at ``received_s``."""
        half_rtt = 0.5 * (received_s - sent_s)
        aged = (sent_s - self._last_prediction_s) * RTT_AGE
        if half_rtt < self.min_half_rtt_s + aged:
            self.min_half_rtt_s = half_rtt
        self.samples += 1
        if not self.ready:
            self._start(sent_s, device_clock)
            return
        expected = (sent_s - self._time_avg_s) * self.freq_hz + self._clock_avg
        diff2 = (device_clock - expected) ** 2
        if diff2 > 25.0 * self._prediction_var and diff2 > (0.000500 * self.nominal_hz) ** 2:
            if device_clock > expected and sent_s < self._last_prediction_s + 10.0:
                self.outliers += 1
                return
            self._prediction_var = (0.001 * self.nominal_hz) ** 2
        else:
            self._prediction_var = (1.0 - DECAY) * (self._prediction_var + diff2 * DECAY)
        self._regress(sent_s, device_clock)
        self._last_prediction_s = sent_s

    def _start(self, sent_s: float, device_clock: int) -> None:
        self.ready = True
        self._time_avg_s = sent_s
        self._clock_avg = float(device_clock)
        self._prediction_var = (0.001 * self.nominal_hz) ** 2
        self._last_prediction_s = sent_s

    def _regress(self, sent_s: float, device_clock: int) -> None:
        diff_t = sent_s - self._time_avg_s
        self._time_avg_s += DECAY * diff_t
        self._time_var = (1.0 - DECAY) * (self._time_var + diff_t * diff_t * DECAY)
        diff_clock = device_clock - self._clock_avg
        self._clock_avg += DECAY * diff_clock
        self._covariance = (1.0 - DECAY) * (self._covariance + diff_t * diff_clock * DECAY)
        if self._time_var > 0.0:
            freq = self._covariance / self._time_var
            low, high = self.nominal_hz * (1 - MAX_SKEW), self.nominal_hz * (1 + MAX_SKEW)
            self.freq_hz = min(high, max(low, freq))

    def to_host_s(self, device_clock: float) -> float:
        """Host monotonic time at which the device clock read ``device_clock``."""
        origin = self._time_avg_s + self.min_half_rtt_s
        return origin + (device_clock - self._clock_avg) / self.freq_hz

    @property
    def skew_ppm(self) -> float:
        return (self.freq_hz / self.nominal_hz - 1.0) * 1e6

    @property
    def uncertainty_s(self) -> float:
        return math.sqrt(self._prediction_var) / self.nominal_hz
