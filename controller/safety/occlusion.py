"""A blocked needle: the line climbs at Q/C where it should level off.

Three signatures, each tested against the line model (``line_model.py``): during the start
transient a slope that climbs again after it had slowed (at high rates, where a blocked line
climbs far faster than breathing swings); once levelled, the up CUSUM past its limit; and a
level that settles well above where it was (a partial occlusion). A line that never levels
off within five of its longest time constants is blocked too. At low rates, where breathing
swings as fast as a blocked line climbs, the breathing comb (``breath_comb.py``) decides.

And one bound from the physics, whatever was learnt: a healthy line climbing at half of Q/C
or more has at most half of Q x R above its rest (its slope is (Q - (p - rest) / R) / C),
and R is at most the needle path's (viscosity a quarter off) and the stiffest tumour's,
grown by what has gone into it (``LineModel.tissue_max_mmhg_s_per_ml``). A
line above that, still climbing that fast, is blocked. It matters where nothing else can
see the blockage: a viscous drug through a long needle at a low rate rises for minutes,
so a line blocked early in its start only climbs a little straighter than a healthy one
(the population's occlusion@0.2 #33 reached the 900 mmHg limit after 190 s).
"""

from __future__ import annotations

from controller.safety.learnt_limit import LearningRule, LearntLimit, StepHold
from controller.safety.line_model import (
    SHIFT_WINDOW_S,
    SPIKE_HOLD_S,
    LineModel,
    LineState,
)
from controller.safety.persistence import Persistence
from controller.safety.timebase import BLOCK_S
from controller.safety.verdict import Verdict, VerdictKind

REBOUND_PERSIST_S = 0.15  # beyond a small spike's decay
BREATH_REBOUND_PERSIST_S = 0.2
FULL_CLIMB_PERSIST_S = 0.05
LONG_REBOUND_PERSIST_S = 0.5
CLIMB_PERSIST_S = 0.05  # longer than a handling spike's rise lasts
SHIFT_PERSIST_S = 0.5
SHIFT_MIN_MMHG = 25.0
PATH_MARGIN = 1.5  # the catalog's needle path resistance: viscosity and bore this far off
CLIMBING_OF_FULL = 0.5  # the 4 s slope, of Q/C: a line climbing this fast ...
ABOVE_HEALTHY_PERSIST_S = 2.0  # ... for half a breath or more (breathing swings the slope)
# The up CUSUM's limit learnt on the levelled line (``learnt_limit.py``), set by
# ``bench.cusum_margin --direction up`` on the population (``docs/performance.md``)
CLIMB_LEARNT_MARGIN = 1.4
CLIMB_LEARNT_OFFSET_MMHG = 4.0
CLIMB_LEARNT_FLOOR_ENVELOPES = 0.5
CLIMB_LISTEN_BREATHS = 1.0
CLIMB_LISTEN_MIN_S = 4.0
# an upward step in 10 ms of this, or twice what a blocked line climbs in 10 ms, is a
# handling spike: the rest's limit applies until it is ``SPIKE_HOLD_S`` old
CLIMB_SPIKE_STEP_MMHG = 2.0


def healthy_ceiling_mmhg(line: LineModel, climbing_of_full: float = CLIMBING_OF_FULL) -> float:
    """The highest a healthy line climbing at ``climbing_of_full`` of Q/C can stand: its
    slope is (Q - (p - rest) / R) / C, so p - rest is at most (1 - that) x Q x R. At 0, the
    steady pressure of the stiffest tissue: no open line ever stands higher, whatever its
    compliance (the one bound the compliance estimate cannot blur)."""
    r_max = PATH_MARGIN * line.prior.path_resistance_mmhg_s_per_ml + line.tissue_max_mmhg_s_per_ml
    return line.p_rest + (1.0 - climbing_of_full) * line.q_ml_s * r_max + line.envelope


class Occlusion:
    def __init__(self) -> None:
        self._rebound = Persistence(REBOUND_PERSIST_S)
        self._breath_rebound = Persistence(BREATH_REBOUND_PERSIST_S)
        self._full_climb = Persistence(FULL_CLIMB_PERSIST_S)
        self._long_rebound = Persistence(LONG_REBOUND_PERSIST_S)
        self._climb = Persistence(CLIMB_PERSIST_S)
        self._shift = Persistence(SHIFT_PERSIST_S)
        self._above_healthy = Persistence(ABOVE_HEALTHY_PERSIST_S)
        self._above_steady = Persistence(ABOVE_HEALTHY_PERSIST_S)
        # the module's values when built: the margin bench replays others by setting them
        rule = LearningRule(
            CLIMB_LEARNT_MARGIN,
            CLIMB_LEARNT_OFFSET_MMHG,
            CLIMB_LEARNT_FLOOR_ENVELOPES,
            CLIMB_LISTEN_BREATHS,
            CLIMB_LISTEN_MIN_S,
        )
        self._learnt = LearntLimit(rule)
        self._spike = StepHold(SPIKE_HOLD_S)
        self.climb_limit_mmhg = float("inf")  # the up CUSUM's, as last tested

    def learn(self, breath_s: float) -> None:
        """The breathing period found at rest (0: none): how long the up CUSUM's limit
        listens to the levelled line before its own counts."""
        self._learnt.learn(breath_s)

    def on_block(self, t: float, line: LineModel) -> Verdict | None:
        if self._full_climb.holds(t, line.climbing_at_full):
            detail = (
                f"pressure climbing at {line.slope_short:.0f} mmHg/s, the rate of a blocked line "
                f"({line.full_occlusion_slope:.0f} at {60 * line.q_ml_s:g} mL/min): nothing "
                "leaves the line"
            )
            values = {"slope_mmhg_s": line.slope_short, "full_mmhg_s": line.full_occlusion_slope}
            return Verdict(VerdictKind.OCCLUSION, detail, t, values)
        above = self._above_any_healthy_line(t, line)
        if above is not None:
            return above
        if line.state is not LineState.MONITORING:
            self._climb.reset()
            self._learnt.reset()  # the next levelled line is listened to afresh
            return self._during_start(t, line) if line.state is LineState.LEARNING else None
        return self._shifted(t, line) or self._climbing(t, line) or self._long_climb(t, line)

    def _during_start(self, t: float, line: LineModel) -> Verdict | None:
        if self._rebound.holds(t, line.rebounding):
            detail = (
                f"pressure climbing again at {line.slope_short:.1f} mmHg/s during the start (it "
                f"had slowed to {line.min_slope:.1f}; a blocked line climbs at "
                f"{line.full_occlusion_slope:.1f})"
            )
            values = {"slope_mmhg_s": line.slope_short, "min_slope_mmhg_s": line.min_slope}
            return Verdict(VerdictKind.OCCLUSION, detail, t, values)
        if self._breath_rebound.holds(t, line.breath_rebounding):
            slope = line.breath_slope or 0.0
            detail = (
                f"pressure climbing again at {slope:.1f} mmHg/s over the last breath during the "
                f"start (it had slowed to {line.min_breath_slope:.1f}; a blocked line climbs at "
                f"{line.full_occlusion_slope:.1f})"
            )
            values = {"slope_mmhg_s": slope, "min_slope_mmhg_s": line.min_breath_slope}
            return Verdict(VerdictKind.OCCLUSION, detail, t, values)
        return self._long_climb(t, line) or self._never_levelled(t, line)

    def _long_climb(self, t: float, line: LineModel) -> Verdict | None:
        """The 4 s slope (about a breath) only falls from the start on, through the
        levelling and after it; climbing back well beyond what the artifacts swing it is a
        blockage. After the levelling this is what catches a line whose compliance is
        larger than the estimate: it climbs slower than the Q/C the CUSUM's drift is
        sized from, but still far faster than it was creeping."""
        if self._long_rebound.holds(t, line.long_rebounding):
            phase = "during the start" if line.state is LineState.LEARNING else "after levelling"
            detail = (
                f"pressure climbing again at {line.slope:.1f} mmHg/s over 4 s {phase} "
                f"(it had slowed to {line.min_long_slope:.1f}; a blocked line climbs at "
                f"{line.full_occlusion_slope:.1f})"
            )
            values = {"slope_mmhg_s": line.slope, "min_slope_mmhg_s": line.min_long_slope}
            return Verdict(VerdictKind.OCCLUSION, detail, t, values)
        return None

    def _above_any_healthy_line(self, t: float, line: LineModel) -> Verdict | None:
        if line.state is LineState.IDLE:
            self._above_healthy.reset()
            self._above_steady.reset()
            return None
        steady = healthy_ceiling_mmhg(line, 0.0)
        if self._above_steady.holds(t, line.mean_mmhg > steady):
            detail = (
                f"pressure {line.mean_mmhg:.0f} mmHg over the last 4 s: no open line stands "
                f"above {steady:.0f} mmHg at {60 * line.q_ml_s:g} mL/min, the stiffest "
                "tissue's steady pressure; the line is blocked"
            )
            values = {"pressure_mmhg": line.mean_mmhg, "ceiling_mmhg": steady}
            return Verdict(VerdictKind.OCCLUSION, detail, t, values)
        ceiling = healthy_ceiling_mmhg(line)
        climbing = line.slope >= CLIMBING_OF_FULL * line.full_occlusion_slope
        if not self._above_healthy.holds(t, climbing and line.last > ceiling):
            return None
        detail = (
            f"pressure {line.last:.0f} mmHg and still climbing at {line.slope:.1f} mmHg/s: no "
            f"open line stands above {ceiling:.0f} mmHg at {60 * line.q_ml_s:g} mL/min while "
            f"climbing that fast (a blocked line climbs at {line.full_occlusion_slope:.1f})"
        )
        values = {"pressure_mmhg": line.last, "ceiling_mmhg": ceiling, "slope_mmhg_s": line.slope}
        return Verdict(VerdictKind.OCCLUSION, detail, t, values)

    def _never_levelled(self, t: float, line: LineModel) -> Verdict | None:
        if t - line.t_start > line.learn_limit_s:
            return Verdict(
                VerdictKind.OCCLUSION,
                f"pressure still climbing {line.learn_limit_s:.0f} s after "
                "the start: the line never levelled off",
                t,
                {"slope_mmhg_s": line.slope},
            )
        return None

    def _shifted(self, t: float, line: LineModel) -> Verdict | None:
        limit = max(SHIFT_MIN_MMHG, 0.5 * (line.shift_reference - line.p_rest), 2 * line.envelope)
        if not self._shift.holds(t, line.level_shift > limit):
            return None
        detail = (
            f"pressure settled {line.level_shift:.0f} mmHg above its level of the last "
            f"{SHIFT_WINDOW_S:.0f} s: a partial occlusion"
        )
        values = {"shift_mmhg": line.level_shift, "reference_mmhg": line.shift_reference}
        return Verdict(VerdictKind.OCCLUSION, detail, t, values)

    def _climbing(self, t: float, line: LineModel) -> Verdict | None:
        self.climb_limit_mmhg = self.up_limit(t, line)
        if not self._climb.holds(t, line.up > self.climb_limit_mmhg):
            return None
        detail = (
            f"pressure climbed {line.up:.1f} mmHg beyond the line's steady level without levelling "
            f"off (limit {self.climb_limit_mmhg:.1f}; a blocked line climbs at "
            f"{line.full_occlusion_slope:.1f} mmHg/s)"
        )
        limit = self.climb_limit_mmhg
        values = {"cusum_mmhg": line.up, "level_mmhg": line.level, "limit_mmhg": limit}
        return Verdict(VerdictKind.OCCLUSION, detail, t, values)

    def up_limit(self, t: float, line: LineModel) -> float:
        """The up CUSUM's limit now: learnt on this levelled line (``learnt_limit.py``), or
        the rest's while a handling spike's step is fresh (a blocked line climbs at most Q/C,
        so a step of twice that in 10 ms is not one)."""
        beyond = max(CLIMB_SPIKE_STEP_MMHG, 2.0 * line.full_occlusion_slope * BLOCK_S)
        spiked = self._spike.held(t, line.step_mmhg, beyond)
        learnt = self._learnt.limit_mmhg(t, line.up, line.up_limit, line.envelope, learn=not spiked)
        return line.up_limit if spiked else learnt
