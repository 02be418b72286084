"""The alerts' tables of the docs, from their one definition.

The ``alerts`` and ``log-queries`` sections (scripts/docs.py) come from core/health.py
(the alerts, their meaning and thresholds), the environments' configuration (each
threshold per environment) and cdktf/infra/monitoring/log_metrics.py (the filters the metrics count,
which are also the log queries of the runbook).
"""

from __future__ import annotations

from collections.abc import Sequence

from core.health import ALERTS_BY_KEY, describe_threshold, policies_for
from infra.environments import EnvironmentConfig
from infra.monitoring.log_metrics import log_filters


def alerts_table(environments: Sequence[EnvironmentConfig], runbook: str = "docs/OPERATIONS.md") -> str:
    """One row per alert of any environment, its threshold per environment, "not in <mode> mode" where
    the environment's processing mode has no such alert (core/health.py policies_for); each links its
    runbook section."""
    names = [f"{cfg.name} ({cfg.processing})" for cfg in environments]
    rows = ["| alert | what it means | fires when | " + " | ".join(names) + " |",
            "|---|---|---|" + "---|" * len(names)]
    policies = {cfg.name: policies_for(cfg.alert_thresholds) for cfg in environments}
    for alert in [alert for alert in ALERTS_BY_KEY.values() if any(alert in each for each in policies.values())]:
        anchor = alert.title.lower().replace(" ", "-")
        values = " | ".join(describe_threshold(alert, cfg.alert_thresholds)
                            if alert in policies[cfg.name] else f"not in {cfg.processing} mode"
                            for cfg in environments)
        rows.append(f"| [{alert.title}]({runbook}#{anchor}) | {alert.meaning} | {alert.fires_when} | "
                    f"{values} |")
    return "\n".join(rows)


def log_queries_table() -> str:
    """Each log-based metric and the query it counts (also the runbook's log queries)."""
    rows = ["| metric (`<prefix>-<env>-health-…`) | log query it counts |", "|---|---|"]
    rows += [f"| `{key}` | `{filter_}` |" for key, filter_ in log_filters().items()]
    return "\n".join(rows)
