"""A levelled line's CUSUM limit, learnt on that line rather than at rest.

The line model's two CUSUMs (``line_model.py``) get their limits at rest: 1 to 1.5
artifact envelopes + 3 mmHg, because a few seconds there may hold only shallow breaths
and the next may be deeper. The population bench found the late needle-outs and cracks
(down CUSUM) and the late blockages at 0.2 and 1 mL/min (up CUSUM) decided at 2-2.5 times
their breathing. Once the line has levelled, what the CUSUM itself does over a breath
there is a better measure of what breathing, pulse and noise make it do: the drift it
forgives is subtracted in it, and it is the line being tested, not the rest.

So a ``LearntLimit`` listens to the levelled line for ``listen_breaths`` of the breathing
period found at rest (at least ``listen_min_s``), then tests against ``margin`` times the
CUSUM's largest value + ``offset_mmhg``. Never above the rest's limit, so a fault that
begins while it listens (and inflates what it learns) is found as soon as before; never
below ``floor_envelopes`` of the rest's envelope + the offset (a line still creeping as it
listens hides its breaths from the down CUSUM: the population's normal #114). As the combs'
limits do (``swing.py``), it goes on counting the CUSUM's swings once 1.5 s old, so a deeper
breath later raises it and a fault being caught now cannot.

``StepHold``: a handling spike passes the 125 ms median as one step of several mmHg in
10 ms, which no line moves by, and takes it back within a quarter second. The CUSUM counts
it; the learnt limit neither learns from it nor applies while it is that fresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.safety.line_model import MIN_LIMIT_MMHG
from controller.safety.swing import SwingMemory

DELAY_CHUNKS = 3  # a swing counts once 1.5 s old, after any fault was caught


def listening_s(breath_s: float, breaths: float, min_s: float) -> float:
    """How long a learnt limit listens to a levelled line before it counts: ``breaths`` of
    the breathing period found at rest (0: none), never under ``min_s``."""
    return max(min_s, breaths * breath_s)


@dataclass(frozen=True)
class LearningRule:
    """How a CUSUM's limit is learnt on the levelled line (set by the margin benches)."""

    margin: float
    offset_mmhg: float
    floor_envelopes: float
    listen_breaths: float
    listen_min_s: float


class LearntLimit:
    def __init__(self, rule: LearningRule) -> None:
        self.rule = rule
        self.listen_s = rule.listen_min_s
        self._swing = SwingMemory(DELAY_CHUNKS)
        self._listen_until: float | None = None  # None: this fill has not levelled yet
        self._listened = False

    def learn(self, breath_s: float) -> None:
        """The breathing period found at rest (0: none), which sets how long to listen."""
        self.listen_s = listening_s(breath_s, self.rule.listen_breaths, self.rule.listen_min_s)

    def reset(self) -> None:
        """The line is not levelled (a new fill, a pause): listen again when it is."""
        self._listen_until = None

    def limit_mmhg(
        self,
        t: float,
        cusum_mmhg: float,
        rest_limit_mmhg: float,
        envelope_mmhg: float,
        *,
        learn: bool = True,
    ) -> float:
        """The rest's limit while listening; then the least of it and the CUSUM's swing on
        this levelled line times the margin, plus the offset. ``learn``: False where a
        spike is fresh (what is not tested is not learnt from)."""
        rule = self.rule
        if self._listen_until is None:
            self._listen_until, self._listened = t + self.listen_s, False
            self._swing = SwingMemory(DELAY_CHUNKS)
        self._swing.add(cusum_mmhg if learn else 0.0)
        if t < self._listen_until:
            return rest_limit_mmhg
        if not self._listened:
            self._swing.count_all()  # all of the listening counts at once
            self._listened = True
        learnt = rule.margin * self._swing.swing_mmhg + rule.offset_mmhg
        least = max(MIN_LIMIT_MMHG, rule.floor_envelopes * envelope_mmhg + rule.offset_mmhg)
        return min(rest_limit_mmhg, max(least, learnt))


class StepHold:
    """True within ``hold_s`` of a step beyond a size no line moves by in 10 ms."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self._until = -math.inf

    def held(self, t: float, step_mmhg: float, beyond_mmhg: float) -> bool:
        if step_mmhg > beyond_mmhg:
            self._until = t + self.hold_s
        return t < self._until
