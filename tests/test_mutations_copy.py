"""scripts/mutations.py runs tests in a copy of the repository: the copy must hold what the suite loads."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import script_module

ROOT = Path(__file__).resolve().parents[1]


def test_the_copy_holds_every_script_a_conftest_loads():
    """A script a conftest loads at import that the copy lacks fails every mutant's run before a test
    runs (it did, once the test JVMs' options moved into scripts/spark_classes.py)."""
    loaded = {f"scripts/{name}.py" for conftest in (ROOT / "tests").rglob("conftest.py")
              for name in re.findall(r'script_module\("(\w+)"\)', conftest.read_text())}
    assert loaded >= {"scripts/spark_classes.py", "scripts/bigquery_emulator.py"}  # the search finds them
    assert loaded <= set(script_module("mutations").COPIED)
