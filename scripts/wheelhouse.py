#!/usr/bin/env python3
"""Fill ``.cache/wheelhouse/`` with the wheels of both locks (cdktf/infra/artifacts/wheelhouse.py).

Run by ``scripts/test`` while PyPI is reachable, so the tests' synths find every wheel
cached; a deploy machine's synth fills what is missing itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "cdktf")]  # the CDKTF app's package, as cdktf/main.py sees it

from infra.artifacts.wheelhouse import CACHE, LOCKS, WheelhouseError, locked_wheels  # noqa: E402


def main() -> int:
    try:
        for lock in LOCKS:
            wheels = locked_wheels(ROOT / lock.path)
            print(f"{lock.path}: {len(wheels)} wheels in {CACHE}", file=sys.stderr)
    except WheelhouseError as exc:
        print(f"scripts/wheelhouse.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
