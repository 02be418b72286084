"""The ``cryptopipe`` command: `up` on the bundled replay, `query`, and its clear errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from core.layout import LocalLayout
from cryptopipe.cli import cli
from producer.config import ENV_PREFIX as PRODUCER_ENV_PREFIX

from ..conftest import isolated_environ, wait_until
from ..signals import other_threads, signal_thread, started_ignoring_ctrl_c


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


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--vs-currencies", "usd,EUR"],
         "Invalid value for '--vs-currencies': 'usd,EUR': expected comma-separated lower-case CoinGecko currency "
         "codes such as usd,eur,btc"),
        (["--vs-currencies", "usd,eur,usd"],
         "Invalid value for '--vs-currencies': 'usd,eur,usd': expected each currency once, got usd more than once"),
        (["--coin-ids", "bitcoin,Ethereum!"],
         "Invalid value for '--coin-ids': 'bitcoin,Ethereum!': expected comma-separated CoinGecko ids"),
        # 10 requests a minute (the live default) cannot poll every 5 s
        (["--source", "live", "--interval", "5"],
         "Invalid value for '--interval': 5.0: one poll needs 1 request but 10 a minute allow only 0.833333 per 5 s: "
         "expected at least 6 s"),
        (["--top-n", "0"], "Invalid value for '--top-n': '0': expected greater than or equal to 1"),
        (["--top-n", "many"], "Invalid value for '--top-n': 'many': expected a number of coins from 1, or 'all'"),
        (["--trigger-seconds", "soon"], "Invalid value for '--trigger-seconds': 'soon' is not a valid float range."),
    ],
)
def test_up_refuses_a_bad_option_value_in_one_line_naming_it_before_starting_anything(tmp_path, args, error):
    result = CliRunner().invoke(cli, ["up", "--source", "replay", "--data-dir", str(tmp_path / "data"), *args])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {error}"), result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "data").exists()


def test_up_refuses_a_bad_producer_variable_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYPTOPIPE__PRODUCER__READ_TIMEOUT_SECONDS", "slow")
    result = CliRunner().invoke(cli, ["up", "--source", "replay", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "Error: CRYPTOPIPE__PRODUCER__READ_TIMEOUT_SECONDS='slow' is invalid: expected a valid number" in result.output


def _up_argv(data: Path, *extra: str) -> list[str]:
    """`cryptopipe up` on the replay, as a user runs it (the console script, a new process)."""
    return [str(Path(sys.executable).with_name("cryptopipe")), "up", "--source", "replay", "--data-dir", str(data),
            "--interval", "2", "--top-n", "20", "--no-dashboard", *extra]


def _up_in_a_new_process(data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """A short `cryptopipe up` on the replay in its own process: Spark's JVM starts anew, as for a user."""
    return subprocess.run(_up_argv(data, "--max-polls", "1", *extra), capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.mark.spark
def test_up_shows_cryptopipes_lines_only_sparks_with_verbose_and_stops_on_ctrl_c(tmp_path):
    """The verbose run is also the one stopped with Ctrl-C (each run is a JVM start): started with
    SIGINT ignored, as a script's background job is, and the signal sent to one of its other
    threads, where the kernel may hand a terminal's SIGINT, `up` still stops, its stream's batch
    and its producer's poll finished, and says what it loaded."""
    quiet = _up_in_a_new_process(tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr
    output = quiet.stdout + quiet.stderr
    assert re.search(r"^done: 20 rows loaded into ", output, re.MULTILINE), output
    noise = [line for line in output.splitlines()
             if re.search(r"WARN|NativeCodeLoader|spark\.local\.dir|log level", line)]  # fmt: skip
    assert noise == [], output

    log = tmp_path / "verbose.log"
    with log.open("w") as written:
        verbose = subprocess.Popen(_up_argv(tmp_path / "verbose", "--verbose"), stdout=written,
                                   stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"},
                                   preexec_fn=started_ignoring_ctrl_c)
    try:
        wait_until(lambda: re.search(r"INFO jobs\.stream: batch \d+: ", log.read_text(errors="replace"))
                   or verbose.poll() is not None, "the first batch loaded", 120)
        assert verbose.poll() is None, log.read_text()[-3000:]
        signal_thread(verbose.pid, other_threads(verbose.pid)[-1], signal.SIGINT)
        assert verbose.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if verbose.poll() is None:
            verbose.kill()
            verbose.wait()
    shown = log.read_text()
    assert "WARN NativeCodeLoader" in shown and "INFO producer.poller" in shown
    assert "stopping: the producer finishes its poll, the stream its batch" in shown
    assert re.search(r"^done: [1-9][0-9]* rows loaded into ", shown, re.MULTILINE), shown[-3000:]


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
        from core.layout import LocalLayout
        from cryptopipe.checks import claim_data_dir
        claim_data_dir(LocalLayout(Path({str(tmp_path)!r})))
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


@pytest.mark.parametrize(
    ("variable", "option", "shown"),
    [
        (None, None, ("usd",)),  # the producer's default
        ("eur,btc", None, ("eur", "btc")),  # what the producer started here lands
        ("eur,btc", "usd", ("usd",)),  # the option over the variable
    ],
)
def test_dashboard_shows_the_currencies_the_producer_lands(tmp_path, monkeypatch, variable, option, shown):
    set_variables = isolated_environ(monkeypatch, PRODUCER_ENV_PREFIX)
    if variable is not None:
        set_variables({f"{PRODUCER_ENV_PREFIX}VS_CURRENCIES": variable})
    served, currencies = _serve_dashboard_once(monkeypatch, tmp_path, *(["--vs-currencies", option] if option else []))
    assert served.exit_code == 0, served.output
    assert currencies == shown


def test_dashboard_names_a_bad_currency_variable(tmp_path, monkeypatch):
    isolated_environ(monkeypatch, PRODUCER_ENV_PREFIX)({f"{PRODUCER_ENV_PREFIX}VS_CURRENCIES": "usd,EUR"})
    served, _ = _serve_dashboard_once(monkeypatch, tmp_path)
    assert served.exit_code == 2
    assert f"{PRODUCER_ENV_PREFIX}VS_CURRENCIES" in served.output and "'usd,EUR'" in served.output


def _serve_dashboard_once(monkeypatch, tmp_path: Path, *args: str):
    """`cryptopipe dashboard` up to its first wait, then Ctrl-C: its result, and the currencies it served
    (None if no server started)."""
    import cryptopipe.cli as cli_module

    started: list = []

    class Recorded(cli_module.DashboardServer):
        def start(self):
            started.append(self)
            return super().start()

    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "DashboardServer", Recorded)
    monkeypatch.setattr(cli_module, "time", SimpleNamespace(sleep=interrupt))  # the command's own waits only
    result = CliRunner().invoke(cli, ["dashboard", "--data-dir", str(tmp_path), "--port", "0", *args])
    return result, started[0].service.vs_currencies if started else None


def test_dashboard_started_with_ctrl_c_ignored_still_stops_on_it(tmp_path):
    """A script's background job starts with SIGINT ignored; `cryptopipe` asks for Ctrl-C all the same."""
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("cryptopipe")), "dashboard", "--data-dir", str(tmp_path), "--port", "0"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"}, preexec_fn=started_ignoring_ctrl_c,
    )
    try:
        assert "dashboard: http://127.0.0.1:" in process.stderr.readline()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
