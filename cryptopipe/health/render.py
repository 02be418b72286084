"""The verdicts as people and pages see them: ``cryptopipe status``'s table, the dashboard's JSON."""

from __future__ import annotations

from rich.table import Table

from core.health import Verdict
from cryptopipe.health.judge import pipeline_health
from core.layout import LocalLayout


def status_table(verdicts: list[Verdict]) -> Table:
    """The verdicts as ``cryptopipe status`` prints them."""
    table = Table("alert", "state", "now", "red when over", "runbook")
    for verdict in verdicts:
        state = "[green]ok[/]" if verdict.ok else "[bold red]RED[/]"
        table.add_row(verdict.alert.title, state, verdict.value, verdict.threshold,
                      f"docs/OPERATIONS.md, {verdict.alert.title}")
    return table


def as_json(verdicts: list[Verdict]) -> list[dict]:
    """The verdicts as the dashboard's health endpoint answers them."""
    return [{"alert": v.alert.key, "title": v.alert.title, "ok": v.ok, "value": v.value, "threshold": v.threshold}
            for v in verdicts]


def dashboard_alerts(layout: LocalLayout) -> list[dict]:
    """The alerts' verdicts now, as the dashboard of a local run answers them."""
    return as_json(pipeline_health(layout))
