"""GoogleSQL, written once, in the dialect each warehouse speaks.

The views and the dashboard's queries are written in GoogleSQL (BigQuery's dialect)
and translated with sqlglot. That direction is deliberate: DuckDB is the dialect the
tests can run, so every translation that could change a result (GoogleSQL to DuckDB)
is checked by executing it on known data, while the BigQuery side is only re-printed
with its table names qualified, which a parse check covers.

Warehouse tables are written unqualified (``market_ticks``); for BigQuery they become
``project.dataset.name``. Query parameters are written ``@name``; DuckDB gets ``$name``.
"""

from __future__ import annotations

import re
from functools import cache

import sqlglot
from sqlglot import exp

from core.gcp import PROJECT_ID

#: The dialect the sources are written in.
SOURCE_DIALECT = "bigquery"
DIALECTS = ("bigquery", "duckdb")

# BigQuery's rules: project ids are 6-30 lower-case letters, digits and hyphens
# (older ones may carry a "domain:" prefix); dataset ids letters, digits and underscores.
_PROJECT_ID = re.compile(rf"^(?:[a-z0-9.-]+:)?{PROJECT_ID}$")
_DATASET_ID = re.compile(r"^[A-Za-z0-9_]{1,1024}$")


def translate(source: str, dialect: str, *, project: str | None = None, dataset: str | None = None) -> str:
    """``source`` (GoogleSQL) printed in ``dialect``; BigQuery needs ``project`` and ``dataset``.

    Raises ValueError naming a bad dialect, project or dataset id.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"dialect {dialect!r} is not one of {', '.join(DIALECTS)}")
    if dialect == "bigquery":
        check_dataset_ref(project, dataset)
    return _translate(source, dialect, project, dataset)


def check_dataset_ref(project: str | None, dataset: str | None) -> None:
    """Raise ValueError unless ``project`` and ``dataset`` are valid BigQuery ids."""
    if not project or not _PROJECT_ID.match(project):
        raise ValueError(
            f"BigQuery project id {project!r} is not valid: expected 6-30 lower-case letters, digits or hyphens"
        )
    if not dataset or not _DATASET_ID.match(dataset):
        raise ValueError(f"BigQuery dataset id {dataset!r} is not valid: expected letters, digits or underscores")


@cache
def _translate(source: str, dialect: str, project: str | None, dataset: str | None) -> str:
    tree = sqlglot.parse_one(source, read=SOURCE_DIALECT)
    if dialect == "bigquery":
        ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if not table.args.get("db") and table.name not in ctes:
                table.set("catalog", exp.to_identifier(project, quoted=True))
                table.set("db", exp.to_identifier(dataset, quoted=True))
    # Comments are left out: sqlglot moves inline ones to odd places, and the source
    # file is where they are read.
    return tree.sql(dialect=dialect, pretty=True, comments=False)
