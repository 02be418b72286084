"""One direction of dependencies: core below the workloads, the local app and the benchmarks on top.

The packages are held to the import-linter contracts in pyproject.toml (the layers
between packages, inside the local app and inside the CDKTF app's ``cdktf/infra``);
the CDKTF app's two entry scripts (``cdktf/main.py``, ``cdktf/ci.py``), outside any
package, are held by an AST walk to the same rule: the app and the core, never a
workload or the local app. No module may import itself back through others: an import
cycle hidden by a function-level import breaks as soon as someone moves that import
to the top.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "producer", "jobs", "cryptopipe", "bench")
#: The CDKTF app's package, under cdktf/ (a package named ``cdktf`` would shadow the library).
CDKTF_PACKAGE = "cdktf/infra"
#: What the CDKTF app may not import: it ships the workloads as folders, it never runs them.
NOT_FOR_CDKTF = {"producer", "jobs", "cryptopipe", "bench"}


def _path(root: Path) -> dict[str, str]:
    """The environment that finds every package under ``root``: the CDKTF app's as its entry points do."""
    return {"PYTHONPATH": f"{root}:{root / 'cdktf'}", "PATH": "/usr/bin:/bin"}


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's verdict on the packages under ``root`` (with ``root``'s pyproject.toml)."""
    return subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=root,
                          env=_path(root), capture_output=True, text=True, timeout=120)


def _contracts() -> int:
    return len(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"])


def test_the_packages_keep_the_layer_contracts():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{_contracts()} kept, 0 broken" in result.stdout


def _copy_packages(to: Path) -> Path:
    for name in (*PACKAGES, CDKTF_PACKAGE, "pyproject.toml"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, to / name, ignore=shutil.ignore_patterns("__pycache__", "data"))
        else:
            shutil.copy2(source, to / name)
    return to


def _append(path: Path, code: str) -> None:
    path.write_text(path.read_text() + "\n\n" + code)


@pytest.mark.parametrize(
    ("module", "upward", "broken"),
    [
        ("core/totals.py", "from jobs.metrics import StreamMetrics", "core.totals -> jobs.metrics"),
        # inside the local app: its settings reach up for the run they configure
        ("cryptopipe/settings.py", "from cryptopipe.pipeline import LocalPipeline",
         "cryptopipe.settings -> cryptopipe.pipeline"),
        # inside its health: the state file reaches up for the judge
        ("cryptopipe/health/state.py", "from cryptopipe.health.judge import observe",
         "cryptopipe.health.state -> cryptopipe.health.judge"),
        # the CDKTF app runs no workload: it ships them as folders
        ("cdktf/infra/reports/cost.py", "from producer.config import ProducerConfig",
         "infra.reports.cost -> producer.config"),
        # inside it: the access model reads the synthesized stacks, never the constructs
        ("cdktf/infra/access/model.py", "from infra.stacks.pipeline import PipelineStack",
         "infra.access.model -> infra.stacks.pipeline"),
        # the stacks and the reports stay apart
        ("cdktf/infra/stacks/alerts.py", "from infra.reports.alerts import alerts_table",
         "infra.stacks.alerts -> infra.reports.alerts"),
    ],
)
def test_an_upward_import_breaks_a_contract(tmp_path, module, upward, broken):
    _append(_copy_packages(tmp_path) / module, f"def _upward():\n    {upward}  # noqa\n")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1
    assert broken in result.stdout


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph`` (module -> modules it imports): its strongly connected
    components of more than one module, each sorted, found by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph.get(module, ()):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


# grimp (import-linter's graph) in a process of its own: one with the packages already
# imported would graph those, not the tree under ``root``.
_PACKAGE_GRAPH = """
import json, sys, grimp
graph = grimp.build_graph(*sys.argv[1:], include_external_packages=False, cache_dir=None)
print(json.dumps({m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}))
"""


def repository_imports(root: Path) -> dict[str, set[str]]:
    """Every module of the packages, the CDKTF app's among them (grimp, imports inside
    functions too), with the modules of the repository it imports."""
    packages = (*PACKAGES, Path(CDKTF_PACKAGE).name)
    result = subprocess.run([sys.executable, "-c", _PACKAGE_GRAPH, *packages], cwd=root, capture_output=True,
                            text=True, env=_path(root), timeout=120)
    assert result.returncode == 0, result.stderr
    return {module: set(imported) for module, imported in json.loads(result.stdout).items()}


def test_no_module_imports_itself_back(tmp_path):
    assert import_cycles(repository_imports(ROOT)) == []


def test_a_cycle_hidden_in_a_function_is_found(tmp_path):
    copy = _copy_packages(tmp_path)
    _append(copy / "cryptopipe" / "checks.py", "def _back():\n    from cryptopipe.pipeline import LocalPipeline  # noqa\n")
    _append(copy / "cdktf" / "infra" / "stacks" / "iam.py", "def _back():\n    from infra.stacks import pipeline  # noqa\n")
    cycles = import_cycles(repository_imports(copy))
    assert ["cryptopipe.checks", "cryptopipe.pipeline"] in cycles
    assert any("infra.stacks.iam" in cycle and "infra.stacks.pipeline" in cycle for cycle in cycles), cycles


def upward_imports(source: str) -> list[str]:
    """The modules of ``NOT_FOR_CDKTF`` that ``source`` imports, wherever the import statement is."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
        found += [name for name in names if name.split(".")[0] in NOT_FOR_CDKTF]
    return found


def test_the_cdktf_entry_scripts_import_only_the_app_and_the_core():
    scripts = sorted((ROOT / "cdktf").glob("*.py"))
    assert [path.name for path in scripts] == ["ci.py", "main.py"]  # a new script is held here too
    offending = {path.name: upward_imports(path.read_text()) for path in scripts}
    assert {name: found for name, found in offending.items() if found} == {}


def test_the_cdktf_check_sees_imports_inside_functions():
    assert upward_imports("def f():\n    from jobs.loaders import base\n    import producer.landing\n") == [
        "jobs.loaders", "producer.landing"]
    assert upward_imports("from core.tables import TICK_FIELDS\nimport json\n") == []
