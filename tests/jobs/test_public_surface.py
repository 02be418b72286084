"""The job package's public surface: what other packages (the local app, the benchmarks) may use."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import jobs

ROOT = Path(__file__).resolve().parents[2]


def test_every_public_name_resolves_and_nothing_else_does():
    for name in jobs.__all__:
        assert getattr(jobs, name) is not None, name
    try:
        getattr(jobs, "BatchStager")  # a private part of the package
    except AttributeError as error:
        assert "its public names are" in str(error)
    else:
        raise AssertionError("jobs exposes a name outside __all__")


def test_importing_the_package_imports_no_spark_and_no_warehouse_client():
    code = "import sys, jobs; jobs.LoadId; print(sorted(m for m in sys.modules if m.split('.')[0] in " \
           "('pyspark', 'duckdb', 'google')))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_benchmarks_use_only_the_public_surface():
    """bench/ once reached into jobs.stream's private names to copy start_stream."""
    reached = []
    for path in sorted((ROOT / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "jobs":
                if node.module != "jobs" or any(alias.name not in jobs.__all__ for alias in node.names):
                    reached.append(f"{path.name}: from {node.module} import {[a.name for a in node.names]}")
            elif isinstance(node, ast.Import):
                reached += [f"{path.name}: import {a.name}" for a in node.names if a.name.startswith("jobs.")]
    assert reached == []
