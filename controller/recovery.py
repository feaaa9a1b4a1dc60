"""After a crash: injections the record shows running or paused become ``interrupted``.

The delivered volume is reconciled with the pump's DIS, which counts the current fill only
(it is cleared as each fill begins): the fills before it are in the record
(``before_fill_ml``), so the total is those plus what DIS shows, or what the record last
held if that is more (a pump that lost its count in a power cycle says less, not more).
"""

from __future__ import annotations

import math

from controller.device_ops import net_dispensed_ml
from controller.records import queries
from controller.records.recorder import Recorder, utc_now
from drivers.clock import now_s
from drivers.ne1000 import NE1000
from drivers.ne1000_protocol import PumpError


async def recover_interrupted(recorder: Recorder, pump: NE1000) -> list[str]:
    rows = await recorder.read(queries.injections_in_states, ("running", "paused"))
    if not rows:
        return []
    try:
        fill_ml = await net_dispensed_ml(pump)
    except PumpError:
        fill_ml = math.nan
    for row in rows:
        recorded = row["delivered_ml"] or 0.0
        before_fill = row["before_fill_ml"] or 0.0
        from_pump = before_fill + fill_ml
        reconciled = recorded if math.isnan(from_pump) else max(recorded, from_pump)
        update = dict(row)
        update.update(state="interrupted", ended_utc=utc_now(), delivered_ml=reconciled)
        await recorder.injection(update)
        detail = {
            "recorded_ml": recorded,
            "before_fill_ml": before_fill,
            "pump_dis_fill_ml": None if math.isnan(fill_ml) else fill_ml,
            "delivered_ml": reconciled,
        }
        await recorder.event(row["id"], "interrupted", detail, now_s())
    return [row["id"] for row in rows]
