"""Back-fill: fill a stretch without polls from CoinGecko's market charts, each point landed once.

One call of ``/coins/{id}/market_chart/range`` covers one coin, one quote currency and
one range; each of its points becomes a market tick (price, market cap, volume at its ``last_updated``;
symbol and name from the live data; ``origin = 'backfill'``), validated by the one
schema, and the points of one (coin, currency, range) become one landing object, through a
spool of its own like every poll (docs/PRODUCER.md "Back-fill").

Exactly once, although the stream archives what it read (so a landing name is free
again once its object was processed) and does not de-duplicate back-filled rows
(they are older than its watermark): a task's poll id is a pure function of coin,
currency and range (:func:`backfill_poll_id`), and landing it first creates a marker,
``_backfilled/<poll id>.done``, in the landing zone, create-only, which the stream
never reads (no ``.ndjson`` suffix, a ``_`` folder) and never archives. A task whose
marker exists, or whose object waits in the spool, is done: the same back-fill run
again adds nothing. The marker goes first, the data second, the spool entry last, so
a crash at any point leaves the spool entry, and the next drain lands the rest.

A *different* range that overlaps one back-filled before is clipped to the parts not
yet covered (:mod:`producer.coverage`): each piece is a task of its own (its own poll
id and marker), and only points inside it are kept, so pieces never share a point.

The budget: back-fill requests take a slot of their own budget first,
:func:`spare_requests_per_minute` (the configured budget minus what live polls need),
then one of the client's shared budget; live polls never wait for back-fill. The same
for the month's credits: each chart is a credit, and back-fill spends only what live
polls leave until the month ends (:attr:`producer.credits.CreditState.spare`); with
none left it waits (``backfill_waiting``), its plan kept for when credits renew.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.tables import BACKFILL
from core.timefmt import utc_millis
from producer.budget import RequestBudget
from producer.coingecko import CoinGeckoClient
from producer.config import ProducerConfig
from producer.coverage import Coverage, moment, span_of, uncovered
from producer.errors import ConfigError, LandingConflict, LandingUnavailable, SpoolFull
from producer.files import replace_json
from producer.landing import LandingZone, object_name
from producer.logs import log_event
from producer.spool import Spool
from producer.validate import ChartPoint, Validation, to_ndjson, validate_records

log = logging.getLogger(__name__)

#: Where markers of landed back-fill objects live in the landing zone.
MARKER_FOLDER = "_backfilled"

#: The back-fill's folder inside ``spool_dir``: its spool, plan, state and lock.
FOLDER = "backfill"


class BackfillError(ConfigError):
    """A back-fill cannot start as asked: the range, the coins or the budget is wrong."""


class CreditsShort(BackfillError):
    """Live polls need every call credit left this month: back-fill waits for the next."""


class CoinSetUnavailable(RuntimeError):
    """The coin set could not be read: the API failed after its retries."""


def backfill_poll_id(coin_id: str, vs_currency: str, start: datetime, end: datetime) -> str:
    """The poll id of one coin's back-fill of one range: the same arguments, the same id.

    It starts with the range's start (so it sorts and lands under that hour, as
    :func:`producer.landing.object_name` wants), then ``bf`` and a hash of all four.
    """
    key = f"{coin_id}|{vs_currency}|{utc_millis(start)}|{utc_millis(end)}"
    return f"{utc_millis(start, basic=True)}-bf{hashlib.blake2b(key.encode(), digest_size=6).hexdigest()}"


def marker_name(poll_id: str) -> str:
    return f"{MARKER_FOLDER}/{poll_id}.done"


def spare_requests_per_minute(config: ProducerConfig) -> int:
    """Requests a minute that live polls leave over (0: no room for back-fill)."""
    return config.requests_per_minute - math.ceil(config.requests_per_poll * 60 / config.interval_seconds)


@dataclass(frozen=True)
class BackfillTask:
    """One coin's range to fill in one quote currency; symbol and name come from live data."""

    coin_id: str
    symbol: str
    name: str
    start: datetime
    end: datetime
    vs_currency: str

    @property
    def label(self) -> str:
        """The coin and currency, for logs and reports: ``bitcoin (eur)``."""
        return f"{self.coin_id} ({self.vs_currency})"

    @property
    def poll_id(self) -> str:
        return backfill_poll_id(self.coin_id, self.vs_currency, self.start, self.end)

    def piece(self, start: datetime, end: datetime) -> BackfillTask:
        """The same coin and currency over ``start``-``end``."""
        return replace(self, start=start, end=end)

    def to_json(self) -> dict[str, str]:
        return {**asdict(self), "start": utc_millis(self.start), "end": utc_millis(self.end)}

    @classmethod
    def from_json(cls, raw: dict[str, str]) -> BackfillTask:
        return cls(**{**raw, "start": datetime.fromisoformat(raw["start"]), "end": datetime.fromisoformat(raw["end"])})


@dataclass
class BackfillReport:
    """What a back-fill run or step did."""

    tasks: int = 0
    landed_objects: int = 0
    landed_rows: int = 0
    already_done: int = 0
    """Tasks (or pieces of them) skipped: back-filled before, by this range or overlapping ones."""
    clipped: int = 0
    """Tasks of which only the parts not back-filled before were fetched."""
    rejected_points: int = 0
    requests: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    """Coin and currency (:attr:`BackfillTask.label`) -> why its chart could not be fetched."""
    spooled: int = 0
    """Objects still waiting in the spool (the landing zone was unreachable)."""


def chart_records(task: BackfillTask, points: Iterable[ChartPoint]) -> list[dict[str, Any]]:
    """The chart's points as CoinGecko-named records, for :func:`producer.validate.validate_records`."""
    return [
        {
            "id": task.coin_id,
            "symbol": task.symbol,
            "name": task.name,
            "current_price": point.price,
            "market_cap": point.market_cap,
            "total_volume": point.total_volume,
            "last_updated": utc_millis(datetime.fromtimestamp(point.at_ms / 1000, timezone.utc)),
        }
        for point in points
    ]


class Backfiller:
    """Fetches, spools and lands back-fill tasks for one config.

    Shares the poller's client (and so its budget and its ``Retry-After``) and landing
    zone; keeps its spool, its pending plan and the last poll's event time per quote
    currency under ``<spool_dir>/backfill``, so all of it survives a restart. One process at a time
    works on it (a lock file): the producer's service between polls, or ``backfill``
    on demand.
    """

    def __init__(self, config: ProducerConfig, *, client: CoinGeckoClient, landing: LandingZone) -> None:
        self.config = config
        self.client = client
        self.landing = landing
        self.folder = Path(config.spool_dir) / FOLDER
        self.spool = Spool(self.folder / "spool", config.spool_max_polls)
        spare = spare_requests_per_minute(config)
        self.budget = RequestBudget(spare, 60.0, clock=client.clock) if spare >= 1 else None
        self._plan_file = self.folder / "plan.json"
        self._last_poll_file = self.folder / "last_poll.json"
        self.coverage = Coverage(self.folder / "coverage.json")
        self._lock = threading.Lock()

    # -- state that survives a restart -----------------------------------------

    def _last_polls(self) -> dict[str, str]:
        try:
            newest = json.loads(self._last_poll_file.read_text())["newest_last_updated"]
        except FileNotFoundError:
            return {}
        # Written before polls had several currencies: one time, which stands for each.
        return {currency: newest for currency in self.config.vs_currencies} if isinstance(newest, str) else newest

    def last_poll(self, vs_currency: str) -> datetime | None:
        """Newest event time in ``vs_currency`` of the last poll that reached the spool (so lands), if any."""
        newest = self._last_polls().get(vs_currency)
        return None if newest is None else datetime.fromisoformat(newest)

    def saw_poll(self, vs_currency: str, newest_last_updated: datetime) -> None:
        replace_json(self._last_poll_file,
                     {"newest_last_updated": {**self._last_polls(), vs_currency: utc_millis(newest_last_updated)}})

    def pending(self) -> list[BackfillTask]:
        """Planned tasks not yet fetched, oldest plan first."""
        try:
            planned = json.loads(self._plan_file.read_text())
        except FileNotFoundError:
            return []
        # A task planned before tasks had a currency was a gap in every currency polled.
        return [BackfillTask.from_json(raw if "vs_currency" in raw else {**raw, "vs_currency": currency})
                for raw in planned
                for currency in ((raw["vs_currency"],) if "vs_currency" in raw else self.config.vs_currencies)]

    def plan(self, tasks: Iterable[BackfillTask]) -> None:
        """Add tasks to the plan (persisted at once); a task already planned is not added twice."""
        current = self.pending()
        self._save_plan([*current, *(task for task in tasks if task not in current)])

    def _save_plan(self, tasks: list[BackfillTask]) -> None:
        replace_json(self._plan_file, [task.to_json() for task in tasks])

    @contextmanager
    def claimed(self, *, wait: bool) -> Iterator[bool]:
        """Hold the back-fill lock (across processes); yields False when ``wait`` is off and it is taken."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.folder / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True

    # -- the work ----------------------------------------------------------------

    def done(self, task: BackfillTask) -> bool:
        """Whether ``task`` was landed (its marker exists) or waits in the spool."""
        return self._landed_or_spooled(task.poll_id)

    def _landed_or_spooled(self, poll_id: str) -> bool:
        return poll_id in self.spool.pending() or self.landing.exists(marker_name(poll_id))

    def settle(self) -> None:
        """Finish what a crash interrupted between noting a piece and spooling it (under the lock)."""
        self.coverage.settle(self._landed_or_spooled)

    def to_fetch(self, task: BackfillTask, report: BackfillReport) -> list[BackfillTask]:
        """The pieces of ``task`` not back-filled before, each a task of its own, in time order.

        A task nothing covers is itself (its poll id and marker as for its exact range,
        so an exact rerun is found done even when the coverage file was lost); a piece
        whose marker exists or that waits in the spool is skipped and recorded as covered.
        """
        span = span_of(task.start, task.end)
        spans = uncovered(span, self.coverage.covered(task.coin_id, task.vs_currency))
        if not spans:
            report.already_done += 1
            return []
        if spans == [span]:
            pieces = [task]
        else:
            report.clipped += 1
            pieces = [task.piece(moment(a), moment(b)) for a, b in spans]
        todo = []
        for piece in pieces:
            if self.done(piece):
                self.coverage.add(piece.coin_id, piece.vs_currency, span_of(piece.start, piece.end))
                report.already_done += 1
            else:
                todo.append(piece)
        return todo

    def fill(self, task: BackfillTask, report: BackfillReport, *, deadline: float, stop: threading.Event) -> bool:
        """Fetch and spool the parts of ``task`` not back-filled before; False when one failed
        (or time ran out): what was spooled stays covered, the rest is fetched next time."""
        for piece in self.to_fetch(task, report):
            if stop.is_set() or time.monotonic() >= deadline:
                return False
            if not self.run_task(piece, report, deadline=deadline, stop=stop):
                return False
        return True

    def credits_short(self) -> str | None:
        """Why back-fill must wait for credits now (live polls need the rest of the month's), or None."""
        state = self.client.credits.state()
        if not state.backfill_waits:
            return None
        return (f"{state.remaining:,} of {state.credits:,} call credits are left this month and live polls need "
                f"{state.needed_to_month_end:,} until it ends ({state.month_ends_at}): back-fill waits for them")

    def run_task(self, task: BackfillTask, report: BackfillReport, *, deadline: float, stop: threading.Event) -> bool:
        """Fetch one task's chart and spool it; False when the chart could not be fetched.

        Raises :class:`CreditsShort` when live polls need every credit left this month."""
        if self.budget is None:
            raise BackfillError(
                f"no request budget is left for back-fill: live polls need all {self.config.requests_per_minute} "
                "requests a minute; raise requests_per_minute (if the plan allows) or the interval"
            )
        short = self.credits_short()
        if short:
            raise CreditsShort(short)
        poll_id = task.poll_id
        chart = self.client.fetch_chart(
            task.coin_id, task.vs_currency, task.start, task.end, deadline=deadline, stop=stop, budget=self.budget
        )
        report.requests += chart.attempts
        if chart.points is None:
            report.failed[task.label] = chart.error or "no answer"
            log_event(log, logging.WARNING, "backfill_failed", coin_id=task.coin_id, vs_currency=task.vs_currency,
                      error=chart.error)  # fmt: skip
            return False
        # The request is in whole seconds and CoinGecko's bounds are loose: keep exactly the
        # task's points, so a piece clipped next to a covered span never repeats its edge.
        first, last = span = span_of(task.start, task.end)
        points = [point for point in chart.points if first <= point.at_ms <= last]
        validation: Validation = validate_records(
            chart_records(task, points),
            vs_currency=task.vs_currency,
            ingested_at=chart.received_at,
            poll_id=poll_id,
            origin=BACKFILL,
        )
        report.rejected_points += len(validation.rejected)
        for rejection in validation.rejected[:5]:
            log_event(log, logging.WARNING, "record_rejected", poll_id=poll_id, coin_id=task.coin_id,
                      index=rejection.index, reason=rejection.reason)  # fmt: skip
        self.coverage.begin(poll_id, task.coin_id, task.vs_currency, span)
        self.spool.add(poll_id, to_ndjson(validation.accepted))
        self.coverage.finish(poll_id)
        report.failed.pop(task.label, None)
        return True

    def drain(self, report: BackfillReport) -> bool:
        """Land spooled back-fill objects: marker, then data, then forget the entry.

        False when the landing zone failed; what is left lands at the next drain.
        """
        for poll_id in self.spool.pending():
            data = self.spool.read(poll_id)
            try:
                self.landing.put(marker_name(poll_id), f"{poll_id}\n".encode())
                if data:
                    self.landing.put(object_name(poll_id), data)
            except LandingUnavailable as exc:
                log_event(log, logging.WARNING, "landing_unavailable", poll_id=poll_id, error=str(exc),
                          spool_depth=self.spool.depth)  # fmt: skip
                report.spooled = self.spool.depth
                return False
            except LandingConflict as exc:
                moved = self.spool.quarantine(poll_id)
                log_event(log, logging.ERROR, "landing_conflict", poll_id=poll_id, error=str(exc),
                          quarantined=str(moved))  # fmt: skip
                continue
            self.spool.remove(poll_id)
            report.landed_objects += 1
            report.landed_rows += data.count(b"\n")
        report.spooled = self.spool.depth
        return True

    def step(self, stop: threading.Event, *, deadline: float) -> BackfillReport | None:
        """Between two polls: drain, then work on the plan until ``deadline`` (monotonic).

        Never raises; returns None when there was nothing to do or another process
        holds the back-fill. A task that fails stays planned for the next step.
        """
        report = BackfillReport()
        try:
            with self.claimed(wait=False) as mine:
                if not mine:
                    return None
                tasks = self.pending()
                if not tasks and not self.spool.depth:
                    return None
                report.tasks = len(tasks)
                self.settle()
                if not self.drain(report):
                    return report
                try:
                    while tasks and not stop.is_set() and time.monotonic() < deadline:
                        task = tasks[0]
                        if not self.fill(task, report, deadline=deadline, stop=stop):
                            self._save_plan([*tasks[1:], task])  # the others first next time
                            break
                        tasks = tasks[1:]
                        self._save_plan(tasks)
                except CreditsShort as exc:  # what this step spooled still lands below
                    log_event(log, logging.WARNING, "backfill_waiting", error=str(exc))
                self.drain(report)
        except (BackfillError, LandingUnavailable, SpoolFull) as exc:
            log_event(log, logging.WARNING, "backfill_waiting", error=str(exc))
        except Exception:  # like a poll: a bug must not end the producer
            log.exception("backfill step crashed")
        log_event(log, logging.INFO, "backfill", planned=len(self.pending()), **asdict(report))
        return report


#: How long one chart may take on demand, retries and budget waits included.
ON_DEMAND_CHART_SECONDS = 300.0


def parse_moment(text: str, option: str) -> datetime:
    """A moment as ISO 8601 (``2026-11-01``, ``2026-11-01T12:00Z``; no zone means UTC) or
    unix seconds; BackfillError naming ``option`` otherwise."""
    try:
        moment = datetime.fromtimestamp(float(text), timezone.utc)
    except (ValueError, OverflowError, OSError):
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise BackfillError(
                f"{option} {text!r} is not a time: expected ISO 8601 like 2026-11-01T12:00Z, or unix seconds"
            ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def check_range(start: datetime, end: datetime, now: datetime) -> None:
    """Refuse a range that is empty, reversed or (partly) in the future: BackfillError saying which."""
    if start >= end:
        raise BackfillError(f"--from ({utc_millis(start)}) must be before --to ({utc_millis(end)})")
    if end > now:
        raise BackfillError(
            f"--to ({utc_millis(end)}) is in the future (now is {utc_millis(now)}): history ends now, and a "
            "range that ends later would name a different back-fill each time it runs"
        )


def live_coins(
    client: CoinGeckoClient, vs_currency: str, *, deadline: float, stop: threading.Event
) -> list[dict[str, Any]]:
    """The config's coin set as ``/coins/markets`` records in ``vs_currency`` (their ids, symbols
    and names: the same in every currency, so one currency's pages name them)."""
    records: dict[str, dict[str, Any]] = {}  # by id: a coin that moved between two pages is on both
    for page in client.fetch_listing(vs_currency, deadline=deadline, stop=stop):
        if page.records is None:
            message = f"cannot read the coin set from /coins/markets ({page.request.label}): {page.error}"
            if "ids" in page.request.params:  # CoinGecko answers [] for ids it does not know: a bad page to a poll
                message += "; are these CoinGecko coin ids (--coin-ids)? It answers an empty list for ids it does not know"
            raise CoinSetUnavailable(message)
        for record in page.records:
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                records.setdefault(record["id"], record)
    return list(records.values())


def run_backfill(
    config: ProducerConfig,
    start: datetime,
    end: datetime,
    *,
    client: CoinGeckoClient,
    landing: LandingZone,
    stop: threading.Event | None = None,
    now: datetime | None = None,
) -> BackfillReport:
    """Back-fill ``start``-``end`` for the config's coins (``coin_ids`` or the top N) in each of
    its quote currencies, now: a chart a coin and currency.

    Raises :class:`BackfillError` for a bad range, an unknown coin, no spare budget
    (nothing was fetched) or no spare credits (:class:`CreditsShort`, also mid-way),
    :class:`CoinSetUnavailable` when the coin set cannot be
    read. Coins and currencies whose chart fails after the retries are in ``report.failed``; what
    landed stays landed, and running the same back-fill again fetches only the rest.
    Parts of the range back-filled before (by any range) are not fetched again.
    """
    stop = stop or threading.Event()
    check_range(start, end, now or datetime.now(timezone.utc))
    backfiller = Backfiller(config, client=client, landing=landing)
    if backfiller.budget is None:
        raise BackfillError(
            f"no request budget is left for back-fill: live polls need all {config.requests_per_minute} "
            "requests a minute; raise requests_per_minute (if the plan allows) or the interval"
        )
    short = backfiller.credits_short()
    if short:
        raise CreditsShort(short)
    coins = live_coins(client, config.vs_currencies[0], deadline=time.monotonic() + ON_DEMAND_CHART_SECONDS, stop=stop)
    unknown = sorted(set(config.coin_ids) - {coin["id"] for coin in coins})
    if unknown:
        raise BackfillError(f"unknown coin id(s): {', '.join(unknown)}; /coins/markets does not know them")
    tasks = [BackfillTask(c["id"], c.get("symbol"), c.get("name"), start, end, vs_currency)
             for c in coins for vs_currency in config.vs_currencies]
    report = BackfillReport(tasks=len(tasks))
    with backfiller.claimed(wait=True):
        backfiller.settle()
        backfiller.drain(report)
        for task in tasks:
            if stop.is_set():
                break
            for piece in backfiller.to_fetch(task, report):
                if stop.is_set():
                    break
                fetched = backfiller.run_task(
                    piece, report, deadline=time.monotonic() + ON_DEMAND_CHART_SECONDS, stop=stop
                )
                backfiller.drain(report)
                if not fetched:
                    break  # the coin's later pieces wait for the rerun, so its failure stays reported
    log_event(log, logging.INFO, "backfill", **asdict(report))
    return report
