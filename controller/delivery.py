"""What the pump delivered when it went quiet before saying so, and the later confirmation.

The record's volume is the pump's own count (DIS: infused less withdrawn). When the pump
link is lost mid-infusion that count cannot be read after the stop, and the last reading
is short by what the pump ran between it and the interlock. The record then carries an
estimate, said to be one: the last reading plus the rate over that time, never beyond the
fill's programmed volume (at which the pump stops by itself, so that is the bound). When
the pump answers again, before anything clears its count, the reading replaces the
estimate if it lies between the last reading and the bound; anything else (a pump that
lost its count in a reset) leaves the estimate and says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controller.device_ops import dis_resolution_ml, net_dispensed_ml
from controller.injection import Injection
from drivers.ne1000 import NE1000
from drivers.ne1000_protocol import PumpError

if TYPE_CHECKING:
    from controller.controller import Controller


def estimate_unread(injection: Injection, rate_ml_min: float, t_stop_s: float) -> dict[str, Any]:
    """Put the estimate in place of the last reading; returns what the record says of it.
    ``t_stop_s`` is when the interlock went out (the verdict's time)."""
    last_ml = injection.fill_delivered_ml
    ran_s = max(0.0, t_stop_s - injection.dis_read_mono_s)
    bound_ml = max(last_ml, injection.fill_target_ml)
    estimate_ml = min(bound_ml, last_ml + rate_ml_min / 60.0 * ran_s)
    injection.fill_delivered_ml = estimate_ml
    injection.delivery_estimate = {
        "source": "estimated: the pump did not answer after the stop",
        "last_reading_ml": round(injection.delivered_before_fill_ml + last_ml, 6),
        "estimate_ml": round(injection.delivered_ml, 6),
        "max_ml": round(injection.delivered_before_fill_ml + bound_ml, 6),
        "ran_after_reading_s": round(ran_s, 3),
        "rate_ml_min": rate_ml_min,
    }
    return injection.delivery_estimate


async def confirm(pump: NE1000, injection: Injection) -> dict[str, Any]:
    """Read the pump's count for an injection whose volume was estimated; returns what the
    record says (``confirmed`` True when the reading replaced the estimate). Raises
    ``PumpError`` while the pump is still quiet."""
    estimate = injection.delivery_estimate
    assert estimate is not None
    fill_ml = await net_dispensed_ml(pump)
    reading_ml = injection.delivered_before_fill_ml + fill_ml
    digit_ml = dis_resolution_ml(estimate["max_ml"])
    low_ml = estimate["last_reading_ml"] - digit_ml
    high_ml = estimate["max_ml"] + digit_ml
    if not low_ml <= reading_ml <= high_ml:
        return {
            "confirmed": False,
            "pump_reading_ml": round(reading_ml, 6),
            "why": "the pump's count is outside what it can have delivered (reset?): "
            "the estimate stands",
        }
    injection.fill_delivered_ml = fill_ml
    injection.delivery_estimate = None
    return {
        "confirmed": True,
        "pump_reading_ml": round(reading_ml, 6),
        "estimate_was_ml": estimate["estimate_ml"],
    }


async def confirm_last(controller: Controller) -> None:
    """Before anything can clear the pump's count (an acknowledgement, the next start):
    confirm the last injection's estimated volume if the pump answers, and record it."""
    injection = controller.active
    if injection is None or injection.delivery_estimate is None:
        return
    try:
        outcome = await confirm(controller.pump, injection)
    except PumpError:
        return  # still quiet: the estimate stands, and the next chance will try again
    event = "delivery_confirmed" if outcome["confirmed"] else "delivery_not_confirmed"
    await controller.record(injection, event, delivered_ml=injection.delivered_ml, **outcome)
