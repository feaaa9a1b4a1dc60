"""A levelled line for the unit tests of what reads the line model's CUSUMs (``leak.Fall``,
``occlusion.Occlusion``): the real ``LineModel`` put where they read it, and blocks fed to
a test with a CUSUM held at a value."""

from __future__ import annotations

from collections.abc import Callable

from controller.safety.line_model import LineModel, LineState, RestReference
from controller.safety.timebase import BLOCK_S
from controller.safety.verdict import Verdict


def levelled_line(envelope_mmhg: float = 4.0, rest_limit_mmhg: float = 10.0) -> LineModel:
    """Levelled, both CUSUMs' limits from the rest at ``rest_limit_mmhg``."""
    line = LineModel()
    line.state = LineState.MONITORING
    line.reference = RestReference(10.0, envelope_mmhg)
    line.down_limit = line.up_limit = rest_limit_mmhg
    return line


def hold_cusum(
    on_block: Callable[[float, LineModel], Verdict | None],
    line: LineModel,
    t0: float,
    seconds: float,
    **cusum_mmhg: float,
) -> Verdict | None:
    """``seconds`` of blocks from ``t0`` with the CUSUM named (``up=`` or ``down=``) held at
    its value; the first verdict. A ``step_mmhg`` set before counts for the first block."""
    for k in range(round(seconds / BLOCK_S)):
        for name, value in cusum_mmhg.items():
            setattr(line, name, value)
        verdict = on_block(t0 + k * BLOCK_S, line)
        line.step_mmhg = 0.0
        if verdict is not None:
            return verdict
    return None
