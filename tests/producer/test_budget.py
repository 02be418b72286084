"""RequestBudget: no window ever holds more requests than allowed."""

from __future__ import annotations

import threading
import time

import pytest

from producer import GaveUp, RequestBudget


def max_in_window(starts: list[float], ends: list[float], window: float) -> int:
    """Most request starts within ``window`` after any request's end (what a server that
    counts arrivals in a sliding window can see at worst)."""
    return max(sum(1 for s in starts if end <= s < end + window) for end in ends) + 1


def test_budget_never_exceeds_limit_in_any_window_when_threads_compete():
    budget = RequestBudget(3, 0.2)
    starts: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(3):
            with budget.slot(deadline=time.monotonic() + 10):
                with lock:
                    starts.append(time.monotonic())
                time.sleep(0.01)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    starts.sort()
    assert len(starts) == 12
    # Any 4 consecutive starts span more than the window: at most 3 in any 0.2 s.
    assert all(later - earlier >= 0.2 for earlier, later in zip(starts, starts[3:], strict=False))


def test_budget_gives_up_without_waiting_when_slot_frees_after_deadline():
    budget = RequestBudget(1, 60.0)
    with budget.slot(deadline=time.monotonic() + 1):
        pass
    with pytest.raises(GaveUp, match="after the poll's deadline"), budget.slot(deadline=time.monotonic() + 1):
        pass


def test_budget_holds_requests_back_when_blocked_until_later():
    budget = RequestBudget(10, 60.0)
    budget.block_until(time.monotonic() + 0.2)
    before = time.monotonic()
    with budget.slot(deadline=before + 5):
        started = time.monotonic()
    assert started - before >= 0.2


def test_budget_gives_up_at_once_when_stop_is_set():
    budget = RequestBudget(1, 60.0)
    stop = threading.Event()
    with budget.slot(deadline=time.monotonic() + 100):
        pass
    stop.set()
    with pytest.raises(GaveUp, match="shutting down"), budget.slot(deadline=time.monotonic() + 100, stop=stop):
        pass
