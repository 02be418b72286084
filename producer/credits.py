"""Monthly call credits: the calls made this month, the account's own count, and a pace that lasts.

CoinGecko bills call credits by calendar month, every request one credit, a 429
included (core/coingecko_plans.py, with the sources). Start-up already refuses a
schedule that cannot last the longest month (:class:`producer.config.ProducerConfig`);
this module keeps the promise while the producer runs, when something the schedule
did not plan for spends credits: retries, back-fill, another client on the same key.

- :class:`CreditLedger`: the calls of this month (UTC), counted on every HTTP attempt
  by :class:`producer.coingecko.CoinGeckoClient`, kept in
  ``<spool_dir>/credits/ledger.json`` (replaced atomically, under a file lock: the
  service and an on-demand back-fill share it), so a restart does not reset it.
  A new month starts from zero.
- :meth:`Credits.reconcile`: on paid plans the account's own figures from ``GET /key``
  replace the ledger's (the account counts every client of the key; we count only ours).
- :meth:`Credits.state`: remaining credits against what live polls at the configured
  interval need until the month ends. When they fall short, live polls stretch their
  interval so the rest lasts to the month's end (:meth:`CreditState.interval_seconds`)
  and back-fill, which only spends what live polls leave, waits.

Time is an injected ``clock`` returning an aware UTC ``datetime``, so tests move
through a month without waiting it out.
"""

from __future__ import annotations

import fcntl
import json
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from core.coingecko_plans import USAGE_CHECK_SECONDS, calls_needed
from core.timefmt import utc_millis, utc_now
from producer.config import ProducerConfig
from producer.errors import BadPayload
from producer.files import replace_json

#: The ledger's folder inside ``spool_dir``.
FOLDER = "credits"


def month_of(moment: datetime) -> str:
    """The calendar month (UTC) ``moment`` falls in, e.g. ``2026-11``."""
    return f"{moment.astimezone(timezone.utc):%Y-%m}"


def month_end(moment: datetime) -> datetime:
    """The first instant (UTC) of the month after ``moment``'s: when the credits renew."""
    moment = moment.astimezone(timezone.utc)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class AccountUsage:
    """What ``GET /key`` says of the account (https://docs.coingecko.com/reference/api-usage)."""

    credits: int
    """``monthly_call_credit``."""
    remaining: int
    """``current_remaining_monthly_calls``."""
    rate_limit_per_minute: int | None
    """``rate_limit_request_per_minute``."""

    @property
    def used(self) -> int:
        return self.credits - self.remaining


def parse_usage(body: bytes) -> AccountUsage:
    """Decode ``/key``'s answer; :class:`BadPayload` when it is not one."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadPayload(f"/key answered no JSON: {body[:120]!r}") from None
    numbers = {}
    for name in ("monthly_call_credit", "current_remaining_monthly_calls", "rate_limit_request_per_minute"):
        value = payload.get(name) if isinstance(payload, dict) else None
        if not (value is None or isinstance(value, (int, float)) and not isinstance(value, bool)):
            value = None
        numbers[name] = None if value is None else int(value)
    if numbers["monthly_call_credit"] is None or numbers["current_remaining_monthly_calls"] is None:
        raise BadPayload(f"/key answered without monthly_call_credit and current_remaining_monthly_calls: "
                         f"{body[:200]!r}")
    return AccountUsage(numbers["monthly_call_credit"], numbers["current_remaining_monthly_calls"],
                        numbers["rate_limit_request_per_minute"])


@dataclass(frozen=True)
class Entry:
    """The ledger file: the month, the calls counted in it, and the account's credits once reconciled."""

    month: str
    used: int = 0
    account_credits: int | None = None
    """``monthly_call_credit`` at the last reconcile this month; None: the configured figure holds."""
    reconciled_at: str | None = None


class CreditLedger:
    """The calls of this calendar month (UTC), in ``folder/ledger.json``; thread- and process-safe."""

    def __init__(self, folder: Path, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.folder = folder
        self.path = folder / "ledger.json"
        self.clock = clock
        self._lock = threading.Lock()

    @contextmanager
    def _locked(self) -> Iterator[Entry]:
        """The entry of this month (a new month starts empty), under the thread and the file lock."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield self._read()

    def _read(self) -> Entry:
        month = month_of(self.clock())
        try:
            raw: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            return Entry(month)
        return Entry(**raw) if raw.get("month") == month else Entry(month)

    def read(self) -> Entry:
        """This month's entry as the file holds it."""
        with self._locked() as entry:
            return entry

    def record(self, calls: int = 1) -> Entry:
        """Count ``calls`` HTTP attempts made now; returns the entry after them."""
        with self._locked() as entry:
            entry = Entry(entry.month, entry.used + calls, entry.account_credits, entry.reconciled_at)
            replace_json(self.path, entry.__dict__)
            return entry

    def reconcile(self, usage: AccountUsage) -> tuple[Entry, Entry]:
        """Take the account's figures as this month's: (the entry before, the entry after)."""
        with self._locked() as before:
            after = Entry(before.month, usage.used, usage.credits, utc_millis(self.clock()))
            replace_json(self.path, after.__dict__)
            return before, after


@dataclass(frozen=True)
class CreditState:
    """Where the month's credits stand: the heartbeat's ``credits`` and the ``credits`` log event."""

    plan: str
    month: str
    used: int
    """Calls this month: the ledger's count, or the account's since the last reconcile."""
    credits: int | None
    """Credits this month; None: no monthly cap (keyless), and nothing below applies."""
    remaining: int | None
    needed_to_month_end: int
    """Calls live polls at the configured interval (and the usage checks) make until the month ends."""
    month_ends_at: str
    runs_out_at: str | None
    """When the credits run out at the configured interval, if before the month ends; None: they last."""
    configured_interval_seconds: float
    interval_seconds: float
    """The interval polls keep now: the configured one, or longer so the credits last the month."""
    reconciled_at: str | None

    @property
    def short(self) -> bool:
        """The projection runs out before the month does."""
        return self.runs_out_at is not None

    @property
    def spare(self) -> int | None:
        """Credits beyond what live polls need to the month's end (back-fill's share); None: no cap."""
        return None if self.remaining is None else self.remaining - self.needed_to_month_end

    @property
    def backfill_waits(self) -> bool:
        """Back-fill spends only what live polls leave: none is left."""
        return self.spare is not None and self.spare < 1

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "short": self.short, "spare": self.spare, "backfill_waits": self.backfill_waits}


class Credits:
    """The month's credits for one config: its ledger, the account's count and the pace that lasts."""

    def __init__(self, config: ProducerConfig, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.config = config
        self.clock = clock
        self.ledger = CreditLedger(Path(config.spool_dir) / FOLDER, clock=clock)

    def record(self, calls: int = 1) -> None:
        """Count ``calls`` HTTP attempts."""
        self.ledger.record(calls)

    def reconcile(self, usage: AccountUsage) -> tuple[Entry, Entry]:
        return self.ledger.reconcile(usage)

    def state(self) -> CreditState:
        """The month's credits now, and the interval that makes them last."""
        now = self.clock()
        entry = self.ledger.read()
        cfg = self.config
        credits = entry.account_credits if entry.account_credits is not None else cfg.monthly_credit_limit
        end = month_end(now)
        seconds_left = (end - now).total_seconds()
        checks = cfg.plan.reports_usage
        needed = calls_needed(seconds_left, interval_seconds=cfg.interval_seconds,
                              calls_per_poll=cfg.requests_per_poll, usage_checks=checks)
        remaining = None if credits is None else credits - entry.used
        runs_out_at, interval = None, cfg.interval_seconds
        if remaining is not None and remaining < needed:
            per_second = cfg.requests_per_poll / cfg.interval_seconds + (1 / USAGE_CHECK_SECONDS if checks else 0)
            runs_out_at = utc_millis(now + timedelta(seconds=max(remaining, 0) / per_second))
            interval = stretched_interval(remaining, seconds_left, cfg.requests_per_poll, checks,
                                          cfg.interval_seconds)
        return CreditState(cfg.api_plan, entry.month, entry.used, credits, remaining, needed, utc_millis(end),
                           runs_out_at, cfg.interval_seconds, interval, entry.reconciled_at)


def stretched_interval(remaining: int, seconds_left: float, calls_per_poll: int, usage_checks: bool,
                       interval_seconds: float) -> float:
    """The interval at which ``remaining`` credits last ``seconds_left`` (the usage checks set
    aside), never shorter than ``interval_seconds``; with none to spare, until just past the
    month's end, when they renew."""
    checks = math.ceil(seconds_left / USAGE_CHECK_SECONDS) if usage_checks else 0
    polls = (remaining - checks) // calls_per_poll
    if polls < 1:
        return seconds_left + 1.0
    return max(interval_seconds, seconds_left / polls)
