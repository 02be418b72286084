"""README.md, docs/OPERATIONS.md and the alert definitions agree: the tables are generated
from core/health.py and the config, the runbook has a section per alert with its checks and
recovery, and its log queries are the metrics' own filters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alerts_report import DOCUMENTS, generated
from config import load_environments
from core.health import ALERTS
from log_metrics import log_filters

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = (ROOT / "docs" / "OPERATIONS.md").read_text()


@pytest.mark.parametrize(("document", "marker"), [(d, m) for d, markers in DOCUMENTS.items() for m in markers])
def test_the_generated_tables_are_current(document, marker):
    text = (ROOT / document).read_text()
    found = re.search(rf"<!-- {marker} -->\n(.*?)\n<!-- /{marker} -->", text, re.S)
    assert found, f"{document} lacks the {marker} markers"
    assert found.group(1) == generated(document, marker, load_environments()), (
        f"{document} is stale: run .venv/bin/python cdktf/alerts_report.py")


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


def test_the_readme_tells_how_to_add_a_channel():
    readme = (ROOT / "README.md").read_text()
    assert "**Add one**" in readme and "alert_emails" in readme and "alert_webhook_url" in readme
