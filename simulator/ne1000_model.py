"""The NE-1000 pump itself, as the manual describes it, with no I/O.

The model is advanced by a clock that the caller passes in (``advance(now)``),
so the same pump can run in real time on a pseudo-terminal or faster than real
time in a sweep. Plunger motion goes through a :class:`PlungerHook` so that a
physics model can turn it into pressure and decide when the motor stalls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from drivers.ne1000_protocol import (
    DIAMETER_MAX_MM,
    DIAMETER_MIN_MM,
    Direction,
    PumpAlarm,
    PumpStatus,
    RateUnit,
    VolumeUnit,
    default_volume_unit,
    format_reply_number,
    rate_limits_ml_min,
)

FIRMWARE_VERSION = "NE1000V3.928"
_NUMBER_RE = re.compile(r"(\d{1,4}|\d{0,4}\.\d{0,3})")


class PlungerHook(Protocol):
    """Receives every step of plunger motion; returns True when the motor stalls."""

    def on_plunger(self, t_mono_s: float, dt_s: float, flow_ml_min: float) -> bool: ...


class _NoPlant:
    def on_plunger(self, t_mono_s: float, dt_s: float, flow_ml_min: float) -> bool:
        return False


@dataclass
class _Settings:
    """What the pump keeps in non-volatile memory."""

    diameter_mm: float = 12.06
    rate_value: float = 1.0
    rate_unit: RateUnit = RateUnit.ML_MIN
    volume_value: float = 0.0
    volume_unit: VolumeUnit = VolumeUnit.UL
    direction: Direction = Direction.INFUSE
    safe_timeout_s: int = 0
    buzzer: bool = False

    @property
    def rate_ml_min(self) -> float:
        return self.rate_value * self.rate_unit.ml_min_per_unit

    @property
    def target_ml(self) -> float:
        return self.volume_value * self.volume_unit.ml_per_unit


@dataclass
class NE1000Model:
    """State and command handling of one pump."""

    address: int = 0
    plant: PlungerHook = field(default_factory=_NoPlant)
    settings: _Settings = field(default_factory=_Settings)
    status: PumpStatus = PumpStatus.STOPPED
    alarm: PumpAlarm | None = PumpAlarm.RESET
    infused_ml: float = 0.0
    withdrawn_ml: float = 0.0
    run_ml: float = 0.0
    external_stop: bool = False
    safe_timer_armed: bool = False
    last_valid_packet_s: float = 0.0
    now_s: float = 0.0
    unprompted: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ time
    def advance(self, now_s: float) -> None:
        """Move the plunger up to ``now_s`` and fire any timeout that lapsed."""
        dt = now_s - self.now_s
        if dt <= 0:
            return
        self._check_safe_timeout(now_s)
        if self.status.moving:
            self._move(self.now_s, dt)
        self.now_s = now_s

    def _move(self, t0: float, dt: float) -> None:
        flow = self._flow_ml_min()
        dv = flow * dt / 60.0
        finished = False
        if self.status is not PumpStatus.PURGING and self.settings.target_ml > 0:
            remaining = self.settings.target_ml - self.run_ml
            if dv >= remaining:
                dt, dv, finished = dt * remaining / dv if dv else 0.0, remaining, True
        signed_flow = flow if self._direction_is_infuse() else -flow
        stalled = self.plant.on_plunger(t0 + dt, dt, signed_flow)
        if self._direction_is_infuse():
            self.infused_ml += dv
        else:
            self.withdrawn_ml += dv
        self.run_ml += dv
        if stalled:
            self.status = PumpStatus.STOPPED
            self._raise_alarm(PumpAlarm.STALLED)
        elif finished:
            self.status = PumpStatus.STOPPED
            self.run_ml = 0.0

    def _flow_ml_min(self) -> float:
        if self.status is PumpStatus.PURGING:
            return rate_limits_ml_min(self.settings.diameter_mm)[1]
        return self.settings.rate_ml_min

    def _direction_is_infuse(self) -> bool:
        return self.settings.direction is Direction.INFUSE

    def _check_safe_timeout(self, now_s: float) -> None:
        s = self.settings
        if (
            s.safe_timeout_s
            and self.safe_timer_armed
            and now_s - self.last_valid_packet_s > s.safe_timeout_s
        ):
            self.safe_timer_armed = False
            self.status = PumpStatus.STOPPED if self.status.moving else self.status
            self._raise_alarm(PumpAlarm.SAFE_TIMEOUT)

    def _raise_alarm(self, alarm: PumpAlarm) -> None:
        self.alarm = alarm
        self.unprompted.append(self._alarm_reply(alarm))

    # ------------------------------------------------------------------ inputs
    def valid_packet(self, now_s: float) -> None:
        """A valid safe-mode packet arrived: restart the communications timer."""
        self.last_valid_packet_s = now_s
        self.safe_timer_armed = True

    def set_external_stop(self, asserted: bool, now_s: float) -> None:
        """The TTL stop input: an asserting edge stops the pump, and RUN is refused while held."""
        self.advance(now_s)
        if asserted and not self.external_stop and self.status.moving:
            self.status = PumpStatus.STOPPED
            self.run_ml = 0.0
        self.external_stop = asserted

    def stall(self, now_s: float) -> None:
        """The motor stalls now (a jammed lead screw): stop and raise ``A?S``."""
        self.advance(now_s)
        if self.status.moving:
            self.status = PumpStatus.STOPPED
        self._raise_alarm(PumpAlarm.STALLED)

    def power_cycle(self, now_s: float) -> None:
        """Power interruption: motion and volatile counters lost, settings kept, A?R pending."""
        self.status = PumpStatus.STOPPED
        self.infused_ml = self.withdrawn_ml = self.run_ml = 0.0
        self.safe_timer_armed = False
        self.now_s = now_s
        self._raise_alarm(PumpAlarm.RESET)

    @property
    def safe_mode(self) -> bool:
        return self.settings.safe_timeout_s > 0

    # ------------------------------------------------------------------ commands
    def handle(self, command: str, now_s: float) -> str:
        """Execute one command (address already stripped) and return the reply data."""
        self.advance(now_s)
        name, arg = command[:3], command[3:]
        if name == "SAF":
            reply = self._cmd_saf(arg, now_s)
            return self._ack_alarm() if self.alarm else reply
        if self.alarm is not None:
            return self._ack_alarm()
        handler = _HANDLERS.get(name) if command else NE1000Model._cmd_status
        if handler is None:
            return self._reply("?")
        return handler(self, arg)

    def _reply(self, data: str = "") -> str:
        return f"{self.address:02d}{self.status.value}{data}"

    def _alarm_reply(self, alarm: PumpAlarm) -> str:
        return f"{self.address:02d}A?{alarm.value}"

    def _ack_alarm(self) -> str:
        assert self.alarm is not None
        reply = self._alarm_reply(self.alarm)
        self.alarm = None
        return reply

    def _cmd_status(self, arg: str) -> str:
        return self._reply() if not arg else self._reply("?")

    def _cmd_ver(self, arg: str) -> str:
        return self._reply(FIRMWARE_VERSION)

    def _cmd_saf(self, arg: str, now_s: float) -> str:
        if not arg:
            return self._reply(str(self.settings.safe_timeout_s))
        if not arg.isdigit() or int(arg) > 255:
            return self._reply("?OOR")
        self.settings.safe_timeout_s = int(arg)
        self.valid_packet(now_s)
        return self._reply()

    def _cmd_dia(self, arg: str) -> str:
        if not arg:
            return self._reply(format_reply_number(self.settings.diameter_mm))
        value = _number(arg)
        if value is None or not DIAMETER_MIN_MM <= value <= DIAMETER_MAX_MM:
            return self._reply("?OOR")
        if self.status.moving:
            return self._reply("?NA")
        self.settings.diameter_mm = value
        self.settings.volume_unit = default_volume_unit(value)
        return self._reply()

    def _cmd_rat(self, arg: str) -> str:
        s = self.settings
        if not arg:
            return self._reply(format_reply_number(s.rate_value) + s.rate_unit.value)
        unit_text = arg[-2:] if arg[-2:].isalpha() else ""
        if unit_text and unit_text not in RateUnit._value2member_map_:
            return self._reply("?OOR")
        unit = RateUnit(unit_text) if unit_text else s.rate_unit
        value = _number(arg[: len(arg) - len(unit_text)])
        if value is None:
            return self._reply("?OOR")
        if self.status.moving and unit is not s.rate_unit:
            return self._reply("?NA")
        low, high = rate_limits_ml_min(s.diameter_mm)
        if not low <= value * unit.ml_min_per_unit <= high:
            return self._reply("?OOR")
        s.rate_value, s.rate_unit = value, unit
        return self._reply()

    def _cmd_vol(self, arg: str) -> str:
        s = self.settings
        if not arg:
            return self._reply(format_reply_number(s.volume_value) + s.volume_unit.value)
        if self.status.moving:
            return self._reply("?NA")
        if arg in VolumeUnit._value2member_map_:
            s.volume_unit = VolumeUnit(arg)
            return self._reply()
        value = _number(arg)
        if value is None:
            return self._reply("?OOR")
        s.volume_value = value
        return self._reply()

    def _cmd_dir(self, arg: str) -> str:
        s = self.settings
        if not arg:
            return self._reply(s.direction.value)
        if arg == "REV":
            new = Direction.WITHDRAW if s.direction is Direction.INFUSE else Direction.INFUSE
        elif arg in Direction._value2member_map_:
            new = Direction(arg)
        else:
            return self._reply("?OOR")
        if self.status.moving and s.target_ml > 0:
            return self._reply("?NA")
        s.direction = new
        if self.status in (PumpStatus.INFUSING, PumpStatus.WITHDRAWING):
            self.status = PumpStatus.INFUSING if new is Direction.INFUSE else PumpStatus.WITHDRAWING
        return self._reply()

    def _cmd_run(self, arg: str) -> str:
        if arg:
            return self._reply("?")
        if self.status.moving:
            return self._reply()
        if self.external_stop:
            return self._reply("?NA")
        low, high = rate_limits_ml_min(self.settings.diameter_mm)
        if not low <= self.settings.rate_ml_min <= high:
            return self._reply("?OOR")
        if self.status is not PumpStatus.PAUSED:
            self.run_ml = 0.0
        infuse = self._direction_is_infuse()
        self.status = PumpStatus.INFUSING if infuse else PumpStatus.WITHDRAWING
        return self._reply()

    def _cmd_stp(self, arg: str) -> str:
        if self.status.moving:
            self.status = PumpStatus.PAUSED
        elif self.status is PumpStatus.PAUSED:
            self.status = PumpStatus.STOPPED
            self.run_ml = 0.0
        return self._reply()

    def _cmd_pur(self, arg: str) -> str:
        if self.external_stop:
            return self._reply("?NA")
        self.status = PumpStatus.PURGING
        return self._reply()

    def _cmd_dis(self, arg: str) -> str:
        unit = self.settings.volume_unit
        i = format_reply_number(self.infused_ml / unit.ml_per_unit)
        w = format_reply_number(self.withdrawn_ml / unit.ml_per_unit)
        return self._reply(f"I{i}W{w}{unit.value}")

    def _cmd_cld(self, arg: str) -> str:
        if arg not in ("INF", "WDR"):
            return self._reply("?OOR")
        if self.status.moving:
            return self._reply("?NA")
        if arg == "INF":
            self.infused_ml = 0.0
        else:
            self.withdrawn_ml = 0.0
        return self._reply()

    def _cmd_buz(self, arg: str) -> str:
        if not arg:
            return self._reply("1" if self.settings.buzzer else "0")
        if arg[0] not in "01":
            return self._reply("?OOR")
        self.settings.buzzer = arg[0] == "1"
        return self._reply()


def _number(text: str) -> float | None:
    """A number as the pump reads it, or None if it breaks the 4-digit format."""
    if not _NUMBER_RE.fullmatch(text) or text in (".", ""):
        return None
    if sum(c.isdigit() for c in text) > 4:
        return None
    return float(text)


_HANDLERS = {
    "VER": NE1000Model._cmd_ver,
    "DIA": NE1000Model._cmd_dia,
    "RAT": NE1000Model._cmd_rat,
    "VOL": NE1000Model._cmd_vol,
    "DIR": NE1000Model._cmd_dir,
    "RUN": NE1000Model._cmd_run,
    "STP": NE1000Model._cmd_stp,
    "PUR": NE1000Model._cmd_pur,
    "DIS": NE1000Model._cmd_dis,
    "CLD": NE1000Model._cmd_cld,
    "BUZ": NE1000Model._cmd_buz,
}
