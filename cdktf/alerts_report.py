"""The alerts' tables in README.md and docs/OPERATIONS.md, generated from their one definition.

``.venv/bin/python cdktf/alerts_report.py`` rewrites what lies between the
``<!-- alerts -->`` and ``<!-- log-queries -->`` markers from core/health.py (the
alerts, their meaning and thresholds), the environments' configuration (each
threshold per environment) and cdktf/log_metrics.py (the filters the metrics
count, which are also the log queries of the runbook). tests/cdktf/test_alerts_docs.py
fails while a document is stale.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from core.health import ALERTS, describe_threshold

from config import EnvironmentConfig, load_environments
from log_metrics import log_filters

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = {"README.md": ("alerts",), "docs/OPERATIONS.md": ("alerts", "log-queries")}


def alerts_table(environments: Sequence[EnvironmentConfig], runbook: str = "docs/OPERATIONS.md") -> str:
    """One row per alert, its threshold per environment; each links its runbook section."""
    names = [cfg.name for cfg in environments]
    rows = ["| alert | what it means | fires when | " + " | ".join(names) + " |",
            "|---|---|---|" + "---|" * len(names)]
    for alert in ALERTS:
        anchor = alert.title.lower().replace(" ", "-")
        values = " | ".join(describe_threshold(alert, cfg.alert_thresholds) for cfg in environments)
        rows.append(f"| [{alert.title}]({runbook}#{anchor}) | {alert.meaning} | {alert.fires_when} | "
                    f"{values} |")
    return "\n".join(rows)


def log_queries_table() -> str:
    """Each log-based metric and the query it counts (also the runbook's log queries)."""
    rows = ["| metric (`<prefix>-<env>-health-…`) | log query it counts |", "|---|---|"]
    rows += [f"| `{key}` | `{filter_}` |" for key, filter_ in log_filters().items()]
    return "\n".join(rows)


def generated(document: str, marker: str, environments: Sequence[EnvironmentConfig]) -> str:
    """What belongs between ``marker``'s markers in ``document``."""
    if marker == "log-queries":
        return log_queries_table()
    return alerts_table(environments, "" if document == "docs/OPERATIONS.md" else "docs/OPERATIONS.md")


def rewrite(text: str, marker: str, body: str) -> str:
    """``text`` with ``body`` between the ``<!-- marker -->`` and ``<!-- /marker -->`` lines."""
    pattern = re.compile(rf"(<!-- {marker} -->\n)(?:.*?\n)?(<!-- /{marker} -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"no <!-- {marker} --> … <!-- /{marker} --> markers")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main() -> int:
    environments = load_environments()
    for name, markers in DOCUMENTS.items():
        path = ROOT / name
        text = path.read_text()
        for marker in markers:
            text = rewrite(text, marker, generated(name, marker, environments))
        path.write_text(text)
        print(f"alerts_report: wrote the alert tables of {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
