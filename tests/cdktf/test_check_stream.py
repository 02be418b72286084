"""scripts/check-stream.sh, the deploy workflow's last step, against stand-ins for terraform and gcloud.

The stand-ins are executables on PATH that record their arguments and answer as the
real CLIs do for these calls (``terraform output -raw NAME`` prints the value;
``gcloud dataproc jobs describe --format 'value(a,b)'`` prints the values
tab-separated), with job states scripted per test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = {"job_id": "stream-4f1c", "project": "my-cryptopipe-dev", "region": "us-central1"}
STAND_IN = """#!{python}
import json, sys
from pathlib import Path
here = Path(__file__).parent
with open(here / "calls.jsonl", "a") as log:
    log.write(json.dumps(sys.argv) + "\\n")
if Path(sys.argv[0]).name == "terraform":
    print(json.loads((here / "outputs.json").read_text())[sys.argv[-1]], end="")
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
    for name in ("terraform", "gcloud"):
        path = bin_dir / name
        path.write_text(STAND_IN.format(python=sys.executable))
        path.chmod(0o755)
    (bin_dir / "outputs.json").write_text(json.dumps(OUTPUTS))

    def run(states: list[tuple[str, str]]) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
        (bin_dir / "states.json").write_text(json.dumps(states))
        (bin_dir / "calls.jsonl").unlink(missing_ok=True)
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "POLL_SECONDS": "0", "SETTLE_SECONDS": "0",
               "TIMEOUT_SECONDS": "5"}
        result = subprocess.run([str(ROOT / "scripts" / "check-stream.sh"), "cdktf.out/stacks/dev"], env=env,
                                capture_output=True, text=True, timeout=60)
        calls = [json.loads(line)[1:] for line in (bin_dir / "calls.jsonl").read_text().splitlines()]
        return result, calls

    return run


def test_a_job_that_reaches_running_and_stays_passes(run_check):
    result, calls = run_check([("PENDING", "t0"), ("SETUP_DONE", "t1"), ("RUNNING", "t2")])
    assert result.returncode == 0, result.stderr
    assert "RUNNING since t2" in result.stdout
    assert calls[:3] == [["-chdir=cdktf.out/stacks/dev", "output", "-raw", name] for name in OUTPUTS]
    describe = ["dataproc", "jobs", "describe", "stream-4f1c", "--project", "my-cryptopipe-dev",
                "--region", "us-central1", "--format", "value(status.state,status.stateStartTime)"]
    assert calls[3:] == [describe] * 4  # three polls, then the check after settling


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
