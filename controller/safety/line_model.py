"""What the line should do: rest pressure, artifact envelope, and a learned first-order model.

At rest (pump still) ``Baseline`` keeps the rest pressure and the peak-to-peak of the
breathing and heartbeat artifacts. When an infusion starts, ``LineModel`` learns the
line's compliance C from the first rise (the slope at the start is Q/C whatever the
resistance) and its resistance R once the pressure levels off; from then on it predicts
the pressure the line should hold (``C dP/dt = Q - (P - P_rest)/R``) and adapts R
slowly, only while the pressure is steady, so tissue filling up is followed but a
blockage is not. ``Occlusion`` and ``Leak`` test the residual.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from controller.safety.verdict import Verdict, VerdictKind

DEFAULT_ENVELOPE_MMHG = 8.0  # when the baseline before the start was too short to measure
MIN_BASELINE_S = 4.0
REBOUND_AFTER_S = 1.0  # from then on the start transient's slope only falls
LEVELLED_FRACTION = 0.25
LEVEL_WINDOW_S = 4.0  # slope for the levelling test: a whole breath, so breathing averages out
LEVEL_TAU_S = 5.0  # the steady level follows slow changes while neither CUSUM is active
BLOCK_S = 0.01
REBOUND_PERSIST_S = 0.1
SPIKE_RISE_MMHG = 8.0  # in 20 ms: 400 mmHg/s, twice what any blocked line can climb
SPIKE_HOLD_S = 0.4  # a handling spike has decayed by then
SHIFT_WINDOW_S = 8.0  # a partial occlusion moves the level this fast; tissue filling does not
SHIFT_EVERY_S = 1.0
SHIFT_PERSIST_S = 0.5
SHIFT_AFTER_S = 15.0
REBOUND_MIN_RATIO = 3.0  # Q/C in mmHg/s against the artifact envelope in mmHg
# a few seconds at rest may hold only shallow breaths: the CUSUM limits may rise above the
# envelope seen there (the breathing comb covers the low rates where they sit at this cap)
CEILING_ENVELOPES = 1.3


@dataclass(frozen=True)
class LinePrior:
    """What the catalogs say: compliance of syringe + line + dome, and the needle path's R."""

    compliance_ml_per_mmhg: float
    path_resistance_mmhg_s_per_ml: float


class Baseline:
    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._points: deque[tuple[float, float]] = deque()

    def add(self, t: float, filtered_mmhg: float) -> None:
        self._points.append((t, filtered_mmhg))
        while self._points and t - self._points[0][0] > self.window_s:
            self._points.popleft()

    def clear(self) -> None:
        self._points.clear()

    def values(self) -> list[float]:
        return [p for _, p in self._points]

    def rest_excursions(self, drift_mmhg_s: float) -> tuple[float, float] | None:
        """How far the up and down CUSUMs climb on the rest signal with this drift: what
        breathing and heartbeat alone make them do. None if the baseline is too short."""
        points = self._points
        if len(points) < 2 or points[-1][0] - points[0][0] < MIN_BASELINE_S:
            return None
        up = down = top_up = top_down = 0.0
        (t_prev, p_prev) = points[0]
        for t, p in points:
            step, spent = p - p_prev, drift_mmhg_s * (t - t_prev)
            up, down = cusum_step(up, down, step, spent)
            top_up, top_down = max(top_up, up), max(top_down, down)
            t_prev, p_prev = t, p
        return top_up, top_down

    def rest(self) -> tuple[float, float]:
        """(rest pressure, artifact peak-to-peak); the envelope is a default if too short."""
        if not self._points:
            return 0.0, DEFAULT_ENVELOPE_MMHG
        values = sorted(p for _, p in self._points)
        n = len(values)
        median = values[n // 2]
        span_s = self._points[-1][0] - self._points[0][0]
        if span_s < MIN_BASELINE_S:
            return median, DEFAULT_ENVELOPE_MMHG
        return median, values[int(n * 0.98) - 1] - values[int(n * 0.02)]


def cusum_step(up: float, down: float, step: float, drift: float) -> tuple[float, float]:
    """One step of both CUSUMs; the downward one drifts at three quarters of the upward
    one's rate (0.3 Q/C against 0.4). Shared by the live detector and the rest baseline,
    whose excursions set the live limits, so the two can never count differently."""
    return max(0.0, up + step - drift), max(0.0, down - step - 0.75 * drift)


class SlidingSlope:
    """Least-squares slope over the last ``n`` equally spaced points, in O(1) per point.

    Running sums of p and j*p over absolute point numbers j; the sums of j and j^2 over a
    window of consecutive integers are closed forms. No list is built on the control path.
    """

    def __init__(self, n: int, dt_s: float) -> None:
        self.n, self.dt_s = n, dt_s
        self._values: deque[float] = deque()
        self._j = -1
        self._sum_p = 0.0
        self._sum_jp = 0.0

    def clear(self) -> None:
        self._values.clear()
        self._sum_p = self._sum_jp = 0.0

    def add(self, value: float) -> float:
        self._j += 1
        self._values.append(value)
        self._sum_p += value
        self._sum_jp += self._j * value
        if len(self._values) > self.n:
            old = self._values.popleft()
            self._sum_p -= old
            self._sum_jp -= (self._j - self.n) * old
        return self.slope()

    def slope(self) -> float:
        m = len(self._values)
        if m < 3:
            return 0.0
        first = self._j - m + 1
        sum_j = m * (first + self._j) / 2.0
        sum_jj = (
            self._j * (self._j + 1) * (2 * self._j + 1) - (first - 1) * first * (2 * first - 1)
        ) / 6.0
        den = m * sum_jj - sum_j * sum_j
        return (m * self._sum_jp - sum_j * self._sum_p) / den / self.dt_s if den > 0 else 0.0


class LineModel:
    """Watches the start transient (its slope may only fall: a rise again is a blockage),
    waits for the line to level off, then runs two CUSUMs on the pressure steps: up (a
    blocked line keeps climbing at Q/C) and down (a leak or a needle out of the tumour
    makes it fall). Each CUSUM's drift is a fraction of Q/C, so the slow rise of tissue
    filling up and the swing of breathing do not accumulate. C comes from the catalog:
    measured at the start it is too easily fooled by a breath."""

    def __init__(self, drift_fraction: float = 0.4) -> None:
        self.drift_fraction = drift_fraction
        self.state = "idle"  # idle, learning, monitoring
        self.q_ml_s = 0.0
        self.p_rest = 0.0
        self.envelope = DEFAULT_ENVELOPE_MMHG
        self.c = 1e-3
        self.prior = LinePrior(1e-3, 1.0)
        self.level = 0.0
        self.slope = 0.0
        self.slope_short = 0.0
        self.min_slope = 0.0
        self.rebounding = False
        self.short_window_s = 1.0
        self.up = 0.0
        self.down = 0.0
        self.t_start = 0.0
        self._last = 0.0
        self._long = SlidingSlope(round(LEVEL_WINDOW_S / BLOCK_S), BLOCK_S)
        self._short = SlidingSlope(100, BLOCK_S)
        self.artifact_until = 0.0
        self.jump_until = 0.0
        self.up_limit = self.down_limit = DEFAULT_ENVELOPE_MMHG + 1.0
        self.t_levelled = 0.0
        self._t_last = 0.0
        self._history: deque[float] = deque(maxlen=round(SHIFT_WINDOW_S / SHIFT_EVERY_S))
        self._next_history_t = 0.0
        self.reference = 0.0

    def start(
        self,
        t: float,
        q_ml_s: float,
        p_rest: float,
        envelope: float,
        prior: LinePrior,
        *,
        rest_excursions: tuple[float, float] | None = None,
    ) -> None:
        self.state, self.q_ml_s, self.p_rest, self.envelope, self.prior = (
            "learning",
            q_ml_s,
            p_rest,
            envelope,
            prior,
        )
        self.c = prior.compliance_ml_per_mmhg
        self.t_start = t
        self.up = self.down = 0.0
        self._last = p_rest
        self.min_slope = self.full_occlusion_slope
        self.rebounding = False
        # long enough to average the artifacts out, short enough to see a blockage soon
        self.short_window_s = min(1.0, max(0.2, 3.0 * envelope / self.full_occlusion_slope))
        # CUSUM thresholds: twice what the artifacts made the CUSUMs do at rest (plus 2 mmHg),
        # never above 1.3 envelopes (+1) nor under 4 mmHg
        ceiling = max(4.0, CEILING_ENVELOPES * envelope + 1.0)
        if rest_excursions is None:
            self.up_limit = self.down_limit = ceiling
        else:
            self.up_limit = min(ceiling, max(4.0, 2.0 * rest_excursions[0] + 2.0))
            self.down_limit = min(ceiling, max(4.0, 2.0 * rest_excursions[1] + 2.0))
        self._long = SlidingSlope(round(LEVEL_WINDOW_S / BLOCK_S), BLOCK_S)
        self._short = SlidingSlope(round(self.short_window_s / BLOCK_S), BLOCK_S)

    def stop(self) -> None:
        self.state = "idle"

    @property
    def full_occlusion_slope(self) -> float:
        """How fast the pressure climbs if nothing leaves the line: Q / C."""
        return self.q_ml_s / self.c

    @property
    def learn_limit_s(self) -> float:
        """A line not levelled off by now is blocked (5 time constants, tissue included)."""
        tissue_max = 6000.0  # 100 mmHg per mL/min
        prior = self.prior
        tau = prior.compliance_ml_per_mmhg * (prior.path_resistance_mmhg_s_per_ml + tissue_max)
        return max(10.0, 5.0 * tau)

    def update(
        self, t: float, filtered: float, fast_rise_mmhg: float = 0.0, block: float | None = None
    ) -> None:
        """``fast_rise_mmhg``: how much the 10 ms block medians rose over the last 20 ms. No
        line climbs that fast; a needle-handling spike does, so the CUSUMs hold still for
        the spike's duration instead of counting its rise and its decay."""
        step, self._last = filtered - self._last, filtered
        self._t_last = t
        self.slope = self._long.add(filtered)
        # the short slope (the start's rebound test, at high rates only) reads the 10 ms block
        # medians: no 125 ms median lag, and the spike hold below keeps spikes out of it
        self.slope_short = self._short.add(filtered if block is None else block)
        if fast_rise_mmhg > SPIKE_RISE_MMHG:
            self.artifact_until = t + SPIKE_HOLD_S
        if abs(fast_rise_mmhg) > SPIKE_RISE_MMHG:
            # A spike either way sits in the short slope's window (block medians, not the
            # median-filtered level the CUSUMs read) until it has decayed and left it; a
            # downward one drags the slope down, then lifts it as it leaves: a false rebound.
            self.jump_until = t + SPIKE_HOLD_S + self.short_window_s
        if t < self.artifact_until:
            return
        if self.state == "learning":
            self._learn(t, filtered)
        elif self.state == "monitoring":
            drift = self.drift_fraction * self.full_occlusion_slope * BLOCK_S
            self.up, self.down = cusum_step(self.up, self.down, step, drift)
            if self.up == 0.0 and self.down == 0.0:
                self.level += (filtered - self.level) * BLOCK_S / LEVEL_TAU_S
            if t >= self._next_history_t:
                self._next_history_t = t + SHIFT_EVERY_S
                self._history.append(filtered)
                self.reference = min(self._history)

    def _learn(self, t: float, filtered: float) -> None:
        age = t - self.t_start
        full = self.full_occlusion_slope
        # Only where a blockage climbs far faster than breathing swings (high rates): there
        # the slope of the start transient may only fall, and a rise again is a blockage.
        if t < self.jump_until:
            self.rebounding = False
        elif age > REBOUND_AFTER_S and full >= REBOUND_MIN_RATIO * self.envelope:
            self.min_slope = max(0.0, min(self.min_slope, self.slope_short))
            self.rebounding = (
                self.min_slope < 0.6 * full
                and self.slope_short > self.min_slope + 0.6 * (full - self.min_slope)
            )
        if age > LEVEL_WINDOW_S + 0.5 and self.slope < LEVELLED_FRACTION * full:
            self.level = self.reference = filtered
            self.t_levelled = t
            self._history.clear()
            self._next_history_t = t
            self.state = "monitoring"

    @property
    def level_shift(self) -> float:
        """How far the pressure now sits above its lowest steady level of the last 20 s."""
        if self.state != "monitoring" or self._t_last - self.t_levelled < SHIFT_AFTER_S:
            return 0.0  # the slow tail of the start transient (tissue compliance) comes first
        return self._last - self.reference


class Occlusion:
    """The upward CUSUM past the artifact envelope for ``persist_s`` (longer than a handling
    spike lasts); or a line that never levels off."""

    def __init__(self, persist_s: float = 0.05) -> None:
        self.persist_s = persist_s
        self._since = -1.0
        self._shift_since = -1.0

    def on_block(self, t: float, line: LineModel) -> Verdict | None:
        if line.state == "learning" and line.rebounding:
            detail = (
                f"pressure climbing again at {line.slope_short:.1f} mmHg/s during the start (it "
                f"had slowed to {line.min_slope:.1f}; a blocked line climbs at "
                f"{line.full_occlusion_slope:.1f})"
            )
            values = {"slope_mmhg_s": line.slope_short, "min_slope_mmhg_s": line.min_slope}
            return self._persisting(
                t, Verdict(VerdictKind.OCCLUSION, detail, t, values), REBOUND_PERSIST_S
            )
        if line.state == "learning" and t - line.t_start > line.learn_limit_s:
            return Verdict(
                VerdictKind.OCCLUSION,
                f"pressure still climbing {line.learn_limit_s:.0f} s after "
                "the start: the line never levelled off",
                t,
                {"slope_mmhg_s": line.slope},
            )
        if line.state != "monitoring":
            self._since = -1.0
            return None
        shift_limit = max(25.0, 0.5 * (line.reference - line.p_rest), 2.0 * line.envelope)
        if line.level_shift > shift_limit:
            detail = (
                f"pressure settled {line.level_shift:.0f} mmHg above its level of the last "
                f"{SHIFT_WINDOW_S:.0f} s: a partial occlusion"
            )
            values = {"shift_mmhg": line.level_shift, "reference_mmhg": line.reference}
            shifted = self._persisting_shift(t, Verdict(VerdictKind.OCCLUSION, detail, t, values))
            if shifted is not None:
                return shifted
        else:
            self._shift_since = -1.0
        threshold = line.up_limit
        if line.up <= threshold:
            self._since = -1.0
            return None
        detail = (
            f"pressure climbed {line.up:.1f} mmHg beyond the line's steady level without levelling "
            f"off (a blocked line climbs at {line.full_occlusion_slope:.1f} mmHg/s)"
        )
        values = {"cusum_mmhg": line.up, "level_mmhg": line.level}
        return self._persisting(
            t, Verdict(VerdictKind.OCCLUSION, detail, t, values), self.persist_s
        )

    def _persisting_shift(self, t: float, verdict: Verdict) -> Verdict | None:
        if self._shift_since < 0:
            self._shift_since = t
        return verdict if t - self._shift_since >= SHIFT_PERSIST_S else None

    def _persisting(self, t: float, verdict: Verdict, persist_s: float) -> Verdict | None:
        if self._since < 0:
            self._since = t
        return verdict if t - self._since >= persist_s else None


class Leak:
    """Pressure below rest while infusing (collapse), or the downward CUSUM past its limit."""

    def __init__(self, collapse_s: float = 0.05, persist_s: float = 0.05) -> None:
        self.collapse_s = collapse_s
        self.persist_s = persist_s
        self._collapse_since = -1.0
        self._below_since = -1.0

    def on_block(self, t: float, line: LineModel, filtered: float) -> Verdict | None:
        if line.state == "idle" or t - line.t_start < 0.3:
            self._collapse_since = -1.0
            return None
        collapse_at = line.p_rest - 0.5 * line.envelope - 3.0  # a deep breath reaches envelope/2
        if filtered < collapse_at:
            if self._collapse_since < 0:
                self._collapse_since = t
            if t - self._collapse_since >= self.collapse_s:
                return Verdict(
                    VerdictKind.LEAK,
                    f"pressure collapsed to {filtered:.1f} mmHg while infusing "
                    f"(rest {line.p_rest:.1f})",
                    t,
                    {"pressure_mmhg": filtered},
                )
        else:
            self._collapse_since = -1.0
        if line.state != "monitoring":
            return None
        threshold = max(line.down_limit, 0.1 * (line.level - line.p_rest))
        if line.down <= threshold:
            return None
        return Verdict(
            VerdictKind.LEAK,
            f"pressure fell {line.down:.1f} mmHg below the line's steady level while infusing",
            t,
            {"cusum_mmhg": line.down, "level_mmhg": line.level},
        )
