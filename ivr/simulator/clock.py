"""The virtual clock: seconds since the call started. Nothing sleeps; a 2-minute hold costs no real time."""
from __future__ import annotations


class VirtualClock:
    def __init__(self, start: float = 0.0):
        self._now = float(start)

    @property
    def now(self) -> float:
        return round(self._now, 3)  # speech estimates are rounded to 0.01 s: keep sums readable and exact enough

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"the clock cannot go back ({seconds} s)")
        self._now += seconds
        return self.now

    def rewind_to(self, moment: float) -> None:
        """Only for a barge-in: the prompt the caller cut short was counted in full before they acted."""
        if moment > self._now:
            raise ValueError("rewind_to goes back, not forward")
        self._now = moment
