"""scripts/check-stream.sh, the deploy workflow's last step, against stand-ins for terraform, gcloud and bq.

The stand-ins are executables on PATH that record their arguments and answer as the
real CLIs do for these calls (``terraform output -raw NAME`` prints the value;
``gcloud dataproc jobs describe --format 'value(a,b)'`` prints the values
tab-separated; ``bq show --format=json TABLE`` prints the table resource, whose
``lastModifiedTime`` is milliseconds since the epoch as a string), with job states and
the table's last change (seconds relative to the call) scripted per test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = {"job_id": "stream-4f1c", "project": "my-cryptopipe-dev", "region": "us-central1",
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
    loads = json.loads((here / "loads.json").read_text())
    offset = loads.pop(0) if len(loads) > 1 else loads[0]
    (here / "loads.json").write_text(json.dumps(loads))
    if offset is None:
        print("BigQuery error in show operation: Access Denied: Table my-cryptopipe-dev:cryptopipe_dev.market_ticks: "
              "Permission bigquery.tables.get denied", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({{"id": sys.argv[-1], "lastModifiedTime": str(int((time.time() + offset) * 1000))}}))
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


@pytest.fixture
def run_check(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("terraform", "gcloud", "bq"):
        path = bin_dir / name
        path.write_text(STAND_IN.format(python=sys.executable))
        path.chmod(0o755)
    (bin_dir / "outputs.json").write_text(json.dumps(OUTPUTS))

    def run(states: list[tuple[str, str]], loads: tuple[float | None, ...] = (60,), freshness: str = "420",
            ) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
        (bin_dir / "states.json").write_text(json.dumps(states))
        (bin_dir / "loads.json").write_text(json.dumps(list(loads)))
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
    outputs = ["job_id", "project", "region", "table_id"]
    assert calls[:4] == [["-chdir=cdktf.out/stacks/dev", "output", "-raw", name] for name in outputs]
    describe = ["dataproc", "jobs", "describe", "stream-4f1c", "--project", "my-cryptopipe-dev",
                "--region", "us-central1", "--format", "value(status.state,status.stateStartTime)"]
    assert calls[4:8] == [describe] * 4  # three polls, then the check after settling
    # then the table's metadata, as bq names a table
    assert calls[8:] == [["--project_id=my-cryptopipe-dev", "show", "--format=json",
                          "my-cryptopipe-dev:cryptopipe_dev.market_ticks"]]
    assert "market_ticks loaded" in result.stdout


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


def test_a_load_after_the_check_began_passes_after_waiting_for_it(run_check):
    result, calls = run_check([("RUNNING", "t1")], loads=(-3600, -3600, 5))
    assert result.returncode == 0, result.stderr
    assert sum(call[1:2] == ["show"] for call in calls) == 3


def test_a_stream_that_loads_nothing_fails_within_the_freshness_threshold(run_check):
    result, _ = run_check([("RUNNING", "t1")], loads=(-3600,), freshness="1")
    assert result.returncode == 1
    assert "no load into my-cryptopipe-dev.cryptopipe_dev.market_ticks since the check began" in result.stderr
    assert "threshold 1 s" in result.stderr and "docs/OPERATIONS.md" in result.stderr


def test_a_table_it_cannot_read_fails_with_the_permission_to_check(run_check):
    result, _ = run_check([("RUNNING", "t1")], loads=(None,))
    assert result.returncode == 1
    assert "cannot read the metadata of my-cryptopipe-dev.cryptopipe_dev.market_ticks" in result.stderr
    assert "bigquery.tables.get" in result.stderr
