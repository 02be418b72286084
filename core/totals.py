"""Running totals that one thread adds to while another reads them (a live status line)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Generic, TypeVar

T = TypeVar("T")


class Totals(Generic[T]):
    """A frozen dataclass of totals behind a lock.

    Writers swap in an updated copy, so a reader's :meth:`snapshot` is always one
    consistent moment, never half of an update, and costs no copying.
    """

    def __init__(self, initial: T) -> None:
        self._lock = threading.Lock()
        self._current = initial

    def snapshot(self) -> T:
        """The totals now (immutable)."""
        with self._lock:
            return self._current

    def update(self, change: Callable[[T], T]) -> None:
        """Replace the totals with ``change(current)``, atomically."""
        with self._lock:
            self._current = change(self._current)

    def count(self, **increments: int) -> None:
        """Add to counters by name."""
        self.update(lambda current: replace(current, **{k: getattr(current, k) + v for k, v in increments.items()}))

    def set(self, **values: object) -> None:
        """Set fields by name."""
        self.update(lambda current: replace(current, **values))
