"""BigQuery: the one schema, partitioning, clustering, quarantine, protections."""

from __future__ import annotations

import json

from core.schema import bigquery_fields, market_tick
from core.tables import LOAD_ID, QUARANTINE_FIELDS
from core.views import VIEWS, bigquery_view_sql
from infra.environments import environment, load_environments

CONFIGS = {cfg.name: cfg for cfg in load_environments()}
DAY_MS = 86_400_000


def _table(stack, table_id):
    (table,) = [t for t in stack.resources("google_bigquery_table").values() if t["table_id"] == table_id]
    return table


def test_ticks_schema_is_the_one_schema_plus_the_load_id(stack):
    *record, load_id, origin = json.loads(_table(stack, "market_ticks")["schema"])
    assert [*record, origin] == bigquery_fields()
    assert load_id["name"] == LOAD_ID


def test_ticks_table_carries_the_origin_as_an_appended_nullable_column(stack):
    """Appended and NULLABLE: Terraform updates an existing table's schema in place (no replacement),
    and rows loaded before hold null, which the views read as live polls."""
    columns = json.loads(_table(stack, "market_ticks")["schema"])
    assert columns[-1]["name"] == "origin"
    assert columns[-1]["mode"] == "NULLABLE" and columns[-1]["type"] == "STRING"


def test_ticks_partitioned_by_day_of_event_time_and_clustered_by_coin(stack):
    table = _table(stack, "market_ticks")
    assert table["time_partitioning"]["type"] == "DAY"
    assert table["time_partitioning"]["field"] == market_tick().partition_field == "last_updated"
    assert table["clustering"] == list(market_tick().cluster_fields) == ["coin_id"]


def test_partition_expiration_comes_from_configuration(stacks):
    dev = _table(stacks["dev"], "market_ticks")["time_partitioning"]
    prod = _table(stacks["prod"], "market_ticks")["time_partitioning"]
    assert dev["expiration_ms"] == CONFIGS["dev"].partition_expiration_days * DAY_MS
    assert "expiration_ms" not in prod  # prod keeps every partition
    for env, stack in stacks.items():
        quarantine = _table(stack, "quarantine")["time_partitioning"]
        assert quarantine["expiration_ms"] == CONFIGS[env].quarantine_expiration_days * DAY_MS


def test_quarantine_columns_are_what_the_job_writes(stack):
    table = _table(stack, "quarantine")
    columns = json.loads(table["schema"])
    assert columns == bigquery_fields(QUARANTINE_FIELDS)
    assert {"raw_line", "reason", "source_file", "quarantined_at", LOAD_ID} <= {c["name"] for c in columns}
    assert table["time_partitioning"] == {**table["time_partitioning"], "type": "DAY", "field": "quarantined_at"}


def test_views_are_the_shared_definitions(stack):
    env = stack.directory.name
    for view in VIEWS:
        table = _table(stack, view)
        assert table["view"] == {"query": bigquery_view_sql(view, CONFIGS[env].project, f"cryptopipe_{env}"),
                                 "use_legacy_sql": False}
        assert stack.address("google_bigquery_table", _table(stack, "market_ticks")) in table["depends_on"]


def test_dataset_in_the_region(stack):
    dataset = stack.one("google_bigquery_dataset")
    env = stack.directory.name
    assert dataset["dataset_id"] == f"cryptopipe_{env}"
    assert dataset["location"] == CONFIGS[env].region


def test_prod_tables_and_dataset_are_protected(stacks):
    assert stacks["prod"].one("google_bigquery_dataset")["delete_contents_on_destroy"] is False
    for table in stacks["prod"].resources("google_bigquery_table").values():
        assert table["deletion_protection"] is True


def test_dev_tables_and_dataset_can_be_destroyed(stacks):
    assert stacks["dev"].one("google_bigquery_dataset")["delete_contents_on_destroy"] is True
    for table in stacks["dev"].resources("google_bigquery_table").values():
        assert table["deletion_protection"] is False


def test_the_planner_may_read_the_ticks_table_only(stack):
    """The smoke check's query (scripts/check-stream.sh) reads market_ticks as CI's planner: a grant
    on that table, not on the dataset (the quarantine's raw lines and the views stay unreadable)."""
    cfg = CONFIGS[stack.directory.name]
    (grant,) = stack.resources("google_bigquery_table_iam_member").values()
    planner = f"serviceAccount:{cfg.service_account_email(cfg.ci_service_account_ids['planner'])}"
    assert (grant["role"], grant["member"]) == ("roles/bigquery.dataViewer", planner)
    ticks = _table(stack, "market_ticks")
    assert grant["table_id"] == stack.ref("google_bigquery_table", ticks, "table_id")
    assert grant["dataset_id"] == stack.ref_one("google_bigquery_dataset", "dataset_id")
    dataset_grants = stack.resources("google_bigquery_dataset_iam_member").values()
    assert planner not in {g["member"] for g in dataset_grants}


def test_without_ci_no_table_is_granted(tmp_path):
    from infra.cdk import App, TerraformStack, google
    from infra.stacks.warehouse import Warehouse

    cfg = environment("dev", {"project": "my-project-1", "state_bucket": "my-tfstate-1",
                              "project_number": 123456789012})
    assert cfg.github_repository is None
    app = App(outdir=str(tmp_path))
    scope = TerraformStack(app, "warehouse")
    google.provider.GoogleProvider(scope, "google", project=cfg.project)
    Warehouse(scope, "warehouse", cfg, {"processing": "serviceAccount:p@my-project-1.iam.gserviceaccount.com"},
              after=[])
    app.synth()
    resources = json.loads((tmp_path / "stacks" / "warehouse" / "cdk.tf.json").read_text())["resource"]
    assert "google_bigquery_table_iam_member" not in resources
    assert len(resources["google_bigquery_dataset_iam_member"]) == 1
