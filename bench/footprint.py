"""Footprint: peak memory (from the catch-up and freshness runs), ``cdktf synth`` time,
test-suite time.

- Memory: VmHWM of the JVM and of the Python processes, sampled from
  ``/proc/<pid>/status`` during ``bench catchup`` (each configuration's own process)
  and ``bench freshness`` (``cryptopipe up``); run those first.
- Synth: wall time of ``.venv/bin/python cdktf/main.py`` (both environments' stacks),
  into a temporary ``CDKTF_OUTDIR`` so the repository's ``cdktf.out`` is not touched,
  once per CDK family (``CRYPTOPIPE__DEPLOY__CDK_FAMILY``: cdktf, cdktn; cdktf/infra/cdk.py).
- Tests: wall time of ``.venv/bin/python -m pytest -q -p no:cacheprovider`` (pytest
  directly: ``scripts/test`` adds the bootstrap's install steps).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS, LoadSampler, write_result


def _timed(command: list[str], env: dict[str, str] | None = None, timeout: float = 3600) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    return time.monotonic() - started, proc


#: The CDK families the app synthesizes with (cdktf/infra/cdk.py), the default first.
FAMILIES = ("cdktf", "cdktn")


def synth(family: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as outdir:
        env = {**os.environ, "CDKTF_OUTDIR": outdir, "CRYPTOPIPE__DEPLOY__CDK_FAMILY": family}
        seconds, proc = _timed([sys.executable, "cdktf/main.py"], env=env)
        manifest = Path(outdir) / "manifest.json"
        stacks = sorted(json.loads(manifest.read_text())["stacks"]) if manifest.exists() else []
    return {
        "command": f"CRYPTOPIPE__DEPLOY__CDK_FAMILY={family} .venv/bin/python cdktf/main.py",
        "seconds": round(seconds, 1),
        "exit_code": proc.returncode,
        "stacks": stacks,
        "stderr_tail": proc.stderr[-500:] if proc.returncode else "",
    }


def tests() -> dict[str, Any]:
    seconds, proc = _timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
    summary = (proc.stdout.strip().splitlines() or [""])[-1]
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", summary)}
    return {
        "command": ".venv/bin/python -m pytest -q -p no:cacheprovider",
        "seconds": round(seconds, 1),
        "exit_code": proc.returncode,
        "summary": summary,
        "counts": counts,
    }


def main(run_tests: bool = True) -> dict[str, Any]:
    started = time.monotonic()
    memory = {}
    for name in ("catchup", "freshness"):
        path = RESULTS / f"{name}.json"
        if path.exists():
            doc = json.loads(path.read_text())
            if name == "catchup":
                for run in doc["runs"]:
                    label = f"catch-up, {run['kind']}" + ("" if run["dedup"] else " without de-duplication")
                    memory[label] = run["memory_mib"]
            else:
                memory["cryptopipe up (freshness run)"] = doc["memory_mib"]
    with LoadSampler() as load:
        result = {"memory_mib": memory, "synth": {family: synth(family) for family in FAMILIES}}
        result["tests"] = tests() if run_tests else None
    return write_result("footprint", result, load, started)
