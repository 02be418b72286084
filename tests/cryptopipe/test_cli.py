"""The ``cryptopipe`` command: `up` on the bundled replay, `query`, and its clear errors."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from click.testing import CliRunner

from cryptopipe.cli import cli
from cryptopipe.local import LocalLayout


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.spark
def test_up_on_replay_loads_rows_that_query_shows_for_at_least_100_coins(spark, tmp_path):
    data = tmp_path / "data"
    result = _invoke(
        "up", "--source", "replay", "--data-dir", str(data), "--max-polls", "2", "--interval", "2",
        "--dashboard-port", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "bundled CoinGecko replay" in result.output
    assert "dashboard: http://127.0.0.1:" in result.output
    assert re.search(r"^done: \d+ rows loaded into ", result.output, re.MULTILINE), result.output

    shown = _invoke(
        "query", "--data-dir", str(data),
        "SELECT count(DISTINCT coin_id) AS coins, min(price) > 0 AS priced FROM market_ticks",
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    coins, priced = shown.output.split("\n")[3].strip("│ ").split("│")
    assert int(coins) >= 100 and priced.strip() == "True"


def test_query_prints_rows_as_a_table(tmp_path):
    import duckdb

    layout = LocalLayout(tmp_path)
    with duckdb.connect(str(layout.warehouse)) as con:
        con.execute("CREATE TABLE market_ticks AS SELECT 'bitcoin' AS coin_id, 104512.5 AS price")
    result = _invoke("query", "--data-dir", str(tmp_path), "SELECT coin_id, price FROM market_ticks")
    assert result.exit_code == 0
    assert "bitcoin" in result.output and "104512.5" in result.output and "1 row" in result.output


def test_query_fails_clearly_without_a_warehouse(tmp_path):
    result = _invoke("query", "--data-dir", str(tmp_path), "SELECT 1")
    assert result.exit_code == 1
    assert "no warehouse at" in result.output


def test_query_fails_clearly_on_bad_sql(tmp_path):
    import duckdb

    duckdb.connect(str(LocalLayout(tmp_path).warehouse)).close()
    result = _invoke("query", "--data-dir", str(tmp_path), "SELEKT 1")
    assert result.exit_code == 1
    assert "query failed" in result.output


def test_up_fails_clearly_without_java(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = _invoke("up", "--source", "replay", "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 1
    assert "Java was not found" in result.output and "openjdk-17" in result.output


@pytest.mark.parametrize(
    ("option", "message"),
    [("--replay-port", "port {} for the replay server is busy"), ("--dashboard-port", "dashboard cannot start on port {}")],
)
def test_up_fails_clearly_on_a_busy_port(tmp_path, option, message):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _invoke("up", "--source", "replay", "--data-dir", str(tmp_path), option, str(port))
    assert result.exit_code == 1
    assert message.format(port) in result.output


@contextmanager
def _held_by_another_process(code: str) -> Iterator[None]:
    """Run ``code`` in a child process that then holds what it took until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code) + '\nprint("held", flush=True)\ntime.sleep(60)\n'],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()


def test_up_fails_clearly_when_another_run_holds_the_data_dir(tmp_path):
    with _held_by_another_process(f"""
        import time
        from pathlib import Path
        from cryptopipe.local import claim_data_dir
        claim_data_dir(Path({str(tmp_path)!r}))
    """):  # fmt: skip
        result = _invoke("up", "--source", "replay", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "another `cryptopipe up` is running" in result.output


def test_up_fails_clearly_when_another_process_holds_the_warehouse(tmp_path):
    with _held_by_another_process(f"""
        import duckdb, time
        con = duckdb.connect({str(LocalLayout(tmp_path).warehouse)!r})
    """):  # fmt: skip
        result = _invoke("up", "--source", "replay", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "locked by another process" in result.output


def test_query_runs_while_the_warehouse_is_between_writes(tmp_path):
    """A reader gets in as soon as the writer's short connection closes."""
    layout = LocalLayout(tmp_path)
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, time
            con = duckdb.connect({str(layout.warehouse)!r})
            con.execute("CREATE TABLE market_ticks AS SELECT 1 AS n")
            print("writing", flush=True)
            time.sleep(1.0)
            con.close()
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert writer.stdout.readline().strip() == "writing"
        result = _invoke("query", "--data-dir", str(tmp_path), "SELECT n FROM market_ticks")
    finally:
        writer.kill()
        writer.wait()
    assert result.exit_code == 0, result.output
    assert "1 row" in result.output
