"""Google Cloud's naming rules that more than one part checks, written once.

The deployment's settings (``cdktf/infra/environments.py``), the producer's Secret Manager
version (``producer/config.py``), the BigQuery warehouse URI
(``jobs/loaders/bigquery.py``) and the views' table references
(``core/views/translate.py``) all name a project: they refuse the same ids.
"""

from __future__ import annotations

#: A project id: 6-30 lower-case letters, digits and hyphens, starting with a letter
#: and not ending with a hyphen. No anchors, so that longer patterns can embed it
#: (``projects/{PROJECT_ID}/...``); use ``re.fullmatch`` to check a bare id.
PROJECT_ID = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"
