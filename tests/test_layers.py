"""One direction of dependencies: core below the workloads, the local app and the benchmarks on top.

The packages are held to the import-linter contract in pyproject.toml; ``cdktf/`` is
a folder of modules (a package named ``cdktf`` would shadow the library), so an AST
walk holds it to the same rule: it may import the core, never a workload or the app.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "producer", "jobs", "cryptopipe", "bench")
#: What the CDKTF app may not import: it ships the workloads as folders, it never runs them.
NOT_FOR_CDKTF = {"producer", "jobs", "cryptopipe", "bench"}


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's verdict on the packages under ``root`` (with ``root``'s pyproject.toml)."""
    return subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=120)


def test_the_packages_keep_the_layer_contract():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    for name in (*PACKAGES, "pyproject.toml"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "data"))
        else:
            shutil.copy2(source, tmp_path / name)
    totals = tmp_path / "core" / "totals.py"
    totals.write_text(totals.read_text() + "\n\ndef _upward():\n    from jobs.metrics import StreamMetrics  # noqa\n")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1
    assert "core.totals -> jobs.metrics" in result.stdout


def upward_imports(source: str) -> list[str]:
    """The modules of ``NOT_FOR_CDKTF`` that ``source`` imports, wherever the import statement is."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
        found += [name for name in names if name.split(".")[0] in NOT_FOR_CDKTF]
    return found


def test_the_cdktf_app_imports_only_the_core():
    offending = {path.name: upward_imports(path.read_text()) for path in sorted((ROOT / "cdktf").glob("*.py"))}
    assert {name: found for name, found in offending.items() if found} == {}


def test_the_cdktf_check_sees_imports_inside_functions():
    assert upward_imports("def f():\n    from jobs.loaders import base\n    import producer.landing\n") == [
        "jobs.loaders", "producer.landing"]
    assert upward_imports("from core.tables import TICK_FIELDS\nimport json\n") == []
