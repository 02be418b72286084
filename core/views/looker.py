"""A Looker Studio Linking API URL that opens a new report on the deployed views.

The Linking API configures a report entirely through URL parameters: each view
becomes a BigQuery data source (``ds.<alias>.*``), and the report opens in edit mode
so the chart can be added straight away (docs/DASHBOARD.md gives the three clicks).
No template report is named (``c.reportId``): Looker Studio starts from a blank one,
so there is nothing to share or keep in sync.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from core.views.definitions import VIEWS
from core.views.translate import check_dataset_ref

LINKING_API = "https://lookerstudio.google.com/reporting/create"
#: Report name when none is given.
REPORT_NAME = "cryptopipe prices"


def looker_studio_url(project: str, dataset: str, *views: str, report_name: str = REPORT_NAME) -> str:
    """The Linking API URL for ``views`` of ``project.dataset`` (default: every view).

    The first view is data source ``ds0``, the next ``ds1``, and so on::

        looker_studio_url("my-project", "cryptopipe_dev", "candles_1m")
        # https://lookerstudio.google.com/reporting/create?c.mode=edit
        #   &r.reportName=cryptopipe%20prices&ds.ds0.connector=bigQuery&ds.ds0.type=TABLE
        #   &ds.ds0.projectId=my-project&ds.ds0.datasetId=cryptopipe_dev
        #   &ds.ds0.tableId=candles_1m&ds.ds0.datasourceName=cryptopipe_dev.candles_1m

    Raises ValueError for an invalid project or dataset id, or an unknown view.
    """
    check_dataset_ref(project, dataset)
    chosen = views or VIEWS
    unknown = [view for view in chosen if view not in VIEWS]
    if unknown:
        raise ValueError(f"no view {', '.join(map(repr, unknown))}; the views are {', '.join(VIEWS)}")
    params = {"c.mode": "edit", "r.reportName": report_name}
    for index, view in enumerate(chosen):
        alias = f"ds.ds{index}"
        params.update({
            f"{alias}.connector": "bigQuery",
            f"{alias}.type": "TABLE",
            f"{alias}.projectId": project,
            f"{alias}.datasetId": dataset,
            f"{alias}.tableId": view,
            f"{alias}.datasourceName": f"{dataset}.{view}",
        })  # fmt: skip
    return f"{LINKING_API}?{urlencode(params, quote_via=quote)}"
