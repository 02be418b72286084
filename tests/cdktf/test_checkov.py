"""checkov passes on both stacks, with every skip listed, explained and documented."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from ..conftest import script_module

ROOT = Path(__file__).resolve().parents[2]


CHECKOV = script_module("checkov")
SKIPS = tomllib.loads((ROOT / "cdktf" / "checkov-skips.toml").read_text())


def test_checkov_finds_no_failed_check(synth_dir):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "checkov.py"), str(synth_dir / "stacks")],
        capture_output=True, text=True, timeout=540,
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    scanned = {line.split(":")[0]: line for line in result.stdout.splitlines() if " passed, " in line}
    assert set(scanned) == {"dev", "prod", "bootstrap-dev", "bootstrap-prod"}
    for line in scanned.values():
        assert " 0 failed" in line and not line.split(": ", 1)[1].startswith("0 passed"), line


def test_a_report_is_a_pass_only_with_checks_passed_none_failed_and_every_file_parsed():
    """checkov exits 0 on a file it cannot parse, or on nothing to scan: false greens the script refuses."""
    passing = {"summary": {"passed": 40, "failed": 0}, "results": {"failed_checks": [], "parsing_errors": []}}
    assert CHECKOV.problems(passing) == []
    unparsed = {"summary": {"passed": 0, "failed": 0}, "results": {"parsing_errors": ["stacks/x/cdk.tf.json"]}}
    assert [p.split()[0] for p in CHECKOV.problems(unparsed)] == ["NOT", "NOTHING"]
    failed = {"summary": {"passed": 3, "failed": 1}, "results": {"failed_checks": [
        {"check_id": "CKV_GCP_1", "check_name": "a check", "resource": "google_x.y"}]}}
    assert CHECKOV.problems(failed) == ["FAILED CKV_GCP_1 a check: google_x.y"]
    # a [resources] skip excuses its check on that resource only
    (check_id, construct), _ = next(iter(CHECKOV.resource_skips().items()))
    excused = {"check_id": check_id, "check_name": "a check", "resource": f"google_x.{construct}_0A1B2C3D"}
    elsewhere = {**excused, "resource": "google_x.other-thing_0A1B2C3D"}
    report = {"summary": {"passed": 3, "failed": 2}, "results": {"failed_checks": [excused, elsewhere]}}
    assert CHECKOV.problems(report) == [f"FAILED {check_id} a check: google_x.other-thing_0A1B2C3D"]
    assert len(CHECKOV.excused_failures(report)) == 1
    # the bootstrap stack's import block is what checkov 3.3 cannot parse: it is scanned without it
    assert CHECKOV.UNSCANNABLE_BLOCKS == ("import",)


def test_every_skip_has_a_reason_and_is_documented():
    deploy_doc = (ROOT / "docs" / "DEPLOY.md").read_text()
    assert set(SKIPS) <= {"all", "bootstrap", "dev", "prod", "bootstrap-dev", "bootstrap-prod", "resources"}
    by_resource = {check_id: " ".join(constructs.values()) for check_id, constructs in SKIPS.get("resources", {}).items()}
    for table in [*(t for name, t in SKIPS.items() if name != "resources"), by_resource]:
        for check_id, reason in table.items():
            assert check_id.startswith(("CKV_GCP_", "CKV2_GCP_")), check_id
            assert len(reason) > 20, check_id
            assert check_id in deploy_doc, f"{check_id} is skipped but docs/DEPLOY.md does not explain it"


def test_one_scan_of_every_stack_is_split_into_each_stacks_report_without_its_skips():
    skipped = next(iter(CHECKOV.skips_for("dev")))  # a check dev skips ([all] or its own table)
    assert skipped in CHECKOV.skips_for("bootstrap-dev")  # ... and so does bootstrap-dev ([all])
    dev_only = next(iter(SKIPS["dev"]))  # skipped in dev alone

    def check(check_id, stack):
        return {"check_id": check_id, "check_name": "a check", "resource": "google_x.y_0A1B2C3D",
                "file_path": f"/{stack}/cdk.tf.json"}

    report = {"results": {
        "passed_checks": [check("CKV_GCP_1", "dev"), check(skipped, "dev"), check("CKV_GCP_1", "prod")],
        "failed_checks": [check(dev_only, "dev"), check(dev_only, "prod"), check(skipped, "bootstrap-dev")],
        "parsing_errors": ["/bootstrap-dev/cdk.tf.json"],
    }}
    split = CHECKOV.split_report(report, ["dev", "prod", "bootstrap-dev"])
    assert {stack: part["summary"] for stack, part in split.items()} == {
        "dev": {"passed": 1, "failed": 0}, "prod": {"passed": 1, "failed": 1}, "bootstrap-dev": {"passed": 0, "failed": 0}}
    assert split["prod"]["results"]["failed_checks"] == [check(dev_only, "prod")]
    assert split["bootstrap-dev"]["results"]["parsing_errors"] == ["/bootstrap-dev/cdk.tf.json"]
    assert CHECKOV.problems(split["dev"]) == []
    # checkov reports an empty list when it found nothing to scan: every stack then checked nothing
    assert all(CHECKOV.problems(part) for part in CHECKOV.split_report([], ["dev", "prod"]).values())
