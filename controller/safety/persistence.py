"""The one rule every detector uses before it speaks: the condition must persist."""

from __future__ import annotations


class Persistence:
    """True once ``condition`` has held continuously for ``hold_s`` (0: at once)."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self._since: float | None = None

    def holds(self, t: float, condition: bool) -> bool:
        if not condition:
            self._since = None
            return False
        if self._since is None:
            self._since = t
        return t - self._since >= self.hold_s

    def reset(self) -> None:
        self._since = None

    @property
    def since(self) -> float | None:
        """When the condition began to hold (None: it does not hold now)."""
        return self._since
