"""The streaming job's settings, from the command line or built in code.

``parse_args`` serves ``spark-submit jobs/stream.py …`` on Dataproc; the local
``cryptopipe up`` builds a :class:`StreamConfig` itself. Either way the config checks
every value and combination at construction, so a bad URI fails before Spark starts,
naming the option (:func:`option`) and the value.

The command line is argparse, not pydantic-settings as the producer's and the
deployment's settings are: the job's one source is the argv Dataproc's job API
passes (no environment, no file to layer, which is what pydantic-settings brings),
and its checks are of locations against each other and against the warehouse
(overlaps, staging the warehouse can read, its trigger floor), whose errors read as
argparse's own: the option, the value, exit status 2.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from core.bigquery_quotas import DEFAULT_TRIGGER_SECONDS, MIN_TRIGGER_SECONDS
from core.joboptions import option
from core.schema import MAX_CLOCK_SKEW
from jobs.errors import ConfigError
from jobs.loaders import BIGQUERY_WRITE_PATHS, WAREHOUSE_SCHEMES, Warehouse, warehouse_from_uri
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
    DuckDB; for BigQuery 10 s on the Storage Write path (``jobs/loaders/bigquery_storage.py``)
    and 120 s with load jobs, whose quota refuses anything under 115.2 s
    (``jobs/loaders/bigquery.py``)."""
    available_now: bool = False
    """Process what has landed, in bounded batches, then stop (backfills and tests)."""
    bigquery_write: str = BIGQUERY_WRITE_PATHS[0]
    """How a ``bigquery://`` warehouse writes: ``storage-write`` (PENDING write streams, a
    trigger of seconds) or ``load-jobs`` (a trigger of 115.2 s or more: large backfills)."""
    max_files_per_trigger: int = 200
    """Most landing files per micro-batch: bounds the work (and memory) of one batch. 200
    polls of 250 coins is 50,000 rows: seconds of work, and after an outage few, large
    batches (per-batch costs, and BigQuery load jobs, count per batch, not per row)."""
    watermark: str = "6 hours"
    """How long a de-duplication key is remembered, and how old a row may be before it is
    dropped as late. CoinGecko's ``last_updated`` can be hours old: size it in hours."""
    shuffle_partitions: int = 4
    """Partitions of the de-duplication state. Frozen into the checkpoint by its first run."""
    target: Warehouse = field(init=False, repr=False, compare=False)
    """The warehouse ``warehouse`` names, built once, here: the checks below ask it what
    it can read and sustain, and the stream sets it up and loads into it."""

    def __post_init__(self) -> None:
        for name in ("landing", "archive", "checkpoint", "staging"):
            if not isinstance(getattr(self, name), Location):
                raise ConfigError(f"{option(name)}: expected a Location, got {getattr(self, name)!r}; "
                                  "use Location.parse")
        for name in ("archive", "checkpoint", "staging"):
            other: Location = getattr(self, name)
            if other.overlaps(self.landing):
                raise ConfigError(
                    f"{option(name)} {other.uri} overlaps {option('landing')} {self.landing.uri}: "
                    f"the file source would list (or archive into) its own input; put it beside the landing root"
                )
        warehouse = warehouse_from_uri(self.warehouse, bigquery_write=self.bigquery_write)
        object.__setattr__(self, "target", warehouse)
        warehouse.check_staging(self.staging)
        warehouse.use_checkpoint(self.checkpoint)
        if self.trigger_seconds is None:
            object.__setattr__(self, "trigger_seconds", warehouse.default_trigger_seconds)
        trigger = option("trigger_seconds")
        if not self.available_now and self.trigger_seconds <= 0:
            raise ConfigError(f"{trigger}: {self.trigger_seconds!r} must be more than 0")
        if not self.available_now and self.trigger_seconds < warehouse.min_trigger_seconds:
            raise ConfigError(
                f"{trigger}: {self.trigger_seconds!r} is shorter than {warehouse.min_trigger_seconds:g} s, "
                f"the least {self.warehouse} sustains all day (see 'Load-job quota' and 'Storage Write API' in docs/STREAM.md); "
                f"use {warehouse.default_trigger_seconds:g} or more"
            )
        for name in ("max_files_per_trigger", "shuffle_partitions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{option(name)}: {getattr(self, name)!r} must be at least 1")
        if self.watermark_delay <= MAX_CLOCK_SKEW:
            raise ConfigError(
                f"{option('watermark')}: {self.watermark!r} must be longer than the {MAX_CLOCK_SKEW} a valid row may "
                f"be ahead of now, or such a row would make rows arriving on time count as late"
            )

    @classmethod
    def locations(cls, **paths: object) -> dict[str, Location]:
        """``landing=…, archive=…`` (paths or URIs) as Locations, a bad one refused naming its option."""
        return {name: Location.parse(value, option=option(name)) for name, value in paths.items()}

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
        raise ConfigError(
            f"{option('watermark')}: {value!r} is not a duration like '6 hours' (seconds, minutes, hours or days)"
        )
    return timedelta(**{match.group(2).lower() + "s": float(match.group(1))})


def build_parser() -> argparse.ArgumentParser:
    """The job's command line; every option maps to the :class:`StreamConfig` field of its name.

    Its help texts are the job's reference: ``--help`` prints them and docs/STREAM.md's
    options table is generated from them (:func:`options_table`).
    """
    defaults = StreamConfig.__dataclass_fields__
    parser = argparse.ArgumentParser(
        prog="jobs/stream.py",
        description="Stream landing NDJSON into the warehouse: validate, quarantine, de-duplicate, load exactly once.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    location = "a local path, file:///abs/path or gs://bucket/path"
    parser.add_argument(option("landing"), required=True, help=f"landing root: {location}")
    parser.add_argument(
        option("archive"), required=True,
        help=f"where Spark moves processed landing files; must not overlap {option('landing')}",
    )
    parser.add_argument(
        option("checkpoint"), required=True,
        help="the query's checkpoint: offsets, de-duplication state, the query id that names loads, and the "
        "Storage Write path's stream records; never share one between two streams",
    )
    parser.add_argument(
        option("staging"), required=True,
        help="where batches are staged as Parquet: local for DuckDB, local or gs:// for the Storage Write path "
        "(the driver reads it), gs:// for load jobs (BigQuery reads it)",
    )
    parser.add_argument(
        option("warehouse"), required=True, help=" or ".join(WAREHOUSE_SCHEMES.values())
    )
    when = parser.add_mutually_exclusive_group()
    when.add_argument(
        option("trigger_seconds"), type=float,
        help="seconds between micro-batches; left out, the warehouse's own: " + _trigger_defaults(),
    )
    when.add_argument(
        option("available_now"), action="store_true",
        help="process what has landed, in bounded batches, then stop (backfills, scheduled runs, tests)",
    )
    parser.add_argument(
        option("bigquery_write"), choices=BIGQUERY_WRITE_PATHS, default=defaults["bigquery_write"].default,
        help="how a bigquery warehouse writes: Storage Write API streams (seconds of freshness), "
        "or load jobs (large backfills)",
    )
    parser.add_argument(
        option("max_files_per_trigger"), type=int, default=defaults["max_files_per_trigger"].default,
        help="most landing files per micro-batch",
    )
    parser.add_argument(
        option("watermark"), default=defaults["watermark"].default,
        help="how long a de-duplication key is remembered and how late a tick may be, e.g. '6 hours'; "
        f"must exceed the {_duration(MAX_CLOCK_SKEW)} clock skew a valid tick may have",
    )
    parser.add_argument(
        option("shuffle_partitions"), type=int, default=defaults["shuffle_partitions"].default,
        help="de-duplication state partitions; frozen into the checkpoint at its first run",
    )
    return parser


def _trigger_defaults() -> str:
    """Each warehouse's default trigger and floor: DuckDB takes the warehouses' base default;
    BigQuery's come from its quotas (core/bigquery_quotas.py), read without importing its client."""
    bigquery = "; ".join(f"BigQuery {path} {DEFAULT_TRIGGER_SECONDS[path]:g} (at least {MIN_TRIGGER_SECONDS[path]:g})"
                         for path in BIGQUERY_WRITE_PATHS)
    return f"DuckDB {Warehouse.default_trigger_seconds:g}; {bigquery}"


def _duration(value: timedelta) -> str:
    hours = value.total_seconds() / 3600
    return f"{hours:g} h" if hours >= 1 else f"{value.total_seconds():g} s"


def options_table() -> str:
    """The job's options as docs/STREAM.md shows them: option, meaning, default."""
    from core.docsections import markdown_table

    rows = []
    for action in build_parser()._actions:
        if not action.option_strings or action.dest == "help":
            continue
        if action.required:
            default = "required"
        elif isinstance(action, argparse._StoreTrueAction):
            default = "off"
        else:
            default = "see meaning" if action.default is None else f"`{action.default}`"
        rows.append((f"`{action.option_strings[0]}`", action.help, default))
    return markdown_table(("option", "meaning", "default"), rows)


def parse_args(argv: Sequence[str] | None = None) -> StreamConfig:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None) into a checked config.

    Bad values exit with status 2 and a message naming the option and the value,
    as argparse does for its own errors.
    """
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    try:
        places = {name: args.pop(name) for name in ("landing", "archive", "checkpoint", "staging")}
        return StreamConfig(**StreamConfig.locations(**places), **args)
    except ConfigError as error:
        parser.error(str(error))
