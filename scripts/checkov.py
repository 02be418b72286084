#!/usr/bin/env python3
"""Scan synthesized CDKTF stacks with checkov, skipping only cdktf/checkov-skips.toml.

    scripts/checkov.py [STACKS_DIR]     default: cdktf.out/stacks (run a synth first)

Each sub-folder of STACKS_DIR is one stack (``dev``, ``prod``, ``bootstrap-dev``, …);
the skips of ``[all]``, of ``[bootstrap]`` for the ``bootstrap-*`` stacks, and of the
stack's own table apply. ``[resources]`` skips one check for one resource only (its
construct id, e.g. ``storage_temp-bucket``): the check still runs on every other
resource, and a failure it excuses is listed with its reason. checkov (pinned) lives in its own venv, ``.venv-checkov``,
made on first use: it pins ``packaging`` apart from the app. Scans with
``--framework terraform_json`` (plain ``terraform`` scans nothing and passes) and
``--skip-download`` (offline), every stack at once. Exits 1 on any failed check, on a
file checkov could not parse, and on a stack where nothing was checked (each of
those a false green otherwise).

checkov 3.3's JSON parser fails on a top-level ``import`` list (Terraform import
blocks, which the bootstrap stack uses to adopt its state bucket) and then reports
nothing; such blocks only say which existing object a resource is, so each stack is
scanned as a copy without them (:data:`UNSCANNABLE_BLOCKS`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path (the tests)
from toolvenv import ensure_tool_venv  # noqa: E402

CHECKOV_VERSION = "3.3.30"
ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-checkov"
SKIPS_FILE = ROOT / "cdktf" / "checkov-skips.toml"


def ensure_checkov() -> Path:
    """The pinned checkov executable, installed into .venv-checkov when missing or another version."""
    return ensure_tool_venv(VENV, "checkov", CHECKOV_VERSION).with_name("checkov")


def skips_for(stack: str, skips_file: Path = SKIPS_FILE) -> dict[str, str]:
    """check id -> reason, for one stack."""
    tables = tomllib.loads(skips_file.read_text())
    kind = tables.get("bootstrap", {}) if stack.startswith("bootstrap-") else {}
    return {**tables.get("all", {}), **kind, **tables.get(stack, {})}


def resource_skips(skips_file: Path = SKIPS_FILE) -> dict[tuple[str, str], str]:
    """(check id, construct id) -> reason: a check excused for one resource only."""
    table = tomllib.loads(skips_file.read_text()).get("resources", {})
    return {(check, construct): reason for check, by_construct in table.items()
            for construct, reason in by_construct.items()}


def _construct(resource: str) -> str:
    """``google_storage_bucket.storage_temp-bucket_5713BEDF`` -> ``storage_temp-bucket``."""
    return resource.rsplit(".", 1)[-1].rsplit("_", 1)[0]


#: Top-level keys of a synthesized stack that checkov cannot parse (see the module docstring).
UNSCANNABLE_BLOCKS = ("import",)


def scannable_copy(stack_dir: Path, destination: Path) -> Path:
    """``stack_dir``'s cdk.tf.json without :data:`UNSCANNABLE_BLOCKS`, in ``destination``."""
    document = json.loads((stack_dir / "cdk.tf.json").read_text())
    for key in UNSCANNABLE_BLOCKS:
        document.pop(key, None)
    destination.mkdir(parents=True, exist_ok=True)
    (destination / "cdk.tf.json").write_text(json.dumps(document))
    return destination


def scan(checkov: Path, stack_dir: Path) -> tuple[dict, dict[str, str]]:
    """checkov's JSON report of one stack, and the skips applied."""
    skips = skips_for(stack_dir.name)
    with tempfile.TemporaryDirectory(prefix=f"checkov-{stack_dir.name}-") as scratch:
        copy = scannable_copy(stack_dir, Path(scratch) / stack_dir.name)
        command = [str(checkov), "--directory", str(copy), "--framework", "terraform_json", "--skip-download",
                   "--output", "json", "--compact"]
        if skips:
            command += ["--skip-check", ",".join(sorted(skips))]
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode not in (0, 1):  # 1 means failed checks; anything else is checkov itself failing
        raise RuntimeError(f"checkov exited {result.returncode} on {stack_dir}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout), skips


def main(argv: list[str]) -> int:
    stacks_dir = Path(argv[0]) if argv else ROOT / "cdktf.out" / "stacks"
    stacks = sorted(p for p in stacks_dir.iterdir() if (p / "cdk.tf.json").is_file()) if stacks_dir.is_dir() else []
    if not stacks:
        print(f"checkov.py: no synthesized stack under {stacks_dir}; run `.venv/bin/python cdktf/main.py` first",
              file=sys.stderr)
        return 1
    checkov = ensure_checkov()
    ok = True
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # each scan is its own process
        reports = list(pool.map(lambda stack_dir: scan(checkov, stack_dir), stacks))
    for stack_dir, (report, skips) in zip(stacks, reports, strict=True):
        summary, excused = report.get("summary", {}), excused_failures(report)
        print(f"{stack_dir.name}: {summary.get('passed', 0)} passed, {summary.get('failed', 0) - len(excused)} failed, "
              f"{len(excused)} excused; not run (cdktf/checkov-skips.toml): {', '.join(sorted(skips)) or 'none'}")
        for line in excused:
            print(f"  excused {line}")
        for problem in problems(report):
            print(f"  {problem}")
            ok = False
    return 0 if ok else 1


def _excuse(check: dict) -> str | None:
    return resource_skips().get((check["check_id"], _construct(check["resource"])))


def excused_failures(report: dict) -> list[str]:
    """Failed checks that ``[resources]`` excuses, with the reason."""
    return [f"{check['check_id']} on {check['resource']}: {_excuse(check)}"
            for check in report.get("results", {}).get("failed_checks", []) if _excuse(check)]


def problems(report: dict) -> list[str]:
    """Why a stack's report is not a pass: failed checks, unparsed files, nothing checked."""
    results = report.get("results", {})
    found = [f"FAILED {check['check_id']} {check['check_name']}: {check['resource']}"
             for check in results.get("failed_checks", []) if not _excuse(check)]
    found += [f"NOT PARSED {path}: checkov checked nothing in it" for path in results.get("parsing_errors", [])]
    if not report.get("summary", {}).get("passed"):
        found.append("NOTHING CHECKED: no check passed, so none ran")
    return found


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
