#!/usr/bin/env python3
"""Re-run the hand-made mutations that once survived the suite: each must now fail a test.

    .venv/bin/python scripts/mutations.py            # all, about two minutes (Spark, bqemulator)
    .venv/bin/python scripts/mutations.py dedup      # the ones whose name contains "dedup"

Each mutation is a bug a developer could plausibly write in an exactly-once, validation
or budget path. The script applies it to a copy of the repository, runs the tests
named beside it there, and reports whether they caught it; the working tree is never
touched. docs/TESTING.md says why these and how the suite's strength is checked.

The Storage Write tests run on bqemulator from its own venv, which
scripts/bigquery_emulator.py makes on first use under the tree it sits in. The copies
share this tree's: it is made here first if missing, and each copy links to it.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_SCRIPT = "scripts/bigquery_emulator.py"
COPIED = ("core", "jobs", "producer", "cryptopipe", "tests", "pyproject.toml", EMULATOR_SCRIPT, "scripts/toolvenv.py",
          "scripts/spark_classes.py")  # tests/conftest.py reads the test JVMs' options from it


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    original: str
    mutant: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation("dedup key without the quote currency", "jobs/dedup.py",
             "dropDuplicatesWithinWatermark([*schema.key, QUARANTINE_ID])",
             'dropDuplicatesWithinWatermark([k for k in schema.key if k != "vs_currency"] + [QUARANTINE_ID])',
             ("tests/jobs/test_stream.py::test_one_coin_and_time_in_two_quote_currencies_loads_twice_and_repeats_"
              "still_drop",)),
    Mutation("duckdb ledger in a transaction of its own", "jobs/loaders/duckdb.py",
             "        con.execute(\n            f\"INSERT INTO {LOADS_TABLE}",
             "        con.commit()\n        con.begin()\n        con.execute(\n            f\"INSERT INTO {LOADS_TABLE}",
             ("tests/jobs/test_duckdb_loader.py",)),
    Mutation("duckdb ledger check skipped", "jobs/loaders/duckdb.py",
             "        if done is not None:", "        if False:",
             ("tests/jobs/test_duckdb_loader.py",)),
    Mutation("clock skew in hours, not seconds", "jobs/validate.py",
             "total_seconds())} SECONDS", "total_seconds())} HOURS",
             ("tests/jobs/test_validate.py",)),
    Mutation("producer accepts any future event time", "core/schema.py",
             "            if value > limit:", "            if False:",
             ("tests/producer/test_validate.py",)),
    Mutation("back-fill lands its data before its marker", "producer/backfill.py",
             "                self.landing.put(marker_name(poll_id), f\"{poll_id}\\n\".encode())\n"
             "                if data:\n"
             "                    self.landing.put(object_name(poll_id), data)\n",
             "                if data:\n"
             "                    self.landing.put(object_name(poll_id), data)\n"
             "                self.landing.put(marker_name(poll_id), f\"{poll_id}\\n\".encode())\n",
             ("tests/producer/test_backfill.py::test_a_drain_cut_off_between_marker_and_data_lands_the_piece_once_"
              "although_the_stream_archived_meanwhile",)),
    Mutation("back-fill without a budget of its own", "producer/backfill.py",
             "deadline=deadline, stop=stop, budget=self.budget", "deadline=deadline, stop=stop",
             ("tests/producer/test_backfill.py::test_backfill_never_takes_more_than_the_spare_requests_so_live_polls_"
              "keep_theirs_in_every_minute",)),
    Mutation("storage write commits without checking the finalized row count", "jobs/loaders/bigquery_storage.py",
             "        if finalized.row_count != rows.num_rows:", "        if False:",
             ("tests/jobs/test_storage_write_strict.py", "tests/jobs/test_bigquery_storage.py")),
)


def emulator_venv() -> Path:
    """This tree's bqemulator venv, made as the suite makes it (scripts/bigquery_emulator.py) if missing."""
    spec = importlib.util.spec_from_file_location("bigquery_emulator", ROOT / EMULATOR_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.ensure_venv()
    return module.VENV


def run_tests(tests: tuple[str, ...], venv: Path, mutation: Mutation | None = None) -> int:
    """pytest's exit status for ``tests`` on a copy of the repository, with ``mutation`` applied if given.

    The copy links to the emulator ``venv`` where its own scripts/bigquery_emulator.py looks for one,
    and to this tree's archive of Spark's classes.
    """
    with tempfile.TemporaryDirectory(prefix="cryptopipe-mutant-") as scratch:
        copy = Path(scratch)
        for name in COPIED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                (copy / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, copy / name)
        (copy / venv.relative_to(ROOT)).symlink_to(venv, target_is_directory=True)
        classes = ROOT / ".cache" / "spark-classes"  # the test JVMs' class archive (scripts/spark_classes.py)
        if classes.is_dir():
            (copy / ".cache").mkdir()
            (copy / ".cache" / "spark-classes").symlink_to(classes, target_is_directory=True)
        if mutation is not None:
            target = copy / mutation.file
            text = target.read_text()
            if text.count(mutation.original) != 1:
                raise SystemExit(f"{mutation.name}: {mutation.file} no longer holds the line to mutate; update it")
            target.write_text(text.replace(mutation.original, mutation.mutant))
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                              cwd=copy, env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True).returncode


def caught(mutation: Mutation, venv: Path) -> bool:
    """Whether the mutation's tests fail (status 1: tests ran and failed) with it applied."""
    return run_tests(mutation.tests, venv, mutation) == 1


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not argv or any(word in m.name for word in argv)]
    venv = emulator_venv()
    # A mutation is caught only if the same tests pass without it.
    baseline = run_tests(tuple(sorted({test for m in chosen for test in m.tests})), venv)
    if baseline != 0:
        print(f"the tests fail without any mutation (pytest status {baseline}): fix them first", file=sys.stderr)
        return 2
    survivors = []
    for mutation in chosen:
        verdict = "caught" if caught(mutation, venv) else "SURVIVED"
        print(f"{verdict:9} {mutation.name}  ({mutation.file})", flush=True)
        if verdict != "caught":
            survivors.append(mutation.name)
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
