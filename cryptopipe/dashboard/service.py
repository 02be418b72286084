"""What the dashboard's JSON API answers, independent of HTTP.

:class:`DashboardService` turns the views into the three answers the page needs:
``latest()`` (the latest-prices table), ``candles()`` (the chart's series) and
``health()`` (the freshness indicator). It keeps the last good answer of each query:
reused for the backend's ``reuse_seconds`` so refreshing browsers cannot load the
warehouse, and served (marked ``cached``, with the reason) while the warehouse cannot
answer, e.g. while the stream holds the DuckDB file longer than a reader waits.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from core.timefmt import utc_millis
from cryptopipe.dashboard.backends import QueryBackend, Rows
from cryptopipe.dashboard.errors import BackendUnavailable, BadRequest
from cryptopipe.dashboard.queries import CANDLES, LATEST, Query

#: The chart's windows, by the name the API and the page use.
WINDOWS: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
}
DEFAULT_WINDOW = "1h"
#: Coins on the chart when the request names none: the top N by market cap.
DEFAULT_TOP = 8
MAX_COINS = 20
#: Data older than this turns the indicator red. Polls come every 60 s (10 s on the
#: replay) and CoinGecko's own cache adds up to a minute: five minutes means a poll
#: or a batch has really been missed.
STALE_AFTER_SECONDS = 300.0
REFRESH_SECONDS = 5.0

_CANDLE_FIELDS = ("open", "high", "low", "close", "samples")
# Last good answers kept; more than the page's few queries, fewer than unbounded
# combinations of ?coins= could make.
_KEPT_ANSWERS = 64


@dataclass(frozen=True)
class Answer:
    """Rows of one query, when they were read, and why they are old if they are."""

    rows: Rows
    queried_at: datetime
    problem: str | None = None
    """Set when the warehouse could not answer and these are the last good rows."""

    def meta(self) -> dict[str, Any]:
        return {"queried_at": utc_millis(self.queried_at), "cached": self.problem is not None, "problem": self.problem}


class DashboardService:
    """The API's answers for one backend and quote currency; safe to call from many threads."""

    def __init__(
        self,
        backend: QueryBackend,
        *,
        vs_currency: str = "usd",
        stale_after_seconds: float = STALE_AFTER_SECONDS,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.backend = backend
        self.vs_currency = vs_currency
        self.stale_after_seconds = stale_after_seconds
        self.refresh_seconds = refresh_seconds
        self._answers: OrderedDict[tuple[Any, ...], tuple[float, Answer]] = OrderedDict()
        self._lock = threading.Lock()

    def latest(self) -> dict[str, Any]:
        """``rows``: each coin's newest tick in ``vs_currency``, by market-cap rank."""
        answer = self._answer(LATEST, {"vs_currency": self.vs_currency})
        return {**self._meta(answer), "rows": [_jsonable(row) for row in answer.rows]}

    def candles(self, window: str | None = None, coins: str | None = None, top: str | None = None) -> dict[str, Any]:
        """One series per coin: minute starts (``t``, epoch ms) with open/high/low/close/samples.

        ``window`` is one of :data:`WINDOWS`; ``coins`` a comma-separated list of ids,
        else the ``top`` coins by market cap. Raises :class:`BadRequest` for bad values.
        """
        window = window or DEFAULT_WINDOW
        if window not in WINDOWS:
            raise BadRequest(f"window {window!r} is not one of {', '.join(WINDOWS)}")
        chosen = self._coins(coins, top)
        # Whole minutes: the oldest candle shown is complete, and the key stays
        # stable within a minute so the last good answer can stand in.
        since = (_now() - WINDOWS[window]).replace(second=0, microsecond=0)
        answer = self._answer(CANDLES, {"vs_currency": self.vs_currency, "coins": chosen, "since": since})
        series: dict[str, dict[str, list[Any]]] = {}
        for row in answer.rows:
            points = series.setdefault(row["coin_id"], {name: [] for name in ("t", *_CANDLE_FIELDS)})
            points["t"].append(int(row["minute"].timestamp() * 1000))
            for name in _CANDLE_FIELDS:
                points[name].append(row[name])
        return {
            **self._meta(answer),
            "window": window,
            "since": utc_millis(since),
            "coins": chosen,
            "series": [{"coin_id": coin, **points} for coin, points in series.items()],
        }

    def health(self) -> dict[str, Any]:
        """The freshness indicator: ``fresh``, ``stale``, ``empty`` or ``unavailable``, and why."""
        settings = {
            "warehouse": self.backend.uri,
            "vs_currency": self.vs_currency,
            "stale_after_seconds": self.stale_after_seconds,
            "refresh_seconds": self.refresh_seconds,
            "windows": list(WINDOWS),
            "default_window": DEFAULT_WINDOW,
            "default_top": DEFAULT_TOP,
        }
        try:
            answer = self._answer(LATEST, {"vs_currency": self.vs_currency})
        except BackendUnavailable as error:
            return {**settings, **self._status("unavailable", str(error))}
        if not answer.rows:
            return {
                **settings,
                **answer.meta(),
                **self._status("empty", f"no {self.vs_currency} ticks in the last day yet"),
            }
        newest = max(row["last_updated"] for row in answer.rows)
        age = max(0.0, (_now() - newest).total_seconds())  # a tick stamped a moment ahead is fresh
        status = "fresh" if age <= self.stale_after_seconds else "stale"
        message = f"newest tick {_duration(age)} old"
        if status == "stale":
            message += f" (stale after {_duration(self.stale_after_seconds)})"
        if answer.problem:
            message += f"; showing the last good answer: {answer.problem}"
        return {
            **settings,
            **answer.meta(),
            **self._status(status, message),
            "newest_event_time": utc_millis(newest),
            "age_seconds": round(age, 3),
        }

    def _coins(self, coins: str | None, top: str | None) -> list[str]:
        if coins:
            chosen = list(dict.fromkeys(c.strip() for c in coins.split(",") if c.strip()))
            if not 1 <= len(chosen) <= MAX_COINS:
                raise BadRequest(f"coins: name 1 to {MAX_COINS} coin ids, got {len(chosen)}")
            return chosen
        try:
            n = DEFAULT_TOP if top is None else int(top)
        except ValueError:
            raise BadRequest(f"top {top!r} is not a whole number") from None
        if not 1 <= n <= MAX_COINS:
            raise BadRequest(f"top {n} is not between 1 and {MAX_COINS}")
        return [row["coin_id"] for row in self._answer(LATEST, {"vs_currency": self.vs_currency}).rows[:n]]

    def _answer(self, query: Query, params: Mapping[str, Any]) -> Answer:
        """Fresh rows, or rows read within ``reuse_seconds``, or the last good rows marked stale."""
        key = (query.name, *(tuple(v) if isinstance(v, list) else v for v in params.values()))
        with self._lock:
            kept = self._answers.get(key)
        if kept is not None and time.monotonic() - kept[0] < self.backend.reuse_seconds:
            return kept[1]
        try:
            answer = Answer(self.backend.fetch(query, params), _now())
        except BackendUnavailable as error:
            if kept is None:
                raise
            return Answer(kept[1].rows, kept[1].queried_at, problem=str(error))
        with self._lock:
            self._answers[key] = (time.monotonic(), answer)
            self._answers.move_to_end(key)
            while len(self._answers) > _KEPT_ANSWERS:
                self._answers.popitem(last=False)
        return answer

    def _meta(self, answer: Answer) -> dict[str, Any]:
        return {"served_at": utc_millis(_now()), "vs_currency": self.vs_currency, **answer.meta()}

    def _status(self, status: str, message: str) -> dict[str, Any]:
        return {"served_at": utc_millis(_now()), "status": status, "message": message}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in row.items():
        if isinstance(value, datetime):
            value = utc_millis(value)
        elif isinstance(value, float) and not math.isfinite(value):
            value = None  # JSON has no NaN or infinity
        out[name] = value
    return out


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
