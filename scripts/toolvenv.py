"""A pinned tool in a venv of its own, made on first use: for tools whose pins clash with the project's.

bqemulator needs sqlglot and protobuf below this project's pins, checkov a dependency
tree of its own; each lives in ``.venv-<tool>`` beside ``.venv``, installed from the
package index once and checked by version on every use.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def ensure_tool_venv(venv: Path, distribution: str, version: str, extra_pins: tuple[str, ...] = ()) -> Path:
    """``venv``'s python, after installing ``distribution==version`` (and ``extra_pins``) into it
    when it is missing or holds another version."""
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({distribution!r}))"],
        capture_output=True, text=True,
    ) if python.exists() else None
    if installed is None or installed.stdout.strip() != version:
        print(f"{Path(sys.argv[0]).name}: installing {distribution}=={version} into {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        f"{distribution}=={version}", *extra_pins], check=True)
    return python
