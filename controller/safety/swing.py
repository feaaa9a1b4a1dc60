"""How far a comb's output has strayed while infusing: the measure of what the breathing's
irregularity leaves behind, which a few seconds at rest cannot show.

Both combs cancel breathing by comparing the pressure with its value one breath earlier.
A breath longer or deeper than the one before leaves a residue that swings both ways,
while a fault moves the output one way only. Each comb therefore listens for a few
breaths after the line levels off, then tests against twice the largest swing seen the
other way, or either way once old enough that a fault being caught now cannot be in it
(the reference a comb's output is measured from follows it part of the way, so one
direction alone can understate the residue).
Kept as maxima of 0.5 s chunks, so the memory is O(1) per block; never forgotten within
a fill, so a calm minute does not lower the guard against the next deep breath.
"""

from __future__ import annotations

from collections import deque

CHUNK_BLOCKS = 50  # 0.5 s of 10 ms blocks
MARGIN = 2.0
OFFSET_MMHG = 1.5


class SwingMemory:
    def __init__(self, delay_chunks: int = 0) -> None:
        self.delay_chunks = delay_chunks
        self.swing_mmhg = 0.0
        self._chunks: deque[float] = deque()
        self._chunk_max = 0.0
        self._blocks = 0

    def add(self, magnitude_mmhg: float) -> None:
        """One block's excursion (>= 0); it counts once ``delay_chunks`` chunks old."""
        self._chunk_max = max(self._chunk_max, magnitude_mmhg)
        self._blocks += 1
        if self._blocks < CHUNK_BLOCKS:
            return
        self._chunks.append(self._chunk_max)
        self._chunk_max, self._blocks = 0.0, 0
        if len(self._chunks) > self.delay_chunks:
            self.swing_mmhg = max(self.swing_mmhg, self._chunks.popleft())

    def count_all(self) -> None:
        """Count at once everything added so far, however recent: the end of a listening
        period, all of which was taken to be free of faults (a limit that ignored its last
        1.5 s would test against a swing the comb had already seen exceeded)."""
        for chunk in self._chunks:
            self.swing_mmhg = max(self.swing_mmhg, chunk)
        self.swing_mmhg = max(self.swing_mmhg, self._chunk_max)
        self._chunks.clear()
        self._chunk_max, self._blocks = 0.0, 0


def limit_mmhg(floor_mmhg: float, swing_mmhg: float) -> float:
    """Twice the swing plus 1.5 mmHg, never below the floor (what the rest showed)."""
    return max(floor_mmhg, MARGIN * swing_mmhg + OFFSET_MMHG)
