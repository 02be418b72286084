"""BigQuery: the dataset, the ticks and quarantine tables, and the views over them.

Nothing here restates a column. The tables' columns are what the streaming job
loads, declared once in ``core/tables.py``: the ticks table is the one market
tick schema (``core/schemas/market_tick.json``) plus the ``_load_id`` every
loaded row carries; the views' SQL is ``core/views/*.sql``, which the local
DuckDB warehouse runs too.
"""

from __future__ import annotations

import json
from typing import Any

from constructs import Construct

from core.schema import bigquery_fields, market_tick
from core.tables import QUARANTINE_FIELDS, QUARANTINE_PARTITION_FIELD, QUARANTINE_TABLE, TICK_FIELDS, TICKS_TABLE
from core.views import VIEWS, bigquery_view_sql, view_description
from infra.cdk import google
from infra.environments import EnvironmentConfig
from infra.stacks.iam import grant

_DAY_MS = 24 * 60 * 60 * 1000


class Warehouse(Construct):
    """Dataset + tables; the processing account may edit the dataset's tables, nothing else; CI's planner
    (when the environment has CI) may read the ticks table, nothing else."""

    def __init__(
        self, scope: Construct, id_: str, cfg: EnvironmentConfig, members: dict[str, str], after: list[Any]
    ) -> None:
        super().__init__(scope, id_)
        schema = market_tick()
        key_grants = self._kms_grants(cfg, after) if cfg.kms_key else []
        encryption = {"kms_key_name": cfg.kms_key} if cfg.kms_key else None

        self.dataset = google.bigquery_dataset.BigqueryDataset(
            self, "dataset", dataset_id=cfg.dataset_id, project=cfg.project, location=cfg.region,
            description="cryptopipe market ticks, loaded exactly once per micro-batch by the streaming job.",
            delete_contents_on_destroy=not cfg.deletion_protection,
            default_encryption_configuration=encryption,
            depends_on=[*after, *key_grants],
        )
        self.ticks = google.bigquery_table.BigqueryTable(
            self, "ticks", dataset_id=self.dataset.dataset_id, project=cfg.project, table_id=TICKS_TABLE,
            description=schema.description,
            schema=json.dumps(bigquery_fields(TICK_FIELDS)),
            time_partitioning={
                "type": "DAY", "field": schema.partition_field,
                "expiration_ms": _days_ms(cfg.partition_expiration_days),
            },
            clustering=list(schema.cluster_fields),
            encryption_configuration=encryption,
            deletion_protection=cfg.deletion_protection,
        )
        self.quarantine = google.bigquery_table.BigqueryTable(
            self, "quarantine", dataset_id=self.dataset.dataset_id, project=cfg.project, table_id=QUARANTINE_TABLE,
            description="Landing lines the stream rejected, with the reason.",
            schema=json.dumps(bigquery_fields(QUARANTINE_FIELDS)),
            time_partitioning={
                "type": "DAY", "field": QUARANTINE_PARTITION_FIELD,
                "expiration_ms": _days_ms(cfg.quarantine_expiration_days),
            },
            encryption_configuration=encryption,
            deletion_protection=cfg.deletion_protection,
        )
        self.views = [
            google.bigquery_table.BigqueryTable(
                self, f"view-{view}", dataset_id=self.dataset.dataset_id, project=cfg.project, table_id=view,
                description=view_description(view),
                view={"query": bigquery_view_sql(view, cfg.project, cfg.dataset_id), "use_legacy_sql": False},
                deletion_protection=cfg.deletion_protection, depends_on=[self.ticks],
            )
            for view in VIEWS
        ]
        dataset_ref = f"{cfg.project}.{cfg.dataset_id}"
        self.ticks_table_id = f"{dataset_ref}.{TICKS_TABLE}"
        self.quarantine_table_id = f"{dataset_ref}.{QUARANTINE_TABLE}"
        self.uri = f"bigquery://{dataset_ref}"

        dataset_roles = {
            # Load jobs append to and create tables of this dataset only.
            "roles/bigquery.dataEditor": {"processing": members["processing"]},
        }
        self.grants = grant(self, google.bigquery_dataset_iam_member.BigqueryDatasetIamMember, dataset_roles,
                            dataset_id=self.dataset.dataset_id, project=cfg.project)
        if "planner" in members:
            # The post-deploy smoke check (scripts/check-stream.sh), as CI's read-only planner,
            # asks the ticks table for its newest live row: data of this one table, no other.
            ticks_roles = {"roles/bigquery.dataViewer": {"planner": members["planner"]}}
            self.grants += grant(self, google.bigquery_table_iam_member.BigqueryTableIamMember, ticks_roles,
                                 dataset_id=self.dataset.dataset_id, table_id=self.ticks.table_id,
                                 project=cfg.project)

    def _kms_grants(self, cfg: EnvironmentConfig, after: list[Any]) -> list[Any]:
        agent = google.data_google_bigquery_default_service_account.DataGoogleBigqueryDefaultServiceAccount(
            self, "bq-agent", project=cfg.project, depends_on=after
        )
        key_roles = {"roles/cloudkms.cryptoKeyEncrypterDecrypter": {"bq-agent": agent.member}}
        return grant(self, google.kms_crypto_key_iam_member.KmsCryptoKeyIamMember, key_roles, crypto_key_id=cfg.kms_key)


def _days_ms(days: int | None) -> int | None:
    return days * _DAY_MS if days else None
