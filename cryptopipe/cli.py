"""The ``cryptopipe`` command: run the local pipeline, query its warehouse.

Thin by design: each command parses options, calls tested code
(:mod:`cryptopipe.pipeline`, :mod:`jobs.loaders.duckdb`) and turns the errors it can
explain into one red line and exit status 1; an option value the producer's or the
stream's settings refuse is a usage error (exit status 2) naming the option.

Each option shared by several commands is declared once below, and an option that
sets a producer or stream setting shows that setting's own default (from its
settings class) rather than a copy: left out, the setting's variable or default holds.

    cryptopipe up --source replay --duration 120
    cryptopipe query "SELECT count(*) FROM market_ticks"
    cryptopipe status
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from cryptopipe.dashboard import DEFAULT_HOST, DEFAULT_PORT, DashboardError, DashboardServer
from cryptopipe.dashboard.service import STALE_AFTER_SECONDS
from cryptopipe.errors import PipelineError
from cryptopipe.interrupt import stop_on_ctrl_c
from cryptopipe.health.judge import pipeline_health
from cryptopipe.health.render import dashboard_alerts, status_table
from core.layout import LocalLayout
from cryptopipe.pipeline import PROCESSING_MODES, LocalPipeline, Status
from producer.config import ENV_PREFIX as PRODUCER_ENV_PREFIX
from cryptopipe.settings import (
    SOURCES, default_interval_seconds, default_trigger_seconds, producer_config, producer_configured,
    producer_default, producer_setting, stream_config,
)

if TYPE_CHECKING:
    from jobs import StreamConfig
    from producer import ProducerConfig

err = Console(stderr=True)
out = Console()

#: Seconds between refreshes of the status line.
STATUS_REFRESH_SECONDS = 1.0

#: `up`'s options that set a producer setting: ProducerConfig field -> click parameter.
PRODUCER_OPTIONS = {
    "interval_seconds": "interval", "top_n": "top_n", "coin_ids": "coin_ids", "vs_currencies": "vs_currencies",
}

# Options more than one command takes, each declared once.
VERBOSE = click.option("-v", "--verbose", is_flag=True, help="Log the producer's, the stream's and Spark's lines too.")
DATA_DIR = click.option(
    "--data-dir", "layout", type=click.Path(file_okay=False, path_type=Path), default=Path("data"), show_default=True,
    callback=lambda _ctx, _param, path: LocalLayout(path),
    help="The local pipeline's data directory: landing zone, checkpoint, warehouse and health files.",
)
SOURCE = click.option("--source", type=click.Choice(SOURCES), default="live", show_default=True,
                      help="The live CoinGecko API, or the bundled replay (no internet needed).")
TOP_N = click.option("--top-n", default=None, show_default=str(producer_default("top_n")),
                     help="The top N coins by market cap, or 'all' for every coin CoinGecko lists.")
COIN_IDS = click.option("--coin-ids", default=None,
                        help="These coins instead of the top N (comma-separated CoinGecko ids).")
VS_CURRENCIES = click.option("--vs-currencies", default=None, show_default=",".join(producer_default("vs_currencies")),
                             help="Quote currencies, comma-separated (usd,eur,btc): one request a page and currency. "
                                  f"Unset: {PRODUCER_ENV_PREFIX}VS_CURRENCIES, else the default.")


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(1)


def _status_line(status: Status, elapsed: float) -> str:
    freshness = status.freshness_seconds
    fresh = "no rows yet" if freshness is None else f"newest row {freshness:.0f} s old"
    return (
        f"[bold]{elapsed:5.0f} s[/] · polls {status.polls} · rows landed {status.rows_landed}"
        f" (rejected {status.rows_rejected}) · batches {status.batches}"
        f" · rows loaded {status.rows_loaded} (quarantined {status.rows_quarantined}) · {fresh}"
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@VERBOSE
def cli(verbose: bool) -> None:
    """cryptopipe: CoinGecko market data -> landing zone -> Spark -> warehouse."""
    stop_on_ctrl_c()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _log_verbosely(verbose)


def _log_verbosely(verbose: bool) -> None:
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    # py4j announces every callback connection at INFO; keep the screen for the status.
    logging.getLogger("py4j").setLevel(logging.NOTSET if verbose else logging.ERROR)


def _settings(ctx: click.Context, layout: LocalLayout) -> tuple[ProducerConfig, StreamConfig]:
    """The producer's and the stream's settings from `up`'s options; a value they refuse is a
    usage error naming the option that set it (or the variable, for one no option sets)."""
    from jobs import ConfigError as StreamConfigError
    from producer import ConfigError as ProducerConfigError
    from producer.config import InvalidSetting

    options = ctx.params
    given = {field: options[name] for field, name in PRODUCER_OPTIONS.items() if options[name] is not None}
    try:
        return (producer_config(layout, options["source"], **given),
                stream_config(layout, trigger_seconds=options["trigger_seconds"]))
    except InvalidSetting as error:
        param = next((p for p in ctx.command.params if p.name == PRODUCER_OPTIONS.get(error.field)), None)
        if param is None:
            raise click.UsageError(str(error), ctx) from None
        raise click.BadParameter(f"{error.value!r}: {error.reason}", ctx, param) from None
    except (ProducerConfigError, StreamConfigError) as error:
        raise click.UsageError(str(error), ctx) from None


@contextmanager
def _live_status(console: Console) -> Iterator[Live]:
    """A status line redrawn in place; it stays on screen, and what follows starts on a new line."""
    try:
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            yield live
    finally:
        if not console.is_terminal:
            console.line()  # rich ends the last render with a line break on terminals only


@cli.command()
@SOURCE
@DATA_DIR
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, show_default="until Ctrl-C",
              help="Stop after this many seconds.")
@click.option("--max-polls", type=click.IntRange(min=1), default=None,
              help="Stop after this many polls, once the stream has loaded them.")
@click.option("--interval", type=click.FloatRange(min=1), default=None,
              show_default=f"{default_interval_seconds('live'):g} live, {default_interval_seconds('replay'):g} replay",
              help="Seconds between polls.")
@TOP_N
@COIN_IDS
@VS_CURRENCIES
@click.option("--trigger-seconds", type=click.FloatRange(min=0.1), default=None,
              show_default=f"{default_trigger_seconds():g}", help="Seconds between the stream's micro-batches.")
@click.option("--replay-port", type=click.IntRange(min=0, max=65535), default=0, show_default="any free port",
              help="Port of the replay server.")
@click.option("--dashboard-port", type=click.IntRange(min=0, max=65535), default=DEFAULT_PORT, show_default=True,
              help="Port of the dashboard on 127.0.0.1 (0: any free port).")
@click.option("--no-dashboard", is_flag=True, help="Do not serve the dashboard.")
@click.option("--processing", type=click.Choice(PROCESSING_MODES), default="stream", show_default=True,
              help="stream: the job runs all the time; scheduled: the job runs with --available-now every --every "
                   "seconds, one run at a time (docs/STREAM.md, Scheduled mode).")
@click.option("--every", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds between scheduled runs (with --processing scheduled).")
@VERBOSE
@click.pass_context
def up(ctx, source, layout, duration, max_polls, interval, top_n, coin_ids, vs_currencies, trigger_seconds,
       replay_port, dashboard_port, no_dashboard, processing, every, verbose):
    """Run the replay server (with --source replay), the producer and the stream until Ctrl-C."""
    producer, stream = _settings(ctx, layout)
    verbose = verbose or ctx.find_root().params["verbose"]
    _log_verbosely(verbose)
    pipeline = LocalPipeline(
        layout, producer, stream,
        replay_port=replay_port if source == "replay" else None,
        max_polls=max_polls,
        dashboard_port=None if no_dashboard else dashboard_port,
        verbose=verbose,
        processing=processing,
        every_seconds=every,
    )
    if source == "replay":
        err.print("[yellow]source: the bundled CoinGecko replay on 127.0.0.1 (no internet needed)[/]")
    else:
        err.print("source: the live CoinGecko API (use --source replay to run offline)")
    started = time.monotonic()
    try:
        with pipeline, _live_status(err) as live:
            err.print(f"warehouse: {pipeline.layout.warehouse} · Ctrl-C to stop")
            if pipeline.dashboard_url:
                err.print(f"dashboard: {pipeline.dashboard_url}")
            while True:
                elapsed = time.monotonic() - started
                live.update(_status_line(pipeline.status(), elapsed))
                if duration is not None and elapsed >= duration:
                    break
                if max_polls is not None and pipeline.caught_up():
                    live.update(_status_line(pipeline.status(), elapsed))
                    break
                pipeline.check_stream()
                time.sleep(STATUS_REFRESH_SECONDS)
    except KeyboardInterrupt:
        err.print("stopping: the producer finishes its poll, the stream its batch")
    except PipelineError as error:
        _fail(str(error))
    status = pipeline.status() if pipeline.started else None
    if status is not None:
        err.print(f"done: {status.rows_loaded} rows loaded into {pipeline.layout.warehouse}")


@cli.command()
@click.argument("sql")
@DATA_DIR
@click.option("--max-rows", type=click.IntRange(min=1), default=100, show_default=True,
              help="Print at most this many rows.")
def query(sql: str, layout: LocalLayout, max_rows: int) -> None:
    """Run SQL against the local warehouse (also while `cryptopipe up` writes to it)."""
    import duckdb

    from jobs.errors import WarehouseError
    from jobs.loaders.duckdb import open_reader

    try:
        with open_reader(layout.warehouse) as con:
            cursor = con.execute(sql)
            columns = [d[0] for d in cursor.description or ()]
            rows = cursor.fetchmany(max_rows + 1)
    except WarehouseError as error:
        _fail(str(error))
    except duckdb.Error as error:
        _fail(f"query failed: {error}")
    table = Table(*columns, show_lines=False)
    for row in rows[:max_rows]:
        table.add_row(*("NULL" if value is None else str(value) for value in row))
    out.print(table)
    shown = min(len(rows), max_rows)
    err.print(f"{shown} row{'s' if shown != 1 else ''}" + (f" (first {max_rows})" if len(rows) > max_rows else ""))


@cli.command()
@DATA_DIR
@click.option("--warehouse", metavar="URI", default=None,
              help="Show this warehouse instead of the data directory's: duckdb:///abs/path.duckdb or "
                   "bigquery://project.dataset.")
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to serve on. The dashboard has no login: keep it on loopback.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=DEFAULT_PORT, show_default=True,
              help="Port to serve on (0: any free port).")
@VS_CURRENCIES
@click.option("--stale-after", type=click.FloatRange(min=1), default=STALE_AFTER_SECONDS, show_default=True,
              help="Seconds after which the freshness indicator turns red.")
@click.pass_context
def dashboard(ctx, layout, warehouse, host, port, vs_currencies, stale_after):
    """Serve the live dashboard (log-scale prices, latest prices, freshness) until Ctrl-C."""
    from producer.config import InvalidSetting

    try:
        currencies = producer_configured("vs_currencies") if vs_currencies is None \
            else producer_setting("vs_currencies", vs_currencies)
    except InvalidSetting as error:
        if vs_currencies is None:  # a CRYPTOPIPE__PRODUCER__* variable: the error names it
            raise click.UsageError(str(error), ctx) from None
        param = next(p for p in ctx.command.params if p.name == "vs_currencies")
        raise click.BadParameter(f"{error.value!r}: {error.reason}", ctx, param) from None
    try:
        server = DashboardServer(
            warehouse or layout.warehouse, host=host, port=port,
            vs_currencies=currencies, stale_after_seconds=stale_after,
            alerts=None if warehouse else functools.partial(dashboard_alerts, layout),
        ).start()  # fmt: skip
    except DashboardError as error:
        _fail(str(error))
    try:  # from the line saying Ctrl-C stops it: a Ctrl-C after it stops the server
        err.print(f"dashboard: {server.url} · warehouse {server.service.backend.uri} · Ctrl-C to stop")
        while True:
            time.sleep(STATUS_REFRESH_SECONDS)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@cli.command()
@DATA_DIR
def status(layout: LocalLayout) -> None:
    """Data age, producer heartbeat, stream state and quarantine rate against the cloud alerts'
    thresholds (docs/OPERATIONS.md); exit status 1 when any is red."""
    from jobs.errors import WarehouseError

    try:
        verdicts = pipeline_health(layout)
    except WarehouseError as error:
        _fail(str(error))
    out.print(status_table(verdicts))
    if not all(verdict.ok for verdict in verdicts):
        sys.exit(1)


@cli.command("backfill")
@click.option("--from", "start", required=True, metavar="TIME",
              help="Start of the range: ISO 8601 (UTC unless a zone is given, e.g. 2026-11-01T00:00Z) or unix s.")
@click.option("--to", "end", required=True, metavar="TIME", help="End of the range, at most now.")
@COIN_IDS
@TOP_N
@VS_CURRENCIES
@SOURCE
@DATA_DIR
@click.pass_context
def backfill_command(ctx, start, end, coin_ids, top_n, vs_currencies, source, layout):
    """Fill a range from CoinGecko's market charts (5-minutely within a day, hourly to 90 days, daily beyond)."""
    from cryptopipe.backfill import backfill
    from producer import BackfillError
    from producer.backfill import CoinSetUnavailable, parse_moment
    from producer.config import InvalidSetting

    settings = {name: value for name, value in (("coin_ids", coin_ids), ("top_n", top_n),
                                                ("vs_currencies", vs_currencies)) if value is not None}
    try:
        report = backfill(layout, source, parse_moment(start, "--from"), parse_moment(end, "--to"), **settings)
    except (BackfillError, InvalidSetting) as error:
        raise click.UsageError(str(error), ctx) from None
    except (CoinSetUnavailable, PipelineError) as error:
        _fail(str(error))
    err.print(
        f"back-fill: {report.tasks} charts (coin × currency) · {report.landed_rows} rows in"
        f" {report.landed_objects} objects landed"
        f" · {report.already_done} already back-filled · {report.clipped} cut to what was not back-filled yet"
        f" · {report.rejected_points} points rejected"
    )
    if report.failed:
        _fail("no chart for " + "; ".join(f"{coin}: {error}" for coin, error in report.failed.items())
              + " (run the same back-fill again: what landed is skipped)")
    if report.spooled:
        _fail(f"{report.spooled} objects wait in the spool: the landing zone was unreachable; run it again")


def options_table(command: str) -> str:
    """``cryptopipe <command>``'s options as the docs list them: option, what it does, default."""
    from core.docsections import markdown_table

    rows = []
    for param in cli.commands[command].params:
        if not isinstance(param, click.Option):
            continue
        flags = ", ".join(f"`{opt}`" for opt in param.opts)
        if param.is_flag:
            default = "off"
        elif isinstance(param.show_default, str):
            default = param.show_default
        else:
            default = f"`{param.default}`" if param.show_default and param.default is not None else ""
        rows.append((flags, param.help or "", default))
    return markdown_table(("option", "what it does", "default"), rows)


def main() -> None:
    cli()
