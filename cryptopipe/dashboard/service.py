"""What the dashboard's JSON API answers, independent of HTTP.

:class:`DashboardService` turns the views into the answers the page needs:
``latest()`` (the latest-prices table, searched and sorted), ``candles()`` (the
overview chart's series), ``coin()`` (one coin's figures and candles) and
``health()`` (the freshness indicator), each in one of the quote currencies the
producer polls (``currency``; the first when not given). It keeps the last good answer of each query:
reused for the backend's ``reuse_seconds`` so refreshing browsers cannot load the
warehouse, and served (marked ``cached``, with the reason) while the warehouse cannot
answer, e.g. while the stream holds the DuckDB file longer than a reader waits.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.timefmt import utc_millis, utc_now
from cryptopipe.dashboard.backends import QueryBackend, Rows
from cryptopipe.dashboard.errors import BackendUnavailable, BadRequest, NotFound
from cryptopipe.dashboard.listing import Ordering, matching
from cryptopipe.dashboard.queries import CANDLES, LATEST, Query
from cryptopipe.settings import producer_default

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

#: CoinGecko coin ids, as the producer accepts them for ``--coin-ids`` (producer/config.py).
COIN_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")

_CANDLE_FIELDS = ("open", "high", "low", "close", "total_volume", "samples", "backfilled")
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
    """The API's answers for one backend and its quote currencies; safe to call from many threads."""

    def __init__(
        self,
        backend: QueryBackend,
        *,
        vs_currencies: Sequence[str] | None = None,
        stale_after_seconds: float = STALE_AFTER_SECONDS,
        refresh_seconds: float = REFRESH_SECONDS,
        alerts: Callable[[], list[dict[str, Any]]] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.backend = backend
        self.alerts = alerts
        self.clock = clock
        """The current time (UTC): the data's age, the windows' start and ``served_at`` are
        measured from it; a test freezes it so the page's geometry does not depend on the wall clock."""
        """The pipeline's alert verdicts (cryptopipe/health/), when the dashboard watches a local run."""
        self.vs_currencies: tuple[str, ...] = tuple(vs_currencies or producer_default("vs_currencies"))
        """The currencies a request may ask for (the producer's): the first when it names none."""
        self.stale_after_seconds = stale_after_seconds
        self.refresh_seconds = refresh_seconds
        self._answers: OrderedDict[tuple[Any, ...], tuple[float, Answer]] = OrderedDict()
        self._lock = threading.Lock()

    def latest(
        self, q: str | None = None, sort: str | None = None, order: str | None = None, currency: str | None = None
    ) -> dict[str, Any]:
        """``rows``: each coin's newest tick in ``currency`` whose name or symbol contains
        ``q``, by ``sort`` (:data:`~cryptopipe.dashboard.listing.SORTS`) in ``order``;
        ``total``: the coins before the search. Raises :class:`BadRequest` for bad values.
        """
        ordering = Ordering.parse(sort, order)
        currency = self._currency(currency)
        answer = self._latest(currency)
        rows = ordering.apply(matching(answer.rows, q))
        return {
            **self._meta(currency, answer),
            "q": (q or "").strip(),
            "sort": ordering.sort,
            "order": ordering.order,
            "total": len(answer.rows),
            "rows": [_jsonable(row) for row in rows],
        }

    def candles(
        self, window: str | None = None, coins: str | None = None, top: str | None = None, currency: str | None = None
    ) -> dict[str, Any]:
        """One series per coin: minute starts (``t``, epoch ms) with open/high/low/close/
        total_volume/samples in ``currency``, and the coin's ``symbol`` and ``name``.

        ``window`` is one of :data:`WINDOWS`; ``coins`` a comma-separated list of ids,
        else the ``top`` coins by market cap. Raises :class:`BadRequest` for bad values.
        """
        window = _window(window)
        currency = self._currency(currency)
        chosen = self._coins(coins, top, currency)
        since = _since(window, self.clock())
        answer = self._answer(CANDLES, {"vs_currency": currency, "coins": chosen, "since": since})
        names = {row["coin_id"]: row for row in self._latest(currency).rows}
        series = [
            {"coin_id": coin, **_labels(names.get(coin)), **points} for coin, points in _series(answer.rows).items()
        ]
        return {
            **self._meta(currency, answer),
            "window": window,
            "since": utc_millis(since),
            "coins": chosen,
            "series": series,
        }

    def coin(self, coin_id: str | None, window: str | None = None, currency: str | None = None) -> dict[str, Any]:
        """One coin: ``coin``, its latest figures in ``currency`` with their ``age_seconds``, and
        ``candles``, its one-minute candles over ``window`` (as in :meth:`candles`).

        Raises :class:`BadRequest` for a malformed id, window or currency, :class:`NotFound` for
        a coin without a latest price in ``currency``.
        """
        coin_id = _coin_id(coin_id, "id")
        window = _window(window)
        currency = self._currency(currency)
        latest = self._latest(currency)
        row = next((row for row in latest.rows if row["coin_id"] == coin_id), None)
        if row is None:
            raise NotFound(f"no coin {coin_id!r} among the latest {currency} prices")
        since = _since(window, self.clock())
        answer = self._answer(CANDLES, {"vs_currency": currency, "coins": [coin_id], "since": since})
        empty = {name: [] for name in ("t", *_CANDLE_FIELDS)}
        age = max(0.0, (self.clock() - row["last_updated"]).total_seconds())
        return {
            **self._meta(currency, answer, latest),
            "window": window,
            "since": utc_millis(since),
            "stale_after_seconds": self.stale_after_seconds,
            "coin": {**_jsonable(row), "age_seconds": round(age, 3)},
            "candles": _series(answer.rows).get(coin_id, empty),
        }

    def health(self, currency: str | None = None) -> dict[str, Any]:
        """The freshness indicator of ``currency``'s prices: ``fresh``, ``stale``, ``empty`` or
        ``unavailable``, and why; with the page's settings (``vs_currencies``, the switch's choices)."""
        currency = self._currency(currency)
        settings = {
            "warehouse": self.backend.uri,
            "warehouse_name": self.backend.name,
            "vs_currency": currency,
            "vs_currencies": list(self.vs_currencies),
            "stale_after_seconds": self.stale_after_seconds,
            "refresh_seconds": self.refresh_seconds,
            "windows": list(WINDOWS),
            "default_window": DEFAULT_WINDOW,
            "default_top": DEFAULT_TOP,
        }
        if self.alerts is not None:
            settings["alerts"] = self._alert_verdicts()
        try:
            answer = self._latest(currency)
        except BackendUnavailable as error:
            return {**settings, **self._status("unavailable", str(error))}
        if not answer.rows:
            return {
                **settings,
                **answer.meta(),
                **self._status("empty", f"no {currency} ticks in the last day yet"),
            }
        newest = max(row["last_updated"] for row in answer.rows)
        age = max(0.0, (self.clock() - newest).total_seconds())  # a tick stamped a moment ahead is fresh
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

    def _alert_verdicts(self) -> list[dict[str, Any]] | str:
        """The verdicts, or why they cannot be read now (the warehouse busy, say)."""
        from jobs.errors import WarehouseError

        try:
            return self.alerts()
        except (OSError, ValueError, WarehouseError) as error:  # the freshness indicator still answers
            return f"unavailable: {error}"

    def _currency(self, currency: str | None) -> str:
        """``currency`` if the producer polls it, the first of them if None or blank; BadRequest otherwise."""
        if not currency:
            return self.vs_currencies[0]
        if currency not in self.vs_currencies:
            raise BadRequest(f"currency {currency[:20]!r} is not one of {', '.join(self.vs_currencies)} "
                             "(the quote currencies the producer polls)")
        return currency

    def _coins(self, coins: str | None, top: str | None, currency: str) -> list[str]:
        if coins:
            chosen = list(dict.fromkeys(_coin_id(c.strip(), "coins") for c in coins.split(",") if c.strip()))
            if not 1 <= len(chosen) <= MAX_COINS:
                raise BadRequest(f"coins: name 1 to {MAX_COINS} coin ids, got {len(chosen)}")
            return chosen
        try:
            n = DEFAULT_TOP if top is None else int(top)
        except ValueError:
            raise BadRequest(f"top {top!r} is not a whole number") from None
        if not 1 <= n <= MAX_COINS:
            raise BadRequest(f"top {n} is not between 1 and {MAX_COINS}")
        return [row["coin_id"] for row in self._latest(currency).rows[:n]]

    def _latest(self, currency: str) -> Answer:
        # One query, one cached answer per currency, whatever the page searches or sorts by.
        return self._answer(LATEST, {"vs_currency": currency})

    def _answer(self, query: Query, params: Mapping[str, Any]) -> Answer:
        """Fresh rows, or rows read within ``reuse_seconds``, or the last good rows marked stale."""
        key = (query.name, *(tuple(v) if isinstance(v, list) else v for v in params.values()))
        with self._lock:
            kept = self._answers.get(key)
        if kept is not None and time.monotonic() - kept[0] < self.backend.reuse_seconds:
            return kept[1]
        try:
            answer = Answer(self.backend.fetch(query, params), self.clock())
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

    def _meta(self, currency: str, *answers: Answer) -> dict[str, Any]:
        """The currency the answers are in, when they were read (the oldest of them), and the
        first one's problem if any is old."""
        problem = next((answer.problem for answer in answers if answer.problem), None)
        return {
            "served_at": utc_millis(self.clock()),
            "vs_currency": currency,
            "queried_at": utc_millis(min(answer.queried_at for answer in answers)),
            "cached": problem is not None,
            "problem": problem,
        }

    def _status(self, status: str, message: str) -> dict[str, Any]:
        return {"served_at": utc_millis(self.clock()), "status": status, "message": message}


def _window(window: str | None) -> str:
    window = window or DEFAULT_WINDOW
    if window not in WINDOWS:
        raise BadRequest(f"window {window!r} is not one of {', '.join(WINDOWS)}")
    return window


def _since(window: str, now: datetime) -> datetime:
    # Whole minutes: the oldest candle shown is complete, and the key stays
    # stable within a minute so the last good answer can stand in.
    return (now - WINDOWS[window]).replace(second=0, microsecond=0)


def _coin_id(value: str | None, parameter: str) -> str:
    if not value:
        raise BadRequest(f"{parameter}: name a coin by its CoinGecko id, e.g. bitcoin")
    if not COIN_ID.fullmatch(value):
        raise BadRequest(
            f"{parameter}: {value[:120]!r} is not a CoinGecko coin id "
            "(lower-case letters, digits, '.', '_' and '-', at most 100)"
        )
    return value


def _series(rows: Rows) -> dict[str, dict[str, list[Any]]]:
    """Candle rows (ordered by coin and minute) as columns per coin: ``t`` (epoch ms) and the fields."""
    series: dict[str, dict[str, list[Any]]] = {}
    for row in rows:
        points = series.setdefault(row["coin_id"], {name: [] for name in ("t", *_CANDLE_FIELDS)})
        points["t"].append(int(row["minute"].timestamp() * 1000))
        for name in _CANDLE_FIELDS:
            points[name].append(_finite(row[name]))
    return series


def _labels(row: Mapping[str, Any] | None) -> dict[str, Any]:
    """A series' ``symbol`` and ``name``, from the coin's latest row; None if it has none."""
    return {"symbol": row["symbol"] if row else None, "name": row["name"] if row else None}


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value  # JSON has no NaN


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in row.items():
        out[name] = utc_millis(value) if isinstance(value, datetime) else _finite(value)
    return out


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
