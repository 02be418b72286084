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
``--skip-download`` (offline), every stack in one run (a checkov process spends two
seconds importing itself, a stack a fraction of one), so the skips are applied to each
stack's part of the report rather than by ``--skip-check``: a skipped check's results are
dropped, which is what not running it would give. Exits 1 on any failed check, on a
file checkov could not parse, and on a stack where nothing was checked (each of
those a false green otherwise).

checkov 3.3's JSON parser fails on a top-level ``import`` list (Terraform import
blocks, which the bootstrap stack uses to adopt its state bucket) and then reports
nothing; such blocks only say which existing object a resource is, so each stack is
scanned as a copy without them (:data:`UNSCANNABLE_BLOCKS`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
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


def scan(checkov: Path, stacks: list[Path]) -> dict[str, dict]:
    """checkov's JSON report of each stack (by folder name), its skips applied."""
    with tempfile.TemporaryDirectory(prefix="checkov-") as scratch:
        for stack_dir in stacks:
            scannable_copy(stack_dir, Path(scratch) / stack_dir.name)
        command = [str(checkov), "--directory", scratch, "--framework", "terraform_json", "--skip-download",
                   "--output", "json", "--compact"]
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode not in (0, 1):  # 1 means failed checks; anything else is checkov itself failing
        raise RuntimeError(f"checkov exited {result.returncode} on {[s.name for s in stacks]}:\n{result.stderr[-3000:]}")
    return split_report(json.loads(result.stdout), [stack_dir.name for stack_dir in stacks])


def split_report(report: dict, stacks: list[str]) -> dict[str, dict]:
    """One report of a scan over every stack's folder, as each stack's own report without its skips.

    checkov names each file by its path under the scanned folder (``/dev/cdk.tf.json``), and
    with nothing to scan it reports an empty list rather than an object."""
    results = report.get("results", {}) if isinstance(report, dict) else {}

    def stack_of(path: str) -> str:  # "/dev/cdk.tf.json" -> "dev" (a path it names otherwise matches no stack,
        return path.split("/")[1]      # and every stack then fails as one where nothing was checked)

    split = {}
    for stack in stacks:
        skips = skips_for(stack)
        kept = {kind: [check for check in results.get(kind, [])
                       if stack_of(check["file_path"]) == stack and check["check_id"] not in skips]
                for kind in ("passed_checks", "failed_checks")}
        unparsed = [path for path in results.get("parsing_errors", []) if stack_of(path) == stack]
        split[stack] = {"summary": {"passed": len(kept["passed_checks"]), "failed": len(kept["failed_checks"])},
                        "results": {**kept, "parsing_errors": unparsed}}
    return split


def main(argv: list[str]) -> int:
    stacks_dir = Path(argv[0]) if argv else ROOT / "cdktf.out" / "stacks"
    stacks = sorted(p for p in stacks_dir.iterdir() if (p / "cdk.tf.json").is_file()) if stacks_dir.is_dir() else []
    if not stacks:
        print(f"checkov.py: no synthesized stack under {stacks_dir}; run `.venv/bin/python cdktf/main.py` first",
              file=sys.stderr)
        return 1
    ok = True
    for stack, report in scan(ensure_checkov(), stacks).items():
        summary, excused = report["summary"], excused_failures(report)
        print(f"{stack}: {summary['passed']} passed, {summary['failed'] - len(excused)} failed, "
              f"{len(excused)} excused; not run (cdktf/checkov-skips.toml): {', '.join(sorted(skips_for(stack))) or 'none'}")
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
