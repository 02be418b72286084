"""A sliding-window request budget, as CoinGecko enforces calls per minute."""

from __future__ import annotations

from collections import deque


class SlidingWindow:
    """Admits at most ``limit`` requests in any ``window`` seconds.

    Only admitted requests use the budget, so the wait :meth:`admit` reports is exact:
    a client that waits that long is admitted. Not thread-safe; the server calls it
    under its lock.
    """

    def __init__(self, limit: int, window: float = 60.0) -> None:
        if limit < 1:
            raise ValueError(f"the rate limit must be at least 1 request per window, got {limit}")
        self.limit = limit
        self.window = window
        self._admitted: deque[float] = deque()

    def admit(self, now: float) -> float | None:
        """Take a request arriving at ``now``: None if admitted, else seconds until one would be."""
        while self._admitted and self._admitted[0] <= now - self.window:
            self._admitted.popleft()
        if len(self._admitted) < self.limit:
            self._admitted.append(now)
            return None
        return self._admitted[0] + self.window - now
