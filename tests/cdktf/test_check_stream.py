"""scripts/check-stream.sh, the deploy workflow's last step, against stand-ins for terraform, gcloud and bq.

The stand-ins are executables on PATH that record their arguments and answer as the
real CLIs do for these calls (``terraform output -raw NAME`` prints the value;
``gcloud dataproc jobs describe --format 'value(a,b)'`` prints the values
tab-separated; ``bq query --format=json`` prints the result rows as a JSON array of
objects whose INT64 values are strings and NULLs null, and on an error exits 1 with
BigQuery's message), with job states and query answers scripted per test.

Not faithful: the stand-in ``bq`` does not run the SQL it receives; it answers as the
test scripts it. What the query selects (the partition filter, live rows only, the
table) is asserted on the exact query text the script sent, and its column names
against the one schema.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.schema import market_tick
from core.tables import TICK_FIELDS, TICKS_TABLE
from jobs.dedup import BACKFILL

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = {"processing_mode": "stream", "job_id": "stream-4f1c", "project": "my-cryptopipe-dev", "region": "us-central1",
           "table_id": "my-cryptopipe-dev.cryptopipe_dev.market_ticks", "freshness_threshold_seconds": "420"}
STAND_IN = """#!{python}
import json, sys, time
from pathlib import Path
here = Path(__file__).parent
with open(here / "calls.jsonl", "a") as log:
    log.write(json.dumps(sys.argv) + "\\n")
if Path(sys.argv[0]).name == "terraform":
    print(json.loads((here / "outputs.json").read_text())[sys.argv[-1]], end="")
elif Path(sys.argv[0]).name == "bq":
    answers = json.loads((here / "answers.json").read_text())
    answer = answers.pop(0) if len(answers) > 1 else answers[0]
    (here / "answers.json").write_text(json.dumps(answers))
    if "error" in answer:
        print(f"BigQuery error in query operation: {{answer['error']}}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(answer["rows"]) if "rows" in answer else answer["text"])
elif sys.argv[1] == "workflows":
    print((here / "executions.txt").read_text(), end="")
else:
    states = json.loads((here / "states.json").read_text())
    fmt = sys.argv[sys.argv.index("--format") + 1]
    if fmt == "value(status.details)":
        print("Driver exited with code 1")
        sys.exit(0)
    state, started = states.pop(0) if len(states) > 1 else states[0]
    (here / "states.json").write_text(json.dumps(states))
    print(f"{{state}}\\t{{started}}")
"""


#: The one query the check may send: the newest live row's age, two day partitions of one table.
NEWEST_LIVE_QUERY = """SELECT TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), MAX(last_updated), SECOND) AS age_seconds
FROM `my-cryptopipe-dev.cryptopipe_dev.market_ticks`
WHERE last_updated >= TIMESTAMP(DATE_SUB(CURRENT_DATE(), INTERVAL 1 DAY))
  AND (origin IS NULL OR origin = 'poll')"""
BQ_QUERY = ["--quiet", "--project_id=my-cryptopipe-dev", "query", "--nouse_legacy_sql", "--format=json",
            "--maximum_bytes_billed=1000000000", NEWEST_LIVE_QUERY]
#: What BigQuery answers when the caller lacks bigquery.jobs.create, or may not read the table.
NO_JOBS = ("Access Denied: Project my-cryptopipe-dev: User does not have bigquery.jobs.create permission "
           "in project my-cryptopipe-dev.")
NO_TABLE_DATA = ("Access Denied: Table my-cryptopipe-dev:cryptopipe_dev.market_ticks: User does not have "
                 "permission to query table my-cryptopipe-dev:cryptopipe_dev.market_ticks, or perhaps it does "
                 "not exist.")


def _age(seconds: int | None) -> dict:
    """bq's answer to the query: one row, the age as a string (INT64), or null without a live row."""
    return {"rows": [{"age_seconds": None if seconds is None else str(seconds)}]}


@pytest.fixture
def run_check(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("terraform", "gcloud", "bq"):
        path = bin_dir / name
        path.write_text(STAND_IN.format(python=sys.executable))
        path.chmod(0o755)
    (bin_dir / "outputs.json").write_text(json.dumps(OUTPUTS))

    def run(states: list[tuple[str, str]], answers: tuple[dict, ...] = (_age(60),), freshness: str = "420",
            outputs: dict | None = None, executions: str = "",
            ) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
        (bin_dir / "outputs.json").write_text(json.dumps(outputs or OUTPUTS))
        (bin_dir / "executions.txt").write_text(executions)
        (bin_dir / "states.json").write_text(json.dumps(states))
        (bin_dir / "answers.json").write_text(json.dumps(list(answers)))
        (bin_dir / "calls.jsonl").unlink(missing_ok=True)
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "POLL_SECONDS": "0", "SETTLE_SECONDS": "0",
               "TIMEOUT_SECONDS": "5", "FRESHNESS_SECONDS": freshness}
        result = subprocess.run([str(ROOT / "scripts" / "check-stream.sh"), "cdktf.out/stacks/dev"], env=env,
                                capture_output=True, text=True, timeout=60)
        calls = [json.loads(line)[1:] for line in (bin_dir / "calls.jsonl").read_text().splitlines()]
        return result, calls

    return run


def test_a_job_that_reaches_running_and_stays_passes(run_check):
    result, calls = run_check([("PENDING", "t0"), ("SETUP_DONE", "t1"), ("RUNNING", "t2")])
    assert result.returncode == 0, result.stderr
    assert "RUNNING since t2" in result.stdout
    outputs = ["processing_mode", "job_id", "project", "region", "table_id"]
    assert calls[:5] == [["-chdir=cdktf.out/stacks/dev", "output", "-raw", name] for name in outputs]
    describe = ["dataproc", "jobs", "describe", "stream-4f1c", "--project", "my-cryptopipe-dev",
                "--region", "us-central1", "--format", "value(status.state,status.stateStartTime)"]
    assert calls[5:9] == [describe] * 4  # three polls, then the check after settling
    assert calls[9:] == [BQ_QUERY]  # then the newest live row, once
    assert "the newest live row of my-cryptopipe-dev.cryptopipe_dev.market_ticks is 60 s old" in result.stdout


@pytest.mark.parametrize("state", ["ERROR", "DONE", "CANCELLED", "ATTEMPT_FAILURE"])
def test_a_job_that_ended_fails_the_deploy_with_its_details(run_check, state):
    result, _ = run_check([("PENDING", "t0"), (state, "t1")])
    assert result.returncode == 1
    assert f"is {state}, not RUNNING" in result.stderr
    assert "Driver exited with code 1" in result.stderr


def test_a_driver_that_restarts_after_running_fails_the_deploy(run_check):
    result, _ = run_check([("RUNNING", "t1"), ("RUNNING", "t2")])
    assert result.returncode == 1
    assert "the driver restarted or ended" in result.stderr


def test_a_job_that_never_runs_fails_after_the_timeout(run_check):
    result, _ = run_check([("PENDING", "t0")])
    assert result.returncode == 1
    assert "still PENDING" in result.stderr


def test_the_freshness_threshold_comes_from_the_stack(run_check, monkeypatch):
    monkeypatch.delenv("FRESHNESS_SECONDS", raising=False)
    result, calls = run_check([("RUNNING", "t1")], freshness="")
    assert result.returncode == 0, result.stderr
    assert ["-chdir=cdktf.out/stacks/dev", "output", "-raw", "freshness_threshold_seconds"] in calls


def test_a_row_that_becomes_fresh_passes_after_waiting_for_it(run_check):
    result, calls = run_check([("RUNNING", "t1")], answers=(_age(None), _age(3600), _age(30)))
    assert result.returncode == 0, result.stderr
    assert [call for call in calls if "query" in call] == [BQ_QUERY] * 3
    assert "is 30 s old (threshold 420 s)" in result.stdout


def test_a_table_without_a_live_row_fails_within_the_freshness_threshold(run_check):
    result, _ = run_check([("RUNNING", "t1")], answers=(_age(None),), freshness="1")
    assert result.returncode == 1
    assert "no live row in my-cryptopipe-dev.cryptopipe_dev.market_ticks since yesterday (UTC)" in result.stderr
    assert "docs/OPERATIONS.md" in result.stderr


def test_a_stream_that_loads_nothing_fails_with_the_rows_age_and_the_threshold(run_check):
    result, _ = run_check([("RUNNING", "t1")], answers=(_age(3600),), freshness="1")
    assert result.returncode == 1
    assert ("the newest live row of my-cryptopipe-dev.cryptopipe_dev.market_ticks is 3600 s old, older than "
            "the threshold of 1 s") in result.stderr
    assert "docs/OPERATIONS.md" in result.stderr


@pytest.mark.parametrize(("error", "missing"), [
    (NO_JOBS, "lacks bigquery.jobs.create on project my-cryptopipe-dev"),
    (NO_TABLE_DATA, "lacks bigquery.tables.getData on my-cryptopipe-dev.cryptopipe_dev.market_ticks"),
])
def test_a_refused_query_fails_naming_the_missing_permission(run_check, error, missing):
    result, calls = run_check([("RUNNING", "t1")], answers=({"error": error},))
    assert result.returncode == 1
    assert "the query of my-cryptopipe-dev.cryptopipe_dev.market_ticks was refused: the planner " + missing \
        in result.stderr
    assert error in result.stderr  # and BigQuery's own words
    assert [call for call in calls if "query" in call] == [BQ_QUERY]  # no retry of a refusal


def test_any_other_bq_error_fails_with_its_message(run_check):
    error = "Not found: Table my-cryptopipe-dev:cryptopipe_dev.market_ticks was not found in location us-central1"
    result, _ = run_check([("RUNNING", "t1")], answers=({"error": error},))
    assert result.returncode == 1
    assert f"bq query of my-cryptopipe-dev.cryptopipe_dev.market_ticks failed: BigQuery error in query " \
           f"operation: {error}" in result.stderr


def test_an_answer_that_is_not_an_age_fails_clearly(run_check):
    result, _ = run_check([("RUNNING", "t1")], answers=({"text": "Waiting on bqjob_r1 ... DONE"},))
    assert result.returncode == 1
    assert "bq query answered what is not one row of age_seconds: Waiting on bqjob_r1 ... DONE" in result.stderr


#: A scheduled stack's outputs (infra/stacks/pipeline.py): a workflow, no job; its own freshness threshold.
SCHEDULED = {**{k: v for k, v in OUTPUTS.items() if k != "job_id"}, "processing_mode": "scheduled",
             "workflow": "projects/my-cryptopipe-dev/locations/us-central1/workflows/cryptopipe-dev-processing-run",
             "freshness_threshold_seconds": "4680"}
EXECUTION = "projects/100000000001/locations/us-central1/workflows/cryptopipe-dev-processing-run/executions/e1"
LIST_EXECUTIONS = ["workflows", "executions", "list", SCHEDULED["workflow"], "--project", "my-cryptopipe-dev",
                   "--location", "us-central1", "--limit", "1", "--format", "value(state,name)"]


def test_scheduled_mode_reads_the_newest_run_and_the_rows_once_and_never_the_job(run_check, monkeypatch):
    monkeypatch.delenv("FRESHNESS_SECONDS", raising=False)
    result, calls = run_check([], answers=(_age(3000),), freshness="", outputs=SCHEDULED,
                              executions=f"SUCCEEDED\t{EXECUTION}\n")
    assert result.returncode == 0, result.stderr
    assert f"the newest scheduled run, {EXECUTION}, is SUCCEEDED" in result.stdout
    assert "is 3000 s old (threshold 4680 s)" in result.stdout  # within the interval plus a run's time
    assert [call for call in calls if call[0] != "-chdir=cdktf.out/stacks/dev"] == [LIST_EXECUTIONS, BQ_QUERY]
    assert ["-chdir=cdktf.out/stacks/dev", "output", "-raw", "job_id"] not in calls


@pytest.mark.parametrize("state", ["FAILED", "CANCELLED"])
def test_scheduled_mode_fails_on_a_failed_run(run_check, state):
    result, calls = run_check([], outputs=SCHEDULED, executions=f"{state}\t{EXECUTION}\n")
    assert result.returncode == 1
    assert f"the newest scheduled run, {EXECUTION}, is {state}" in result.stderr
    assert BQ_QUERY not in calls


def test_scheduled_mode_fails_on_rows_older_than_its_threshold_after_a_run(run_check):
    result, calls = run_check([], answers=(_age(9000),), freshness="4680", outputs=SCHEDULED,
                              executions=f"SUCCEEDED\t{EXECUTION}\n")
    assert result.returncode == 1
    assert "is 9000 s old, older than the threshold of 4680 s" in result.stderr
    assert [call for call in calls if "query" in call] == [BQ_QUERY]  # one look: no waiting an interval


def test_scheduled_mode_before_its_first_run_says_so_and_passes(run_check):
    result, _ = run_check([], answers=(_age(None),), freshness="4680", outputs=SCHEDULED, executions="")
    assert result.returncode == 0, result.stderr
    assert "no scheduled run yet" in result.stdout and "no run has ended yet" in result.stdout


def _script_variable(name: str) -> str:
    """The value the script assigns to ``name`` (``name=value``, a comment may follow)."""
    text = (ROOT / "scripts" / "check-stream.sh").read_text()
    (value,) = re.findall(rf"^{name}=(\S+)", text, re.M)
    return value


def test_the_columns_the_query_names_are_the_schemas():
    columns = {spec.name: spec for spec in TICK_FIELDS}
    time_column, origin_column = _script_variable("time_column"), _script_variable("origin_column")
    # the partitioning column (the filter prunes partitions), a timestamp
    assert time_column == market_tick().partition_field
    assert columns[time_column].type == "timestamp"
    # the origin: nullable (NULL in rows from before it existed: polls), and 'poll' is the one live value
    assert columns[origin_column].nullable
    assert set(columns[origin_column].values) == {_script_variable("live_origin"), BACKFILL}
    assert TICKS_TABLE in NEWEST_LIVE_QUERY
