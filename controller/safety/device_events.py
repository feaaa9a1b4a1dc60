"""Verdicts from the devices themselves: the bridge's events and the pump's alarms and volume."""

from __future__ import annotations

from controller.safety.verdict import Verdict, VerdictKind
from drivers.transducer import BridgeEvent, BridgeEventKind
from firmware_bridge.messages import StatusFlag, TripReason

SENSOR_FLAGS = StatusFlag.SENSOR_OPEN | StatusFlag.ADC_SATURATED | StatusFlag.EXCITATION_FAULT
TRIP_KINDS = {
    TripReason.OVER_LIMIT: VerdictKind.OVER_PRESSURE,
    TripReason.SENSOR_FAULT: VerdictKind.SENSOR_FAULT,
    TripReason.WATCHDOG: VerdictKind.LINK_LOST,
}


def bridge_verdict(event: BridgeEvent) -> Verdict | None:
    """What a bridge event means for the injection (None: nothing to stop for)."""
    t = event.t_mono_s
    if event.kind is BridgeEventKind.LINK_LOST:
        return Verdict(VerdictKind.LINK_LOST, f"transducer: {event.detail}", t)
    if event.kind is BridgeEventKind.REBOOTED:
        return Verdict(VerdictKind.LINK_LOST, f"transducer bridge rebooted: {event.detail}", t)
    if (
        event.kind is BridgeEventKind.STATUS
        and event.flags is not None
        and event.flags & SENSOR_FLAGS
    ):
        return Verdict(
            VerdictKind.SENSOR_FAULT, f"bridge reports {(event.flags & SENSOR_FLAGS)!r}", t
        )
    if event.kind is BridgeEventKind.TRIP and event.trip is not None:
        kind = TRIP_KINDS.get(event.trip.reason)
        if kind is not None:
            return Verdict(kind, f"bridge interlock tripped: {event.trip.reason.name}", t)
    if event.kind is BridgeEventKind.LISTENER_FAILED:
        return Verdict(VerdictKind.SOFTWARE_FAULT, event.detail, t)
    return None


def delivery_verdict(
    t: float,
    dispensed_ml: float,
    expected_ml: float,
    tolerance_ml: float,
    tolerance_fraction: float,
) -> Verdict | None:
    """The pump's DIS against time x rate: a slipping or stalled drive disagrees."""
    tolerance = max(tolerance_ml, tolerance_fraction * expected_ml)
    if abs(dispensed_ml - expected_ml) <= tolerance:
        return None
    return Verdict(
        VerdictKind.PUMP_FAULT,
        f"pump reports {dispensed_ml * 1e3:.0f} uL delivered, "
        f"{expected_ml * 1e3:.0f} uL expected by now",
        t,
        {"dispensed_ml": dispensed_ml, "expected_ml": expected_ml},
    )
