"""A request budget that no window of ``window_seconds`` can exceed, retries included.

A token bucket allows bursts: with capacity N it lets 2N requests through some
60-second windows, and a per-minute limit on CoinGecko's side then answers 429. This
is a sliding-window log instead: a request may start only when fewer than N requests
have *finished* within the last window and fewer than N are in flight. Counting from
the end of each request (not its start) keeps the promise as the server measures it,
whatever the network latency of each request was.

``block_until`` lets a ``Retry-After`` hold every later request back, the next
poll's included.

Time is read from an injected ``clock`` (``time.monotonic`` by default), so a test can
replay minutes of requests on a clock it moves itself, without waiting them out.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from producer.errors import GaveUp


class RequestBudget:
    """At most ``max_requests`` requests in any ``window_seconds``.

    Usage::

        budget = RequestBudget(10, 60.0)
        with budget.slot(deadline=time.monotonic() + 30, stop=stop_event):
            send_request()

    Deadlines and moments are values of ``clock`` (``time.monotonic()`` unless one is
    injected). A wait for a free slot is a real wait of the clock's difference: a test
    on a clock that moves only when told gives deadlines no wait fits in. Thread-safe.
    """

    def __init__(
        self, max_requests: int, window_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_requests < 1 or window_seconds <= 0:
            raise ValueError(f"need max_requests >= 1 and window_seconds > 0, got {max_requests}, {window_seconds}")
        self.max_requests = max_requests
        self.window_seconds = window_seconds
        self.clock = clock
        self._finished: deque[float] = deque()
        self._in_flight = 0
        self._blocked_until = 0.0
        self._changed = threading.Condition()

    def block_until(self, moment: float) -> None:
        """Start no request before ``moment`` (a time of the clock), e.g. after a 429."""
        with self._changed:
            self._blocked_until = max(self._blocked_until, moment)

    @contextmanager
    def slot(self, *, deadline: float, stop: threading.Event | None = None) -> Iterator[None]:
        """Hold one request slot for the duration of the block.

        Raises :class:`GaveUp` when no slot frees up before ``deadline`` or ``stop``
        is set while waiting; then no request was sent.
        """
        self._acquire(deadline, stop)
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._finished.append(self.clock())
                self._changed.notify_all()

    def _acquire(self, deadline: float, stop: threading.Event | None) -> None:
        with self._changed:
            while True:
                now = self.clock()
                while self._finished and self._finished[0] <= now - self.window_seconds:
                    self._finished.popleft()
                ready_at = max(now, self._blocked_until)
                if self._in_flight + len(self._finished) >= self.max_requests:
                    if self._finished:
                        ready_at = max(ready_at, self._finished[0] + self.window_seconds)
                    else:  # every slot is in flight: wait for one to finish
                        ready_at = max(ready_at, now + self.window_seconds)
                if ready_at <= now:
                    self._in_flight += 1
                    return
                if stop is not None and stop.is_set():
                    raise GaveUp("shutting down: no request slot is free now")
                if ready_at > deadline:
                    raise GaveUp(
                        f"the next request slot frees up in {ready_at - now:.1f} s, after the poll's deadline "
                        f"({self.max_requests} requests per {self.window_seconds:g} s, Retry-After included)"
                    )
                # Wake up early enough to notice a stop request promptly.
                self._changed.wait(min(ready_at - now, 0.25) if stop is not None else ready_at - now)
