"""Drug leaving the line where it should not: a pressure below the needle's own, or a fall.

``NeedleFloor``: while the pump pushes Q through a needle of known bore and length, the line
must stand at least Q x R (Hagen-Poiseuille, for the drug's catalog viscosity) above the
settled rest pressure, whatever the tissue does beyond the tip. Below that, less the
artifact envelope and the noise, the drug is not going through the needle: a Luer come
apart, a line cut, the needle out of the tissue. Until the line has first risen above that
floor (a viscous drug through a long needle can take a minute) the floor is not armed: a
line that comes apart on its way up is ``Fall``'s (below), which sees it fall from its
peak. Tested on the 10 ms block medians (no filter lag) for ``FLOOR_PERSIST_S``, longer
than a handling spike pulls a block down.

``Fall``: a healthy line at a constant rate never falls (it rises to its level and creeps
up as the tissue fills). Once levelled, the down CUSUM past its limit is a leak, a needle
slipping out of the tumour or the tract opening behind it; during the start, a fall from
the highest pressure reached by more than that limit. The limit set at rest (1 to 1.5
artifact envelopes + 3 mmHg, ``line_model.py``) must allow for a next breath deeper than
the few seen there, and the population's late needle-outs and cracks were found at 2.3-2.5
times their breathing. So the test listens to the levelled line for a breath (at least
``LISTEN_MIN_S``), then tests against what the CUSUM itself did there: ``LEARNT_MARGIN``
times its largest value + ``LEARNT_OFFSET_MMHG``, never above the rest's limit nor below
half the rest's envelope + that offset (``LEARNT_FLOOR_ENVELOPES``; how, in
``learnt_limit.py``). Set by ``bench.cusum_margin`` on the population
(``docs/performance.md``).

And a line that has settled lower: averaged over 4 s (about a breath, so breathing
cancels), under the highest it has stood at since levelling off by 5 mmHg and a tenth of
what the tissue holds, for a second. That is a drop the down CUSUM can miss, its drift
forgiving a slow fall and every breath resetting it: the population's tissue-crack #17 fell
from 77 to 60 mmHg over 8 s as the tract opened and stayed there to the end of the dose,
unseen (CompuFlo's tissue-plane test, in ``domain-facts.md``, is a drop to a plateau held
for 5 s).
"""

from __future__ import annotations

from controller.safety.learnt_limit import LearningRule, LearntLimit, StepHold
from controller.safety.line_model import SPIKE_HOLD_S, LineModel, LineState
from controller.safety.persistence import Persistence
from controller.safety.verdict import Verdict, VerdictKind

FLOOR_OF_NEEDLE = 0.6  # of the catalog's Q x R: viscosity and bore are never that far off
FLOOR_MARGIN_MMHG = 2.0
FLOOR_NOISE_SIGMAS = 4.0
FLOOR_PERSIST_S = 0.15
# the floor is armed once the line has stood this far above it, a whole breathing envelope
# more (armed on a breath's crest, the line's mean may still be under the floor, and the
# next trough below it: the population bench found that at 0.2 mL/min on a long start) ...
ARMED_ABOVE_MMHG = 2.0
ARMED_FOR_S = 0.2  # ... for this long (the start's ramp is not a leak)
FALL_PERSIST_S = 0.05
DROP_MIN_MMHG = 5.0  # the 4 s mean swings less with deep irregular breathing
# ... and a tenth of what the tissue holds: the line's rise above its rest less the needle's
# own drop at this rate (the catalog's Q x R). Tissue may accommodate as it fills; a needle
# does not. A tenth of the whole rise hid needle-outs on viscous lines, where the needle
# carries most of it: population needle-out #29 settled 12.9 mmHg lower from 151 mmHg, its
# limit 14.8 (a tenth of 148) where the tissue held about 40
DROP_OF_TISSUE = 0.1
DROP_PERSIST_S = 1.0  # settled lower, not a deep breath
COLLAPSE_AFTER_S = 0.3  # the pump's first movement after RUN
LISTEN_BREATHS = 1.0  # the levelled line listened to before its own limit counts ...
LISTEN_MIN_S = 4.0  # ... and at least this long (no breathing found: the longest breath)
LEARNT_MARGIN = 1.4
LEARNT_OFFSET_MMHG = 4.0
# ... and never under half the rest's envelope + the offset: a line still creeping up as it
# listens hides its breaths' falls from the CUSUM (the population's normal #114, a 10.5 mmHg
# envelope, listened with the CUSUM at 3.3 mmHg at most, and a later breath took it to 7.6)
LEARNT_FLOOR_ENVELOPES = 0.5
# A downward handling spike: the 125 ms median passes part of it as one step of several mmHg
# in 10 ms, which no line falls by, and takes it back within a quarter second (the
# population's normal #127: a 4.2 mmHg step took the CUSUM to 5.0 of the rest's 5.1 mmHg
# limit). The CUSUM keeps counting; its test waits until such a step is ``SPIKE_HOLD_S``
# old, so a fall that stays is called then (a Luer coming apart is the floor's, at once)
SPIKE_STEP_MMHG = 2.0


class NeedleFloor:
    def __init__(self) -> None:
        self.floor_mmhg = float("-inf")
        self._armed = False
        self._above = Persistence(ARMED_FOR_S)
        self._below = Persistence(FLOOR_PERSIST_S)

    def start(self) -> None:
        self._armed = False
        self._above.reset()
        self._below.reset()

    def on_block(
        self, t: float, line: LineModel, block_mmhg: float, rate_ml_min: float, noise_mmhg: float
    ) -> Verdict | None:
        if line.state is LineState.IDLE:
            return None
        needle_mmhg = FLOOR_OF_NEEDLE * line.prior.needle_drop_mmhg(rate_ml_min / 60.0)
        self.floor_mmhg = (
            line.p_rest
            + needle_mmhg
            - 0.5 * line.envelope
            - FLOOR_NOISE_SIGMAS * noise_mmhg
            - FLOOR_MARGIN_MMHG
        )
        if not self._armed:
            armed_at = self.floor_mmhg + line.envelope + ARMED_ABOVE_MMHG
            self._armed = self._above.holds(t, block_mmhg > armed_at)
            return None
        if not self._below.holds(t, block_mmhg < self.floor_mmhg):
            return None
        detail = (
            f"pressure {block_mmhg:.1f} mmHg while infusing, under the {self.floor_mmhg:.1f} mmHg "
            f"the needle alone must show at {rate_ml_min:g} mL/min (rest {line.p_rest:.1f}): "
            "the line is open or leaking (a Luer come apart?)"
        )
        values = {"pressure_mmhg": block_mmhg, "floor_mmhg": self.floor_mmhg}
        return Verdict(VerdictKind.LEAK, detail, t, values)


class Fall:
    def __init__(self) -> None:
        self._falling = Persistence(FALL_PERSIST_S)
        self._lower = Persistence(DROP_PERSIST_S)
        self._highest_mmhg = float("-inf")  # of the 4 s mean since levelling off
        # the module's values when built: the margin bench replays others by setting them
        rule = LearningRule(
            LEARNT_MARGIN,
            LEARNT_OFFSET_MMHG,
            LEARNT_FLOOR_ENVELOPES,
            LISTEN_BREATHS,
            LISTEN_MIN_S,
        )
        self._learnt = LearntLimit(rule)
        self.limit_mmhg = float("inf")  # the down CUSUM's, as last tested
        self._spike = StepHold(SPIKE_HOLD_S)

    def learn(self, breath_s: float) -> None:
        """The breathing period found at rest (0: none), which sets how long to listen."""
        self._learnt.learn(breath_s)

    def on_block(self, t: float, line: LineModel) -> Verdict | None:
        if line.state is not LineState.MONITORING:
            self._lower.reset()
            self._highest_mmhg = float("-inf")
            self._learnt.reset()
            if line.state is LineState.LEARNING:
                return self._fallen_from_peak(t, line)
            self._falling.reset()
            return None
        spiked = self.spike_held(t, line.step_mmhg)
        self.limit_mmhg = self.down_limit(t, line, learn=not spiked)
        if self._falling.holds(t, line.down > self.limit_mmhg and not spiked):
            return Verdict(
                VerdictKind.LEAK,
                f"pressure fell {line.down:.1f} mmHg below the line's steady level while "
                f"infusing (limit {self.limit_mmhg:.1f})",
                t,
                {"cusum_mmhg": line.down, "level_mmhg": line.level, "limit_mmhg": self.limit_mmhg},
            )
        return self._settled_lower(t, line)

    def spike_held(self, t: float, step_mmhg: float) -> bool:
        """True within ``SPIKE_HOLD_S`` of a downward step of ``SPIKE_STEP_MMHG``."""
        return self._spike.held(t, -step_mmhg, SPIKE_STEP_MMHG)

    def down_limit(self, t: float, line: LineModel, *, learn: bool = True) -> float:
        """The limit the down CUSUM is tested against now (``learnt_limit.py``). ``learn``:
        False where a spike holds the test (what it does not test, it does not learn from)."""
        return self._learnt.limit_mmhg(t, line.down, line.down_limit, line.envelope, learn=learn)

    def _fallen_from_peak(self, t: float, line: LineModel) -> Verdict | None:
        # the peak may be a breath's crest: a fall counts beyond a whole envelope more
        fallen = line.peak - line.last
        if not self._falling.holds(t, fallen > line.down_limit + line.envelope):
            return None
        return Verdict(
            VerdictKind.LEAK,
            f"pressure fell {fallen:.1f} mmHg from the {line.peak:.1f} it had reached during "
            "the start, while infusing",
            t,
            {"fall_mmhg": fallen, "peak_mmhg": line.peak},
        )

    def _settled_lower(self, t: float, line: LineModel) -> Verdict | None:
        mean = line.mean_mmhg
        highest = self._highest_mmhg = max(self._highest_mmhg, mean)
        drop = highest - mean
        tissue_mmhg = highest - line.p_rest - line.prior.needle_drop_mmhg(line.q_ml_s)
        limit = max(DROP_MIN_MMHG, DROP_OF_TISSUE * tissue_mmhg)
        if not self._lower.holds(t, drop > limit):
            return None
        detail = (
            f"pressure settled {drop:.1f} mmHg below the {highest:.1f} it stood at since "
            "levelling off (averaged over 4 s) while infusing: drug leaving by another way "
            "(the tract opened, the needle out of the tumour)"
        )
        values = {"drop_mmhg": drop, "highest_mmhg": highest, "limit_mmhg": limit}
        return Verdict(VerdictKind.LEAK, detail, t, values)
