"""What the devices' own events mean: the contract's alarm kinds, or nothing."""

from __future__ import annotations

import pytest

from controller.safety.device_events import bridge_verdict, delivery_verdict
from controller.safety.verdict import VerdictKind
from drivers.transducer import BridgeEvent
from drivers.transducer import BridgeEventKind as K
from firmware_bridge.messages import StatusFlag, Trip, TripReason


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (BridgeEvent(K.LINK_LOST, 1.0, "no sample for 20 ms"), VerdictKind.LINK_LOST),
        (
            BridgeEvent(K.STATUS, 1.0, "x", flags=StatusFlag.SENSOR_OPEN | StatusFlag.STREAMING),
            VerdictKind.SENSOR_FAULT,
        ),
        (
            BridgeEvent(K.TRIP, 1.0, "x", trip=Trip(TripReason.OVER_LIMIT, 1, 1)),
            VerdictKind.OVER_PRESSURE,
        ),
        (
            BridgeEvent(K.TRIP, 1.0, "x", trip=Trip(TripReason.WATCHDOG, 1, 1)),
            VerdictKind.LINK_LOST,
        ),
        (BridgeEvent(K.REBOOTED, 1.0, "x"), VerdictKind.LINK_LOST),
        (BridgeEvent(K.LISTENER_FAILED, 1.0, "x raised"), VerdictKind.SOFTWARE_FAULT),
    ],
)
def test_bridge_events_become_the_contracts_alarm_kinds(
    event: BridgeEvent, kind: VerdictKind
) -> None:
    verdict = bridge_verdict(event)
    assert verdict is not None and verdict.kind is kind


@pytest.mark.parametrize(
    "event",
    [
        BridgeEvent(K.STATUS, 1.0, "x", flags=StatusFlag.STREAMING),
        BridgeEvent(K.TRIP, 1.0, "x", trip=Trip(TripReason.HOST_COMMAND, 1, 1)),
        BridgeEvent(K.SAMPLES_LOST, 1.0, "3 samples lost"),
        BridgeEvent(K.LINK_RESTORED, 1.0, "samples flow again"),
    ],
)
def test_events_that_stop_nothing(event: BridgeEvent) -> None:
    assert bridge_verdict(event) is None


def test_delivery_disagreeing_with_the_rate_is_a_pump_fault() -> None:
    assert delivery_verdict(10.0, 0.100, 0.105, 0.02, 0.1) is None  # within 20 uL
    verdict = delivery_verdict(10.0, 0.050, 0.200, 0.02, 0.1)
    assert verdict is not None and verdict.kind is VerdictKind.PUMP_FAULT
    assert "50 uL delivered, 200 uL expected" in verdict.detail
