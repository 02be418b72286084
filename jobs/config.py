"""The streaming job's settings, from the command line or built in code.

``parse_args`` serves ``spark-submit jobs/stream.py …`` on Dataproc and the local
``cryptopipe up`` alike; :class:`StreamConfig` checks every value and combination at
construction, so a bad URI fails before Spark starts, naming the option and value.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from core.schema import MAX_CLOCK_SKEW
from jobs.errors import ConfigError
from jobs.loaders import WAREHOUSE_SCHEMES, warehouse_from_uri
from jobs.locations import Location

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class StreamConfig:
    """Everything the streaming job needs. Invalid values raise :class:`ConfigError`."""

    landing: Location
    """Root of the landing zone (``<landing>/dt=YYYY-MM-DD/hour=HH/<poll_id>.ndjson``)."""
    archive: Location
    """Where Spark moves processed landing files (``sourceArchiveDir``); outside ``landing``."""
    checkpoint: Location
    """The query's checkpoint: offsets, de-duplication state, and the query id that names loads."""
    staging: Location
    """Where each micro-batch is written as Parquet before the warehouse loads it."""
    warehouse: str
    """Where batches are loaded: ``duckdb:///abs/path.duckdb`` or ``bigquery://project.dataset``."""
    trigger_seconds: float | None = None
    """Seconds between micro-batches; None takes the warehouse's default: 1 s for
    DuckDB, 120 s for BigQuery, whose load-job quota refuses anything under 115.2 s
    (``jobs/loaders/bigquery.py``)."""
    available_now: bool = False
    """Process what has landed, in bounded batches, then stop (backfills and tests)."""
    max_files_per_trigger: int = 200
    """Most landing files per micro-batch: bounds the work (and memory) of one batch. 200
    polls of 250 coins is 50,000 rows: seconds of work, and after an outage few, large
    batches (per-batch costs, and BigQuery load jobs, count per batch, not per row)."""
    watermark: str = "6 hours"
    """How long a de-duplication key is remembered, and how old a row may be before it is
    dropped as late. CoinGecko's ``last_updated`` can be hours old: size it in hours."""
    shuffle_partitions: int = 4
    """Partitions of the de-duplication state. Frozen into the checkpoint by its first run."""

    def __post_init__(self) -> None:
        for name in ("landing", "archive", "checkpoint", "staging"):
            if not isinstance(getattr(self, name), Location):
                raise ConfigError(f"--{name}: expected a Location, got {getattr(self, name)!r}; use Location.parse")
        for name in ("archive", "checkpoint", "staging"):
            other: Location = getattr(self, name)
            if other.overlaps(self.landing):
                raise ConfigError(
                    f"--{name} {other.uri} overlaps --landing {self.landing.uri}: "
                    f"the file source would list (or archive into) its own input; put it beside the landing root"
                )
        warehouse = warehouse_from_uri(self.warehouse)
        warehouse.check_staging(self.staging)
        if self.trigger_seconds is None:
            object.__setattr__(self, "trigger_seconds", warehouse.default_trigger_seconds)
        if not self.available_now and self.trigger_seconds <= 0:
            raise ConfigError(f"--trigger-seconds: {self.trigger_seconds!r} must be more than 0")
        if not self.available_now and self.trigger_seconds < warehouse.min_trigger_seconds:
            raise ConfigError(
                f"--trigger-seconds: {self.trigger_seconds!r} is shorter than {warehouse.min_trigger_seconds:g} s, "
                f"the least {self.warehouse} sustains all day (see 'Load-job quota' in docs/STREAM.md); "
                f"use {warehouse.default_trigger_seconds:g} or more"
            )
        if self.max_files_per_trigger < 1:
            raise ConfigError(f"--max-files-per-trigger: {self.max_files_per_trigger!r} must be at least 1")
        if self.shuffle_partitions < 1:
            raise ConfigError(f"--shuffle-partitions: {self.shuffle_partitions!r} must be at least 1")
        if self.watermark_delay <= MAX_CLOCK_SKEW:
            raise ConfigError(
                f"--watermark: {self.watermark!r} must be longer than the {MAX_CLOCK_SKEW} a valid row may be "
                f"ahead of now, or such a row would make rows arriving on time count as late"
            )

    @property
    def watermark_delay(self) -> timedelta:
        """``watermark`` as a duration."""
        return parse_interval(self.watermark)

    @property
    def trigger(self) -> dict[str, object]:
        """Keyword arguments for ``DataStreamWriter.trigger``."""
        if self.available_now:
            return {"availableNow": True}
        return {"processingTime": f"{round(self.trigger_seconds * 1000)} milliseconds"}


def parse_interval(value: str) -> timedelta:
    """``"6 hours"`` -> ``timedelta(hours=6)``; ConfigError for anything else."""
    match = _INTERVAL.match(value)
    if not match:
        raise ConfigError(f"--watermark: {value!r} is not a duration like '6 hours' (seconds, minutes, hours or days)")
    return timedelta(**{match.group(2).lower() + "s": float(match.group(1))})


def build_parser() -> argparse.ArgumentParser:
    """The job's command line; every option maps to a :class:`StreamConfig` field."""
    defaults = StreamConfig.__dataclass_fields__
    parser = argparse.ArgumentParser(
        prog="jobs/stream.py",
        description="Stream landing NDJSON into the warehouse: validate, quarantine, de-duplicate, load exactly once.",
    )
    location = "a local path, file:///abs/path or gs://bucket/path"
    parser.add_argument("--landing", required=True, help=f"landing root ({location})")
    parser.add_argument(
        "--archive", required=True, help=f"where processed files are moved, outside --landing ({location})"
    )
    parser.add_argument("--checkpoint", required=True, help=f"the query's checkpoint ({location})")
    parser.add_argument("--staging", required=True, help=f"where batches are staged as Parquet ({location})")
    parser.add_argument("--warehouse", required=True, help=f"warehouse URI: {' or '.join(WAREHOUSE_SCHEMES.values())}")
    when = parser.add_mutually_exclusive_group()
    when.add_argument(
        "--trigger-seconds",
        type=float,
        help="seconds between micro-batches (default: 1 for duckdb, 120 for bigquery: its load-job quota)",
    )
    when.add_argument("--available-now", action="store_true", help="process what has landed, then stop")
    parser.add_argument(
        "--max-files-per-trigger",
        type=int,
        default=defaults["max_files_per_trigger"].default,
        help="most landing files per micro-batch (default: %(default)s)",
    )
    parser.add_argument(
        "--watermark",
        default=defaults["watermark"].default,
        help="de-duplication memory and lateness bound, e.g. '6 hours' (default: %(default)s)",
    )
    parser.add_argument(
        "--shuffle-partitions",
        type=int,
        default=defaults["shuffle_partitions"].default,
        help="de-duplication state partitions; fixed by the checkpoint's first run (default: %(default)s)",
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> StreamConfig:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None) into a checked config.

    Bad values exit with status 2 and a message naming the option and the value,
    as argparse does for its own errors.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return StreamConfig(
            landing=Location.parse(args.landing, option="--landing"),
            archive=Location.parse(args.archive, option="--archive"),
            checkpoint=Location.parse(args.checkpoint, option="--checkpoint"),
            staging=Location.parse(args.staging, option="--staging"),
            warehouse=args.warehouse,
            trigger_seconds=args.trigger_seconds,
            available_now=args.available_now,
            max_files_per_trigger=args.max_files_per_trigger,
            watermark=args.watermark,
            shuffle_partitions=args.shuffle_partitions,
        )
    except ConfigError as error:
        parser.error(str(error))
