"""The poll loop: fetch, validate, spool, land, on a fixed schedule, forever.

One cycle: fetch every page in every quote currency (:mod:`producer.coingecko`),
validate every record (:mod:`producer.validate`), write the accepted ones durably to
the spool as one NDJSON poll, every currency in that one object (docs/PRODUCER.md,
"Quote currencies"), then drain the spool into the landing zone, oldest first. Polls start
at ``start + k * interval``: a slow or failed poll does not shift the next one, and
its fetch may use at most ``FETCH_SHARE`` of the interval so landing still fits.

Nothing a poll does raises out of :meth:`Poller.run`; each cycle ends with one JSON
log line (event ``poll``), updated :class:`PollerStats` and a heartbeat file.

Monthly credits (:mod:`producer.credits`): after each poll the producer looks at where
the month's credits stand; when the rest would run out before the month ends at the
configured interval, the next poll waits longer (the ``credits`` event says so, and the
heartbeat). On paid plans it asks ``/key`` for the account's count after the first poll
and hourly, between polls; a failure is logged and changes nothing.

Usage (the ``cryptopipe up`` way: a thread, stopped by an event)::

    poller = Poller.from_config(ProducerConfig(base_url=replay.url, landing_uri="data/landing"))
    stop = threading.Event()
    threading.Thread(target=poller.run, args=(stop,), kwargs={"max_polls": 10}).start()
    ...
    poller.stats.snapshot().rows_landed
    stop.set()
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from google.cloud import storage

from core.coingecko_plans import USAGE_CHECK_SECONDS
from core.health import CREDITS_EVENT, CREDITS_REPORT_SECONDS, POLL_EVENT
from core.totals import Totals
from core.timefmt import utc_millis
from producer.backfill import Backfiller, BackfillTask
from producer.budget import RequestBudget
from producer.coingecko import CoinGeckoClient
from producer.config import ProducerConfig
from producer.credits import CreditState, Credits
from producer.errors import LandingConflict, LandingUnavailable, SpoolFull
from producer.files import write_synced
from producer.landing import LandingZone, new_poll_id, object_name, open_landing_zone
from producer.logs import log_event
from producer.spool import Spool
from producer.validate import Validation, to_ndjson, validate_records

log = logging.getLogger(__name__)

#: Share of the interval a poll's fetch may use (retries and waits included); the
#: rest is left for landing, so the next poll can start on time.
FETCH_SHARE = 0.75

#: Rejected records logged one by one per poll; the rest only in the poll's counts.
MAX_REJECTIONS_LOGGED = 20


@dataclass(frozen=True)
class StatsSnapshot:
    """The poller's counters at one moment (since the poller was built)."""

    polls: int = 0
    """Polls run, whatever their outcome."""
    polls_failed: int = 0
    """Polls that fetched no page at all."""
    polls_partial: int = 0
    """Polls where some pages failed; the others' records were kept."""
    polls_dropped: int = 0
    """Polls lost because the spool was full."""
    records_accepted: int = 0
    records_rejected: int = 0
    polls_landed: int = 0
    """Poll objects written to the landing zone (drained backlog included)."""
    rows_landed: int = 0
    """Records in those objects."""
    spool_depth: int = 0
    """Polls waiting in the spool after the last cycle."""
    last_poll_at: datetime | None = None
    last_poll_status: str | None = None
    """``ok``, ``partial``, ``failed`` or ``crashed``."""
    newest_last_updated: datetime | None = None
    """Latest event time among accepted records: how fresh the data is."""


class PollerStats(Totals[StatsSnapshot]):
    """The poller's counters; ``cryptopipe up`` reads :meth:`snapshot` from another thread."""

    def __init__(self) -> None:
        super().__init__(StatsSnapshot())

    def saw_last_updated(self, moment: datetime | None) -> None:
        """Keep ``moment`` if it is the newest event time so far."""
        if moment is None:
            return
        self.update(
            lambda current: current
            if current.newest_last_updated is not None and current.newest_last_updated >= moment
            else replace(current, newest_last_updated=moment)
        )


@dataclass
class PollReport:
    """What one poll did: the fields of its ``poll`` log line."""

    poll_id: str
    status: str = "ok"
    pages: int = 0
    pages_failed: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    """Second copies of a coin the poll saw on two pages (it moved between them): one kept."""
    rejections: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    api_latency_ms: int = 0
    fetch_ms: int = 0
    upload_ms: int = 0
    landed: bool = False
    dropped: bool = False
    spool_depth: int = 0
    errors: list[str] = field(default_factory=list)


class Poller:
    """Runs polls for one config; see the module docstring for a usage example."""

    def __init__(
        self,
        config: ProducerConfig,
        *,
        client: CoinGeckoClient,
        landing: LandingZone,
        spool: Spool,
    ) -> None:
        self.config = config
        self.client = client
        self.landing = landing
        self.spool = spool
        self.stats = PollerStats()
        self.stats.set(spool_depth=spool.depth)
        self.backfiller = Backfiller(config, client=client, landing=landing)
        self.credit_state: CreditState | None = None
        self._next_usage_check: datetime | None = None
        self._credits_logged_at: datetime | None = None

    @classmethod
    def from_config(
        cls,
        config: ProducerConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        budget: RequestBudget | None = None,
        gcs_client: storage.Client | None = None,
        credits: Credits | None = None,
    ) -> Poller:
        """Build the client, landing zone and spool ``config`` describes.

        ``transport``, ``budget``, ``gcs_client`` and ``credits`` replace the defaults
        (tests use a short budget window, an emulator's client, a credits clock of their own).
        """
        landing = open_landing_zone(
            config.landing_uri,
            gcs_client=gcs_client,
            timeout_seconds=config.gcs_timeout_seconds,
            retry_seconds=config.gcs_retry_seconds,
        )
        spool = Spool(config.spool_dir, config.spool_max_polls)
        return cls(
            config,
            client=CoinGeckoClient(config, budget=budget, transport=transport, credits=credits),
            landing=landing,
            spool=spool,
        )

    def __enter__(self) -> Poller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def run(self, stop: threading.Event, max_polls: int | None = None) -> StatsSnapshot:
        """Poll every ``interval_seconds`` until ``stop`` is set or ``max_polls`` ran.

        A poll in flight when ``stop`` is set finishes without retries or waits and
        is spooled and landed before this returns. Never raises.

        Polls start every ``interval_seconds``, or less often while the month's credits
        run short (:attr:`credit_state`).
        """
        log_event(log, logging.INFO, "producer_started", landing=self.landing.uri, spool_depth=self.spool.depth)
        next_start = time.monotonic()
        polls = 0
        while not stop.is_set():
            self._cycle(stop, deadline=next_start + self.config.interval_seconds)
            polls += 1
            if max_polls is not None and polls >= max_polls:
                break
            self._check_usage_between_polls(stop, deadline=next_start + self.config.interval_seconds)
            interval = self.credit_state.interval_seconds if self.credit_state else self.config.interval_seconds
            next_start += interval
            now = time.monotonic()
            if next_start < now:
                missed = math.ceil((now - next_start) / interval)
                next_start += missed * interval
                log_event(log, logging.WARNING, "poll_overran", skipped_polls=missed)
            self._backfill_between_polls(stop, deadline=next_start)
            stop.wait(next_start - time.monotonic())
        snapshot = self.stats.snapshot()
        log_event(log, logging.INFO, "producer_stopped", polls=snapshot.polls, spool_depth=snapshot.spool_depth)
        return snapshot

    def _cycle(self, stop: threading.Event, deadline: float) -> None:
        try:
            self.poll_once(stop, deadline=deadline)
        except Exception:  # a bug must not end months of polling; the traceback says where
            log.exception("poll crashed")
            self.stats.count(polls=1, polls_failed=1)
            self.stats.set(last_poll_at=datetime.now(timezone.utc), last_poll_status="crashed")
        self._observe_credits()
        self._write_heartbeat()

    def _observe_credits(self, *, reconciled: bool = False) -> None:
        """Where the month's credits stand now (:attr:`credit_state`); the ``credits`` event at the
        first look, after a reconcile, whenever the projection turns, and at least every
        ``CREDITS_REPORT_SECONDS`` (the cloud alert's window needs the repeat). Never raises."""
        try:
            state = self.client.credits.state()
        except (OSError, ValueError, TypeError) as exc:
            log_event(log, logging.WARNING, "credits_ledger_failed", error=f"{type(exc).__name__}: {exc}")
            return
        previous, self.credit_state = self.credit_state, state
        now = self.client.credits.clock()
        due = self._credits_logged_at is None or (now - self._credits_logged_at).total_seconds() >= CREDITS_REPORT_SECONDS
        if previous is None or reconciled or previous.short != state.short or due:
            self._credits_logged_at = now
            log_event(log, logging.WARNING if state.short else logging.INFO, CREDITS_EVENT, **state.as_json())

    def _check_usage_between_polls(self, stop: threading.Event, deadline: float) -> None:
        """On paid plans, after the first poll and hourly: take the account's count from ``/key``.
        Ends a quarter interval before the next poll; a failure is logged, never raised."""
        if not (self.config.plan.reports_usage and self.config.api_key):
            return
        credits = self.client.credits
        now = credits.clock()
        if self._next_usage_check is not None and now < self._next_usage_check:
            return
        self._next_usage_check = now + timedelta(seconds=USAGE_CHECK_SECONDS)
        try:
            usage, error = self.client.fetch_usage(
                deadline=deadline - self.config.interval_seconds * (1 - FETCH_SHARE), stop=stop
            )
            if usage is None:
                log_event(log, logging.WARNING, "credits_check_failed", error=error)
                return
            before, after = credits.reconcile(usage)
        except Exception as exc:  # a failure to reach /key must never stop polling
            log_event(log, logging.WARNING, "credits_check_failed", error=f"{type(exc).__name__}: {exc}")
            return
        log_event(log, logging.INFO, "credits_reconciled", counted=before.used, account_used=after.used,
                  account_credits=usage.credits, account_remaining=usage.remaining,
                  difference=after.used - before.used)  # fmt: skip
        budget, limit = self.config.requests_per_minute, usage.rate_limit_per_minute
        if limit is not None and budget > limit:
            log_event(log, logging.WARNING, "budget_above_rate_limit", requests_per_minute=budget,
                      account_rate_limit=limit)  # fmt: skip
        self._observe_credits(reconciled=True)

    def poll_once(self, stop: threading.Event | None = None, *, deadline: float | None = None) -> PollReport:
        """Run one poll now and land it (and any backlog); returns its report.

        ``deadline`` (``time.monotonic()``) is when the next poll is due; by default
        one interval from now.
        """
        stop = stop or threading.Event()
        started = time.monotonic()
        deadline = started + self.config.interval_seconds if deadline is None else deadline
        poll_time = datetime.now(timezone.utc)
        report = PollReport(poll_id=new_poll_id(poll_time))

        by_currency = self._fetch(report, stop, fetch_deadline=started + (deadline - started) * FETCH_SHARE)
        validation = Validation()
        for part in by_currency.values():
            validation.extend(part)
        report.fetch_ms = _ms(time.monotonic() - started)
        if report.pages_failed:
            report.status = "failed" if report.pages_failed == report.pages else "partial"
        report.accepted, report.rejected = len(validation.accepted), len(validation.rejected)
        report.rejections = validation.reasons()
        self._log_rejections(report.poll_id, validation)

        self._land(report, to_ndjson(validation.accepted), deadline)

        self.stats.count(
            polls=1,
            polls_failed=int(report.status == "failed"),
            polls_partial=int(report.status == "partial"),
            polls_dropped=int(report.dropped),
            records_accepted=report.accepted,
            records_rejected=report.rejected,
        )
        self.stats.saw_last_updated(validation.newest_last_updated)
        if not report.dropped:
            for vs_currency, part in by_currency.items():
                if part.accepted and part.newest_last_updated is not None:
                    self._plan_backfill(vs_currency, part)
        self.stats.set(last_poll_at=poll_time, last_poll_status=report.status, spool_depth=report.spool_depth)
        level = logging.ERROR if report.dropped else logging.INFO if report.status == "ok" else logging.WARNING
        log_event(log, level, POLL_EVENT, **asdict(report))
        return report

    def _plan_backfill(self, vs_currency: str, validation: Validation) -> None:
        """Plan a back-fill when this poll's data in ``vs_currency`` starts long after the last
        landed poll's in that currency.

        Event times, not clocks: a gap is a stretch without data, whether the producer
        was down, its polls failed, or CoinGecko stood still; per currency, since one
        currency's requests can fail while the others' land. The last poll's newest event
        time in each currency is kept in a file, so a restart finds the gap too.
        """
        newest = validation.newest_last_updated
        previous = self.backfiller.last_poll(vs_currency)
        threshold = self.config.backfill_after_intervals * self.config.interval_seconds
        if previous is not None and threshold and (newest - previous).total_seconds() > threshold:
            tasks = [
                BackfillTask(record["coin_id"], record["symbol"], record["name"], previous, newest, vs_currency)
                for record in validation.accepted
            ]
            self.backfiller.plan(tasks)
            log_event(log, logging.WARNING, "gap_found", vs_currency=vs_currency, start=utc_millis(previous),
                      end=utc_millis(newest), coins=len(tasks))  # fmt: skip
        if previous is None or newest > previous:
            self.backfiller.saw_poll(vs_currency, newest)

    def _backfill_between_polls(self, stop: threading.Event, deadline: float) -> None:
        """Work on planned back-fill until shortly before the next poll; never raises."""
        # Leave the next poll its start: a chart request must end a quarter interval before.
        self.backfiller.step(stop, deadline=deadline - self.config.interval_seconds * (1 - FETCH_SHARE))

    def _fetch(self, report: PollReport, stop: threading.Event, fetch_deadline: float) -> dict[str, Validation]:
        """Every page in every quote currency, one currency after the other, validated per
        currency; a page that fails leaves the others' records (the poll is ``partial``, and
        :attr:`PollReport.errors` names the page and its currency)."""
        by_currency: dict[str, Validation] = {}
        api_seconds = 0.0
        for vs_currency in self.config.vs_currencies:
            validation = by_currency[vs_currency] = Validation()
            for page in self.client.fetch_listing(vs_currency, deadline=fetch_deadline, stop=stop):
                report.pages += 1
                report.attempts += page.attempts
                if page.records is None:
                    report.pages_failed += 1
                    report.errors.append(f"{page.request.label}: {page.error}")
                    continue
                api_seconds += page.latency_seconds
                validation.extend(
                    validate_records(
                        page.records, vs_currency=vs_currency, ingested_at=page.received_at, poll_id=report.poll_id
                    )
                )
            report.duplicates += validation.keep_one_per_coin()
        report.api_latency_ms = _ms(api_seconds)
        return by_currency

    def _land(self, report: PollReport, data: bytes, deadline: float) -> None:
        """Spool the poll (if it has records), then drain the spool in order."""
        started = time.monotonic()
        drained = True
        if data:
            if self.spool.depth >= self.spool.max_polls:
                drained = self._drain(deadline)  # make room first: the landing zone may be back
            try:
                self.spool.add(report.poll_id, data)
            except SpoolFull as exc:
                report.dropped = True
                report.errors.append(str(exc))
        if drained:
            self._drain(deadline)
        pending = self.spool.pending()
        report.landed = bool(data) and not report.dropped and report.poll_id not in pending
        report.spool_depth = len(pending)
        report.upload_ms = _ms(time.monotonic() - started)

    def _drain(self, deadline: float) -> bool:
        """Land spooled polls oldest first; False when the landing zone failed.

        Stops at the first failure, so polls land in order, and once the next poll is
        due, so a long backlog cannot delay polling: it drains over several cycles.
        """
        for index, poll_id in enumerate(self.spool.pending()):
            if index and time.monotonic() >= deadline:
                break
            data = self.spool.read(poll_id)
            try:
                self.landing.put(object_name(poll_id), data)
            except LandingUnavailable as exc:
                log_event(
                    log,
                    logging.WARNING,
                    "landing_unavailable",
                    poll_id=poll_id,
                    error=str(exc),
                    spool_depth=self.spool.depth,
                )
                return False
            except LandingConflict as exc:
                moved = self.spool.quarantine(poll_id)
                log_event(
                    log, logging.ERROR, "landing_conflict", poll_id=poll_id, error=str(exc), quarantined=str(moved)
                )
                continue
            self.spool.remove(poll_id)
            self.stats.count(polls_landed=1, rows_landed=data.count(b"\n"))
        return True

    def _log_rejections(self, poll_id: str, validation: Validation) -> None:
        for rejection in validation.rejected[:MAX_REJECTIONS_LOGGED]:
            log_event(
                log,
                logging.WARNING,
                "record_rejected",
                poll_id=poll_id,
                index=rejection.index,
                coin_id=rejection.coin_id,
                reason=rejection.reason,
            )
        if len(validation.rejected) > MAX_REJECTIONS_LOGGED:
            log_event(
                log,
                logging.WARNING,
                "records_rejected_not_logged",
                poll_id=poll_id,
                count=len(validation.rejected) - MAX_REJECTIONS_LOGGED,
            )

    def _write_heartbeat(self) -> None:
        if not self.config.health_file:
            return
        path = Path(self.config.health_file)
        content = {"time": datetime.now(timezone.utc).isoformat(), "pid": os.getpid(), **asdict(self.stats.snapshot()),
                   "credits": self.credit_state.as_json() if self.credit_state else None}
        temp = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_synced(temp, json.dumps(content, default=str).encode())
            os.replace(temp, path)
        except OSError as exc:
            log_event(log, logging.WARNING, "heartbeat_failed", path=str(path), error=str(exc))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
