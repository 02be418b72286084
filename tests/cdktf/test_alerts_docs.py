"""docs/OPERATIONS.md and the alert definitions agree: the runbook has a section per alert
with its checks and recovery, and its log queries are the metrics' own filters (the tables
themselves are generated: tests/cdktf/test_generated_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.health import ALERTS
from infra.monitoring.log_metrics import log_filters

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = (ROOT / "docs" / "OPERATIONS.md").read_text()


def _section(title: str) -> str:
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", OPERATIONS, re.S | re.M)
    assert found, f"docs/OPERATIONS.md has no section '## {title}'"
    return found.group(1)


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a.key)
def test_each_alert_has_a_runbook_section_with_three_checks_and_a_recovery(alert):
    section = _section(alert.title)
    checks = section.split("First checks:", 1)[1]
    assert re.findall(r"^(\d)\. ", checks, re.M)[:3] == ["1", "2", "3"]
    assert "Recovery" in section
    assert re.search(r"\b(gcloud|bq) ", section)


def test_the_runbook_covers_each_recovery_the_issue_names():
    for needle in ("**Restart the producer**", "**restart the job**", "**Drain or inspect the spool**",
                   "**Replay quarantined lines**", "**Rotate the CoinGecko key**"):
        assert needle in OPERATIONS


def test_the_runbooks_log_queries_are_the_metrics_filters():
    """A query copied from a section counts what the alert counts."""
    queries = set(re.findall(r"gcloud logging read '([^']+)'", OPERATIONS))
    filters = log_filters()
    for key in ("polls", "records", "stream-starts"):
        assert filters[key] in queries, key


def test_the_deployment_guide_tells_how_to_add_a_channel():
    guide = (ROOT / "docs" / "DEPLOY.md").read_text()
    assert "**Add one**" in guide and "alert_emails" in guide and "alert_webhook_url" in guide
