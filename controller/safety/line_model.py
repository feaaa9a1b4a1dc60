"""What the line should do while infusing: the start transient, its level, and two CUSUMs.

When an infusion starts, ``LineModel`` watches the start transient (its slope, averaged
over a breath, may only fall: a rise again is a blockage) and waits for the line to level
off, then runs two CUSUMs on the pressure steps: up (a blocked line keeps climbing at Q/C)
and down (a healthy line at a constant rate never falls: a leak, a needle out of the
tumour or the tract opening makes it fall). The up CUSUM's drift is a fraction of Q/C, so
the slow rise of tissue filling up does not accumulate; the down one's is small and fixed.
Breathing and pulse swing both ways: the limits are what the same CUSUMs did on the rest
signal, bounded by the artifact envelope. C is the compliance measured at the start
(``compliance.py``), the catalog's until then. The 4 s slope's rebound test runs from the
start through the levelling and after it: a line softer than the estimate climbs, once
blocked, below the up CUSUM's drift, but far faster than the creep it had slowed to.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from controller.safety.rest import cusum_step
from controller.safety.slopes import SHORT_WINDOWS_S, SWING_RATIO, SlidingSlope, quiet_window
from controller.safety.timebase import BLOCK_S

DEFAULT_ENVELOPE_MMHG = 8.0
REBOUND_AFTER_S = 1.0  # from then on the start transient's slope only falls
LEVELLED_FRACTION = 0.25
LEVEL_WINDOW_S = 4.0  # slope for the levelling test: a whole breath, so breathing averages out
LEVEL_TAU_S = 5.0  # the steady level follows slow changes while neither CUSUM is active
SPIKE_RISE_MMHG = 8.0  # in 20 ms: 400 mmHg/s, twice what any blocked line can climb
# the short slope (the fast tests) is held by smaller jumps: a 3 mmHg spike swings a
# 0.2 s slope by 30 mmHg/s; 4 mmHg in 20 ms is still faster than a blocked line climbs
SLOPE_SPIKE_MMHG = 4.0
SPIKE_HOLD_S = 0.4  # a handling spike has decayed by then
SHIFT_WINDOW_S = 8.0  # a partial occlusion moves the level this fast; tissue filling does not
SHIFT_EVERY_S = 1.0
SHIFT_AFTER_S = 15.0
REBOUND_MIN_RATIO = 5.0  # Q/C in mmHg/s against the artifact envelope in mmHg
UP_DRIFT_OF_FULL = 0.3  # of Q/C above the line's own creep: what the up CUSUM forgives
CREEP_TAU_S = 10.0  # the line's own slow climb (tissue filling up), followed while steady
MIN_SHORT_WINDOW_S = 0.5  # the rebound test's slope: at least a heartbeat long ...
FAST_LINE_ENVELOPES = 6.0  # ... unless Q/C (mmHg/s) is this many artifact envelopes (mmHg)
FULL_CLIMB_FRACTION = 0.6  # a line climbing this close to Q/C lets almost nothing out (0.8
# missed a blocked line whose compliance the start-up fit had put 30 % too low) ...
SLOWED_FRACTION = 0.5  # ... once its start transient had slowed below this
FAST_MIN_MMHG_S = 25.0  # ... and at least this: breaths deeper than any at rest swing less
SWING_MARGIN = 2.0  # and a rebound must climb this many swings
LONG_REBOUND_FRACTION = 0.3  # of the way back from the slowest 4 s slope to Q/C
# ... and, for the 4 s and the breath-cancelled slopes alike, this many of that slope's
# swings at rest: from a breath's trough to its crest a slope moves two swings, so two (the
# first rule) let an irregular breath through (population normals #117, a slow viscous
# start, and #371, deep irregular breathing that cancels imperfectly)
REBOUND_SWING_MARGIN = 3.0
BREATH_REBOUND_FRACTION = 0.5  # of the way back from the slowest slope to Q/C
BREATH_REBOUND_AFTER_S = 0.5  # of breath-cancelled slopes before the slowest one counts
DOWN_DRIFT_MMHG_S = 1.0  # what the down CUSUM forgives each second
# a few seconds at rest may hold only shallow breaths: the CUSUM limits may rise above the
# envelope seen there (the combs cover the low rates where they sit at this cap)
CEILING_ENVELOPES = 1.5
FLOOR_ABOVE_ENVELOPE_MMHG = 3.0
MIN_LIMIT_MMHG = 4.0
TISSUE_MAX_MMHG_S_PER_ML = 20_000.0  # the stiffest tumour's resistance, for the learn limit
# and it grows as the tissue fills: by this much per mL injected at most (the catalog's
# lymph node, config/tissues.toml); a second aliquot into a node swollen by the first
# stood above the ungrown bound, healthy (population normal #145)
TISSUE_GROWTH_MAX_PER_ML = 1.2
COMPLIANCE_MAX_OF_PRIOR = 2.3


class LineState(enum.StrEnum):
    IDLE = "idle"
    LEARNING = "learning"  # the start transient: waiting for the line to level off
    MONITORING = "monitoring"  # levelled: the CUSUMs run


@dataclass(frozen=True)
class LinePrior:
    """What the catalogs say: compliance of syringe + line + dome, and the needle path's R."""

    compliance_ml_per_mmhg: float
    path_resistance_mmhg_s_per_ml: float

    def needle_drop_mmhg(self, q_ml_s: float) -> float:
        """What the needle path alone holds at ``q_ml_s`` (the catalog's Q x R): the part
        of the line's rise that stays while the drug goes into the tissue."""
        return q_ml_s * self.path_resistance_mmhg_s_per_ml


@dataclass(frozen=True)
class RestReference:
    """The settled line before the first fill: what every fill of the injection compares with."""

    p_rest: float
    envelope: float


class LineModel:
    def __init__(self) -> None:
        self.state = LineState.IDLE
        self.q_ml_s = 0.0
        self.reference = RestReference(0.0, DEFAULT_ENVELOPE_MMHG)
        self.prior = LinePrior(1e-3, 1.0)
        self.c = 1e-3
        self.level = 0.0
        self.slope = 0.0
        self.slope_short = 0.0
        self.min_slope = 0.0
        self.rebounding = False
        self.short_window_s = 1.0
        self.up = self.down = 0.0
        self.step_mmhg = 0.0  # the filtered pressure's last step (10 ms)
        self.up_limit = self.down_limit = DEFAULT_ENVELOPE_MMHG + 1.0
        self.t_start = self.t_levelled = 0.0
        self.artifact_until = self.jump_until = 0.0
        self.shift_reference = 0.0
        self.peak = 0.0  # the highest pressure since the start (outside spikes)
        self.creep_mmhg_s = 0.0  # the levelled line's own slow climb
        self.slope_swing = 0.0  # the artifacts' swing of the short slope at rest (mmHg/s)
        self.long_swing = 0.0  # and of the 4 s slope
        self.min_long_slope = 0.0
        self.long_rebounding = False
        self.first_slope = 0.0  # the fastest short slope in the start's first second
        self.heart_period_s = 0.0
        self.injected_before_ml = 0.0
        self.breath_swing_mmhg_s = 0.0  # how far the breath-cancelled slope strayed at rest
        self.breath_slope: float | None = None  # slope over the last breath, breathing cancelled
        self.min_breath_slope = 0.0
        self.breath_rebounding = False
        self._breath_slope_since = -1.0
        self._last = 0.0
        self._t_last = 0.0
        self._long = SlidingSlope(round(LEVEL_WINDOW_S / BLOCK_S), BLOCK_S)
        self._short = SlidingSlope(100, BLOCK_S)
        self._swings: dict[float, float] = {}  # short window (s) -> its swing at rest
        self._history: deque[float] = deque(maxlen=round(SHIFT_WINDOW_S / SHIFT_EVERY_S))
        self._next_history_t = 0.0

    @property
    def last(self) -> float:
        """The newest filtered pressure."""
        return self._last

    @property
    def mean_mmhg(self) -> float:
        """The filtered pressure averaged over the 4 s slope's window (about a breath)."""
        return self._long.mean()

    @property
    def p_rest(self) -> float:
        return self.reference.p_rest

    @property
    def envelope(self) -> float:
        return self.reference.envelope

    def start(
        self,
        t: float,
        q_ml_s: float,
        *,
        reference: RestReference,
        prior: LinePrior,
        compliance_ml_per_mmhg: float,
        now_mmhg: float,
        rest_excursions: tuple[float, float] | None,
        heart_period_s: float = 0.0,
        slope_swing: Callable[[float], float] | None = None,
        injected_ml: float = 0.0,
        breath_swing_mmhg_s: float = 0.0,
    ) -> None:
        """The pump starts at ``t`` with the line at ``now_mmhg`` (its rest, or still
        decaying from the last fill); ``injected_ml`` went in before this fill."""
        self.state, self.q_ml_s, self.reference, self.prior = (
            LineState.LEARNING,
            q_ml_s,
            reference,
            prior,
        )
        self.t_start = t
        self.up = self.down = 0.0
        self._last = now_mmhg
        self.peak = now_mmhg
        self.heart_period_s = heart_period_s
        self.injected_before_ml = injected_ml
        self.breath_swing_mmhg_s = breath_swing_mmhg_s
        self.c = compliance_ml_per_mmhg
        # what breathing, pulse and noise alone do to the short slope, measured at rest for
        # every window it may take (the rest is gone once the pump runs, and the window may
        # lengthen when the compliance is measured)
        self._swings = {w: slope_swing(w) for w in SHORT_WINDOWS_S} if slope_swing else {}
        self._start_windows()
        if slope_swing is None:
            self.slope_swing = self.long_swing = 0.0
        else:  # the window chosen is usually one just measured: not measured twice
            known = self._swings.get(self.short_window_s)
            self.slope_swing = slope_swing(self.short_window_s) if known is None else known
            self.long_swing = slope_swing(LEVEL_WINDOW_S)
        self.min_long_slope = math.inf  # no slope seen yet (never the prior's Q/C: see below)
        self.long_rebounding = False
        self.first_slope = 0.0
        self.rebounding = self.breath_rebounding = False
        self.breath_slope, self._breath_slope_since = None, -1.0
        self.creep_mmhg_s = 0.0
        envelope = reference.envelope
        # Twice what the artifacts made the CUSUMs do at rest (+2), but never less than one
        # whole envelope (+3: a few seconds at rest may hold one shallow breath and the next
        # is deeper) nor more than the ceiling
        ceiling = max(MIN_LIMIT_MMHG, CEILING_ENVELOPES * envelope + FLOOR_ABOVE_ENVELOPE_MMHG)
        floor = max(MIN_LIMIT_MMHG, envelope + FLOOR_ABOVE_ENVELOPE_MMHG)
        if rest_excursions is None:
            self.up_limit = self.down_limit = ceiling
        else:
            up, down = (2.0 * x + 2.0 for x in rest_excursions)
            self.up_limit = min(ceiling, max(floor, up))
            self.down_limit = min(ceiling, max(floor, down))
        self._long = SlidingSlope(round(LEVEL_WINDOW_S / BLOCK_S), BLOCK_S)

    def set_compliance(self, c_ml_per_mmhg: float) -> None:
        """C measured at the start: everything scaled by Q/C follows from now on. A softer
        line than the catalog's climbs slower when blocked, so the short slope may need a
        longer window for the fast tests to stay above the artifacts' swing; its slowest
        slope starts again with it (a shorter window's noisier minimum would inflate a
        rebound)."""
        self.c = c_ml_per_mmhg
        if not self._swings:
            return
        window = quiet_window(self.short_window_s, self.full_occlusion_slope, self._swings.get)
        if window != self.short_window_s:
            self._use_short_window(window)
            self.slope_swing = self._swings[window]
            # a slope of a few points is noise: its tests wait until the window is full
            self.jump_until = max(self.jump_until, self._t_last + window)

    def _start_windows(self) -> None:
        full = self.full_occlusion_slope
        window = min(1.0, max(0.2, 3.0 * self.envelope / full)) if full else 1.0
        if full < FAST_LINE_ENVELOPES * self.envelope:
            # a pulse swings the slope of a window shorter than a heartbeat by tens of
            # mmHg/s, which a start transient would take for a rebound; at the highest
            # rates a blocked line climbs so much faster that it cannot
            window = max(window, self.heart_period_s or MIN_SHORT_WINDOW_S)
        if self._swings and full:
            window = quiet_window(window, full, self._swings.get)
        self._use_short_window(window)
        # The slowest slopes are of what the line did, never seeded with Q/C: a prior Q/C
        # below the truth (a stiffer line than the catalog's) seeded a "slowest" the line
        # never went down to, and a healthy start climbing at its own Q/C then looked like
        # a rebound (false occlusions in 3 of 270 population runs, issue 17)
        self.min_breath_slope = math.inf

    def _use_short_window(self, window_s: float) -> None:
        """A new short slope over ``window_s``; its slowest slope starts again with it."""
        self.short_window_s = window_s
        self._short = SlidingSlope(round(window_s / BLOCK_S), BLOCK_S)
        self.min_slope = math.inf

    def stop(self) -> None:
        self.state = LineState.IDLE

    @property
    def full_occlusion_slope(self) -> float:
        """How fast the pressure climbs if nothing leaves the line: Q / C."""
        return self.q_ml_s / self.c

    @property
    def up_drift_mmhg_s(self) -> float:
        """The line's own creep, and a fraction of the rest of the way to Q/C."""
        creep = max(0.0, self.creep_mmhg_s)
        return creep + UP_DRIFT_OF_FULL * max(0.0, self.full_occlusion_slope - creep)

    def update_breath_slope(self, t: float, slope_mmhg_s: float | None) -> None:
        """The slope over the last breath with breathing cancelled (the breathing comb's),
        or None while the comb has no valid value."""
        if slope_mmhg_s is None:
            self.breath_slope = None
            self._breath_slope_since = -1.0
            return
        if self._breath_slope_since < 0:
            self._breath_slope_since = t
        self.breath_slope = slope_mmhg_s

    @property
    def tissue_max_mmhg_s_per_ml(self) -> float:
        """The stiffest tissue's resistance, grown by what has gone into it so far."""
        injected_ml = self.injected_before_ml + self.q_ml_s * max(0.0, self._t_last - self.t_start)
        return TISSUE_MAX_MMHG_S_PER_ML * (1.0 + TISSUE_GROWTH_MAX_PER_ML * injected_ml)

    @property
    def learn_limit_s(self) -> float:
        """A line not levelled off by now is blocked (5 time constants, the stiffest
        tumour and the softest line included)."""
        c_max = COMPLIANCE_MAX_OF_PRIOR * self.prior.compliance_ml_per_mmhg
        tau = c_max * (self.prior.path_resistance_mmhg_s_per_ml + TISSUE_MAX_MMHG_S_PER_ML)
        return max(10.0, 5.0 * tau)

    def update(self, t: float, filtered: float, jump_mmhg: float, block: float) -> None:
        """One block. ``jump_mmhg``: how far the block medians moved in the last 20 ms; no
        line climbs that fast, a needle-handling spike does, so the CUSUMs hold still for
        the spike's duration instead of counting its rise and its decay."""
        step, self._last = filtered - self._last, filtered
        self.step_mmhg = step
        self._t_last = t
        self.slope = self._long.add(filtered)
        # the short slope (the start's rebound test) reads the 10 ms block medians where a
        # blocked line climbs much faster than anything else moves (no 125 ms median lag; the
        # spike hold keeps large spikes out); else the median, which small spikes do not pass
        fast = self.full_occlusion_slope >= FAST_LINE_ENVELOPES * self.envelope
        self.slope_short = self._short.add(block if fast else filtered)
        if jump_mmhg > SPIKE_RISE_MMHG:
            self.artifact_until = t + SPIKE_HOLD_S
        if abs(jump_mmhg) > SLOPE_SPIKE_MMHG:
            # A spike either way sits in the short slope's window until it has decayed and
            # left it; a downward one drags the slope down, then lifts it: a false rebound.
            self.jump_until = t + SPIKE_HOLD_S + self.short_window_s
        if t < self.artifact_until:
            return
        self.peak = max(self.peak, filtered)
        started = self.state is not LineState.IDLE and t - self.t_start > REBOUND_AFTER_S
        if started and t >= self.jump_until:
            self.min_slope = max(0.0, min(self.min_slope, self.slope_short))
        if self.state is LineState.LEARNING:
            self._learn(t, filtered)
        elif self.state is LineState.MONITORING:
            self._monitor(t, filtered, step)

    def _monitor(self, t: float, filtered: float, step: float) -> None:
        self._long_rebound(t - self.t_start, self.full_occlusion_slope)
        self.up, self.down = cusum_step(
            self.up, self.down, step, self.up_drift_mmhg_s * BLOCK_S, DOWN_DRIFT_MMHG_S * BLOCK_S
        )
        if self.up == 0.0 and self.down == 0.0:
            self.level += (filtered - self.level) * BLOCK_S / LEVEL_TAU_S
            self.creep_mmhg_s += (self.slope - self.creep_mmhg_s) * BLOCK_S / CREEP_TAU_S
        if t >= self._next_history_t:
            self._next_history_t = t + SHIFT_EVERY_S
            self._history.append(filtered)
            self.shift_reference = min(self._history)

    def _learn(self, t: float, filtered: float) -> None:
        age = t - self.t_start
        full = self.full_occlusion_slope
        # Only where a blockage climbs far faster than breathing swings (high rates): there
        # the slope of the start transient may only fall, and a rise again is a blockage.
        if t < self.jump_until:
            self.rebounding = False
        elif age <= REBOUND_AFTER_S:
            self.first_slope = max(self.first_slope, self.slope_short)
        elif self.fast_rebound_applies:
            # what the start's own first rise showed, if more than the estimate: a blocked
            # line climbs at least that fast, and a healthy one never climbs back to it
            full = max(full, self.first_slope)
            climb = self.slope_short - self.min_slope
            self.rebounding = (
                self.min_slope < 0.6 * full
                and climb > 0.6 * (full - self.min_slope)
                and climb > SWING_MARGIN * self.slope_swing
            )
        self._breath_rebound(t, full)
        self._long_rebound(age, full)
        # a line falling from its peak has not levelled off (it is open: the fall test,
        # which needs a few blocks, must not lose it to a level taken at the bottom)
        falling = self.peak - filtered > self.down_limit + self.envelope
        if age > LEVEL_WINDOW_S + 0.5 and self.slope < LEVELLED_FRACTION * full and not falling:
            self.creep_mmhg_s = max(0.0, self.slope)
            self.level = self.shift_reference = filtered
            self.t_levelled = t
            self._history.clear()
            self._next_history_t = t
            self.state = LineState.MONITORING

    def _long_rebound(self, age: float, full: float) -> None:
        """At any rate, with or without a breathing rhythm: the 4 s slope (about a breath)
        of a healthy start only falls; climbing back well beyond what the artifacts swing
        it is a blockage. Slower than the other tests, it covers what they cannot."""
        if age < LEVEL_WINDOW_S + 0.5:
            return
        self.min_long_slope = max(0.0, min(self.min_long_slope, self.slope))
        full = max(full, self.first_slope)
        low = self.min_long_slope
        margin = max(LONG_REBOUND_FRACTION * (full - low), REBOUND_SWING_MARGIN * self.long_swing)
        self.long_rebounding = low < 0.6 * full and self.slope > low + margin

    def _breath_rebound(self, t: float, full: float) -> None:
        """At any rate: the slope over the last breath (breathing cancelled) may only fall
        during the start transient; climbing back toward Q/C is a blockage."""
        slope = self.breath_slope
        if slope is None or t < self.jump_until:
            self.breath_rebounding = False
            return
        if t - self._breath_slope_since < BREATH_REBOUND_AFTER_S:
            return
        self.min_breath_slope = max(0.0, min(self.min_breath_slope, slope))
        full = max(full, self.first_slope)
        low = self.min_breath_slope
        margin = max(
            BREATH_REBOUND_FRACTION * (full - low), REBOUND_SWING_MARGIN * self.breath_swing_mmhg_s
        )
        self.breath_rebounding = low < 0.6 * full and slope > low + margin

    @property
    def climbing_at_full(self) -> bool:
        """The short slope near Q/C, where breathing cannot swing it that far: nothing is
        leaving the line (tested once the start's own first rise is over)."""
        full = self.full_occlusion_slope
        return (
            self.state is LineState.MONITORING
            and self._t_last >= self.jump_until
            and self.fast_rebound_applies
            and self.min_slope < SLOWED_FRACTION * full  # the start's own rise is over
            and self.slope_short >= FULL_CLIMB_FRACTION * full
            and self.slope_short - self.min_slope > SWING_MARGIN * self.slope_swing
        )

    @property
    def fast_rebound_applies(self) -> bool:
        """Where a blocked line climbs far faster than the artifacts swing the slope (high
        rates); elsewhere the breath-cancelled tests decide."""
        full = self.full_occlusion_slope
        return (
            full >= FAST_MIN_MMHG_S
            and full >= REBOUND_MIN_RATIO * self.envelope
            and full >= SWING_RATIO * self.slope_swing
        )

    @property
    def level_shift(self) -> float:
        """How far the pressure now sits above its lowest steady level of the last 8 s."""
        if self.state is not LineState.MONITORING or self._t_last - self.t_levelled < SHIFT_AFTER_S:
            return 0.0  # the slow tail of the start transient (tissue compliance) comes first
        return self._last - self.shift_reference
