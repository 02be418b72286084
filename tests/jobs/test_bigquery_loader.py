"""The BigQuery warehouse against a fake client: exact load jobs, and replays that never load twice.

No test reaches the network or looks for credentials: the warehouse gets a fake
client (:class:`FakeBigQuery`, the four Client methods it calls), or, for the wire
format, a real ``bigquery.Client`` with anonymous credentials over a fake HTTP
session.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from google.api_core.exceptions import BadRequest, Conflict, NotFound, ServiceUnavailable
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from core.schema import bigquery_fields
from core.tables import QUARANTINE_FIELDS, TICK_FIELDS
from jobs.errors import ConfigError, LoadJobFailedError, WarehouseError
from jobs.loaders import LoadId, StagedFiles, warehouse_from_uri
from jobs.loaders.bigquery import BigQueryWarehouse, NEW_ATTEMPTS_PER_RUN, load_job_id
from jobs.locations import Location

PROJECT, DATASET, LOCATION = "my-project", "cryptopipe_dev", "europe-west1"
TICKS = f"{PROJECT}.{DATASET}.market_ticks"
QUARANTINE = f"{PROJECT}.{DATASET}.quarantine"
LOAD = LoadId("5d1c1b4e-8f7a-4c2e-9b1d-2a6f0e3c7d84", 7)
NEWEST = datetime(2025, 6, 1, 12, 1, 3, 456000, tzinfo=timezone.utc)
STAGING = "gs://my-project-cryptopipe-dev/staging/batch_id=7"
STAGED = StagedFiles(
    ticks=(f"{STAGING}/market_ticks/part-00000-a.parquet", f"{STAGING}/market_ticks/part-00001-a.parquet"),
    quarantine=(f"{STAGING}/quarantine/part-00000-b.parquet",),
    newest_event_time=NEWEST,
)
ROWS_PER_FILE = 10

# Pinned on purpose: a running stream upgraded to code that names jobs differently
# would find none of its earlier jobs and load replayed batches a second time.
TICKS_JOB_A0 = "cryptopipe_market_ticks_5d1c1b4e-8f7a-4c2e-9b1d-2a6f0e3c7d84_b7_f20a6493157b7bff7986_a0"

TICKS_CONFIG = {
    "load": {
        "sourceFormat": "PARQUET",
        "writeDisposition": "WRITE_APPEND",
        "createDisposition": "CREATE_NEVER",
        "schema": {"fields": bigquery_fields(TICK_FIELDS)},
        "timePartitioning": {"type": "DAY", "field": "last_updated"},
        "clustering": {"fields": ["coin_id"]},
    }
}
QUARANTINE_CONFIG = {
    "load": {
        "sourceFormat": "PARQUET",
        "writeDisposition": "WRITE_APPEND",
        "createDisposition": "CREATE_NEVER",
        "schema": {"fields": bigquery_fields(QUARANTINE_FIELDS)},
        "timePartitioning": {"type": "DAY", "field": "quarantined_at"},
    }
}
# tables.get answers with BigQuery's legacy type names.
LEGACY_TYPES = {"FLOAT64": "FLOAT", "INT64": "INTEGER"}


def table_resource(table_id: str, **overrides: Any) -> dict[str, Any]:
    """The tables.get answer for a table as the CDKTF app declares it."""
    project, dataset, name = table_id.split(".")
    ticks = name == "market_ticks"
    resource = {
        "tableReference": {"projectId": project, "datasetId": dataset, "tableId": name},
        "location": LOCATION,
        "schema": {
            "fields": [
                {**f, "type": LEGACY_TYPES.get(f["type"], f["type"])}
                for f in bigquery_fields(TICK_FIELDS if ticks else QUARANTINE_FIELDS)
            ]
        },
        "timePartitioning": {
            "type": "DAY",
            "field": "last_updated" if ticks else "quarantined_at",
            "expirationMs": "2592000000",
        },
        **({"clustering": {"fields": ["coin_id"]}} if ticks else {}),
    }
    resource.update(overrides)
    return {k: v for k, v in resource.items() if v is not None}


class FakeJob:
    """A load job as the client hands it back: id, destination, outcome."""

    job_type = "load"

    def __init__(self, job_id: str, destination: str, rows: int, error: dict[str, str] | None = None) -> None:
        self.job_id = job_id
        self.destination = bigquery.TableReference.from_string(destination)
        self.output_rows = rows
        self.error_result = error
        self.waited = 0

    def result(self, timeout: float | None = None) -> FakeJob:
        self.waited += 1
        if self.error_result is not None:
            raise BadRequest(self.error_result["message"])
        return self


class FakeBigQuery:
    """The Client methods the warehouse calls. Jobs are kept by id, as BigQuery keeps them:
    a second insert of an id is a 409 Conflict, whatever became of the first."""

    def __init__(self) -> None:
        self.tables = {table_id: table_resource(table_id) for table_id in (TICKS, QUARANTINE)}
        self.jobs: dict[str, FakeJob] = {}
        self.inserts: list[dict[str, Any]] = []
        self.gets: list[str] = []
        self.errors: list[dict[str, str]] = []
        """Error results for the next new jobs, in order."""
        self.closed = False

    def get_table(self, table_id: str) -> bigquery.Table:
        if table_id not in self.tables:
            raise NotFound(f"Not found: Table {table_id}")
        return bigquery.Table.from_api_repr(self.tables[table_id])

    def load_table_from_uri(
        self,
        source_uris: list[str],
        destination: str,
        *,
        job_id: str,
        project: str,
        location: str,
        job_config: bigquery.LoadJobConfig,
    ) -> FakeJob:
        self.inserts.append(
            {
                "job_id": job_id,
                "project": project,
                "location": location,
                "source_uris": source_uris,
                "destination": destination,
                "configuration": job_config.to_api_repr(),
            }
        )
        if job_id in self.jobs:
            raise Conflict(f"Already Exists: Job {project}:{location}.{job_id}")
        error = self.errors.pop(0) if self.errors else None
        self.jobs[job_id] = FakeJob(job_id, destination, 0 if error else ROWS_PER_FILE * len(source_uris), error)
        return self.jobs[job_id]

    def get_job(self, job_id: str, *, project: str, location: str) -> FakeJob:
        assert (project, location) == (PROJECT, LOCATION), "jobs outside US/EU are found by their location"
        self.gets.append(job_id)
        if job_id not in self.jobs:
            raise NotFound(f"Not found: Job {project}:{location}.{job_id}")
        return self.jobs[job_id]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def client() -> FakeBigQuery:
    return FakeBigQuery()


def _warehouse(client: Any) -> BigQueryWarehouse:
    """A warehouse as a (re)started stream builds it: set up, then loading."""
    warehouse = BigQueryWarehouse(PROJECT, DATASET, client=client)
    warehouse.setup()
    return warehouse


def _job_ids(client: FakeBigQuery) -> list[str]:
    return [insert["job_id"] for insert in client.inserts]


def test_batch_is_loaded_by_one_exact_load_job_per_table(client):
    result = _warehouse(client).load_batch(LOAD, STAGED)

    ticks, quarantine = client.inserts
    assert ticks == {
        "job_id": TICKS_JOB_A0,
        "project": PROJECT,
        "location": LOCATION,
        "source_uris": list(STAGED.ticks),
        "destination": TICKS,
        "configuration": TICKS_CONFIG,
    }
    assert quarantine == {
        "job_id": load_job_id(QUARANTINE, LOAD),
        "project": PROJECT,
        "location": LOCATION,
        "source_uris": list(STAGED.quarantine),
        "destination": QUARANTINE,
        "configuration": QUARANTINE_CONFIG,
    }
    assert quarantine["job_id"].startswith("cryptopipe_quarantine_5d1c1b4e-8f7a-4c2e-9b1d-2a6f0e3c7d84_b7_")
    assert (result.ticks, result.quarantined, result.already_loaded) == (20, 10, False)
    assert result.newest_event_time == NEWEST


def test_replayed_batch_finds_its_jobs_done_and_loads_nothing_again(client):
    _warehouse(client).load_batch(LOAD, STAGED)
    first_jobs = dict(client.jobs)

    replay = _warehouse(client).load_batch(LOAD, STAGED)  # a restarted stream, same batch

    assert client.jobs == first_jobs, "no second load job"
    assert client.gets == [TICKS_JOB_A0, load_job_id(QUARANTINE, LOAD)]
    assert all(job.waited == 2 for job in first_jobs.values()), "a job found running is waited for"
    assert (replay.ticks, replay.quarantined, replay.already_loaded) == (20, 10, True)


def test_replay_after_a_crash_between_the_two_jobs_loads_only_the_missing_table(client):
    client.jobs[TICKS_JOB_A0] = FakeJob(TICKS_JOB_A0, TICKS, rows=20)

    result = _warehouse(client).load_batch(LOAD, STAGED)

    assert client.gets == [TICKS_JOB_A0]
    assert set(client.jobs) == {TICKS_JOB_A0, load_job_id(QUARANTINE, LOAD)}
    assert (result.ticks, result.quarantined, result.already_loaded) == (20, 10, False)


def test_failed_earlier_job_is_retried_under_the_next_attempt_id(client):
    client.jobs[TICKS_JOB_A0] = FakeJob(TICKS_JOB_A0, TICKS, rows=0, error={"reason": "backendError", "message": "x"})

    result = _warehouse(client).load_batch(LOAD, StagedFiles(ticks=STAGED.ticks, quarantine=()))

    retry = load_job_id(TICKS, LOAD, attempt=1)
    assert retry == TICKS_JOB_A0.removesuffix("_a0") + "_a1"
    assert _job_ids(client) == [TICKS_JOB_A0, retry]
    assert client.inserts[1]["configuration"] == TICKS_CONFIG
    assert client.inserts[1]["source_uris"] == list(STAGED.ticks)
    assert (result.ticks, result.already_loaded) == (20, False)


def test_load_failing_every_attempt_stops_the_run_and_a_restart_goes_on_from_there(client):
    client.errors = [{"reason": "invalid", "message": f"Error while reading data, attempt {n}"} for n in range(2)]
    staged = StagedFiles(ticks=STAGED.ticks, quarantine=())

    with pytest.raises(LoadJobFailedError) as error:
        _warehouse(client).load_batch(LOAD, staged)

    attempts = [load_job_id(TICKS, LOAD, attempt=n) for n in range(NEW_ATTEMPTS_PER_RUN + 1)]
    assert _job_ids(client) == attempts[:2]
    for n in range(2):
        assert f"{attempts[n]}: invalid: Error while reading data, attempt {n}" in str(error.value)

    result = _warehouse(client).load_batch(LOAD, staged)  # restarted after the cause was fixed

    assert client.gets == attempts[:2], "the failed attempts are looked at, not started again"
    assert _job_ids(client) == [*attempts[:2], *attempts]
    assert (result.ticks, result.already_loaded) == (20, False)


def test_losing_track_of_a_job_fails_the_batch_without_starting_another(client):
    class Unreachable(FakeJob):
        def result(self, timeout: float | None = None) -> FakeJob:
            raise ServiceUnavailable("polling the job failed")

    client.jobs[TICKS_JOB_A0] = Unreachable(TICKS_JOB_A0, TICKS, rows=20)

    with pytest.raises(ServiceUnavailable):
        _warehouse(client).load_batch(LOAD, STAGED)
    assert list(client.jobs) == [TICKS_JOB_A0]


def test_job_id_taken_by_something_else_is_not_mistaken_for_the_load(client):
    client.jobs[TICKS_JOB_A0] = FakeJob(TICKS_JOB_A0, f"{PROJECT}.other.market_ticks", rows=20)
    with pytest.raises(WarehouseError, match="not a load into my-project.cryptopipe_dev.market_ticks"):
        _warehouse(client).load_batch(LOAD, STAGED)


def test_batch_without_rows_starts_no_job(client):
    result = _warehouse(client).load_batch(LOAD, StagedFiles(ticks=(), quarantine=()))
    assert client.inserts == []
    assert (result.ticks, result.quarantined, result.already_loaded, result.newest_event_time) == (0, 0, False, None)


def test_load_job_ids_are_deterministic_distinct_and_in_bigquerys_alphabet():
    assert load_job_id(TICKS, LOAD) == TICKS_JOB_A0
    others = {
        load_job_id(QUARANTINE, LOAD),
        load_job_id(f"{PROJECT}.cryptopipe_prod.market_ticks", LOAD),  # a checkpoint reused elsewhere
        load_job_id(TICKS, LoadId("another-query", 7)),
        load_job_id(TICKS, LoadId(LOAD.query_id, 8)),
        load_job_id(TICKS, LOAD, attempt=1),
    }
    assert TICKS_JOB_A0 not in others and len(others) == 5
    odd = load_job_id("p.d." + "tâble with spaces/" * 100, LoadId("q", 1))
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,1024}", odd) and len(odd) < 300
    assert odd != load_job_id("p.d." + "tâble with spaces/" * 99, LoadId("q", 1)), "the digest tells cut names apart"


def test_close_closes_only_a_client_it_built(client):
    _warehouse(client).close()
    assert not client.closed


def test_load_before_setup_is_refused(client):
    with pytest.raises(WarehouseError, match="before setup"):
        BigQueryWarehouse(PROJECT, DATASET, client=client).load_batch(LOAD, STAGED)


@pytest.mark.parametrize(
    ("table", "change", "message"),
    [
        (TICKS, None, "market_ticks does not exist: the CDKTF app creates it"),
        (TICKS, {"timePartitioning": {"type": "DAY", "field": "ingested_at"}}, "partitioning is DAY on ingested_at"),
        (TICKS, {"timePartitioning": None}, "partitioning is none, expected DAY on last_updated"),
        (TICKS, {"clustering": None}, "clustering is None, expected ['coin_id']"),
        (QUARANTINE, {"clustering": {"fields": ["reason"]}}, "clustering is ['reason'], expected None"),
        (
            TICKS,
            {"schema": {"fields": [{"name": "coin_id", "type": "STRING", "mode": "NULLABLE"}]}},
            "column coin_id is STRING NULLABLE, expected STRING REQUIRED",
        ),
        (TICKS, {"schema": {"fields": [{"name": "extra", "type": "STRING"}]}}, "column price is missing"),
        (QUARANTINE, {"schema": {"fields": [{"name": "extra", "type": "STRING"}]}}, "column extra is not loaded"),
    ],
)
def test_setup_refuses_tables_unlike_what_the_job_loads(client, table, change, message):
    if change is None:
        del client.tables[table]
    else:
        client.tables[table] = table_resource(table, **change)
    with pytest.raises(WarehouseError, match=re.escape(message)):
        _warehouse(client)


def test_warehouse_uri_names_project_and_dataset():
    warehouse = warehouse_from_uri("bigquery://my-project.cryptopipe_dev")
    assert isinstance(warehouse, BigQueryWarehouse)
    assert (warehouse.project, warehouse.dataset) == (PROJECT, DATASET)


@pytest.mark.parametrize(
    "uri",
    ["bigquery://cryptopipe_dev", "bigquery://my-project.", "bigquery://My_Project.ds", "bigquery://p-123.ds/x"],
)
def test_bad_bigquery_uri_is_refused_by_value(uri):
    with pytest.raises(ConfigError, match="expected bigquery://project.dataset") as error:
        warehouse_from_uri(uri)
    assert repr(uri) in str(error.value)


def test_bigquery_load_jobs_require_gcs_staging():
    warehouse = warehouse_from_uri("bigquery://my-project.cryptopipe_dev", bigquery_write="load-jobs")
    warehouse.check_staging(Location.parse("gs://bucket/staging", option="--staging"))
    with pytest.raises(ConfigError, match="from Cloud Storage only, got 'file:///data/staging'"):
        warehouse.check_staging(Location.parse("/data/staging", option="--staging"))


class FakeHttp:
    """A requests.Session stand-in for a real bigquery.Client: BigQuery's REST API, in memory."""

    is_mtls = False

    def __init__(self, jobs: dict[str, dict[str, Any]]) -> None:
        self.jobs = jobs
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []

    def request(self, method: str, url: str, data: Any = None, headers: Any = None, **_: Any) -> requests.Response:
        parts = urlsplit(url)
        body = json.loads(data) if data else None
        self.requests.append((method, parts.path, parse_qs(parts.query), body))
        path = parts.path.removeprefix("/bigquery/v2")
        if method == "GET" and (table := re.fullmatch(r"/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)", path)):
            return self._answer(200, table_resource(".".join(table.groups())), method, url)
        if method == "POST" and path == f"/projects/{PROJECT}/jobs":
            job_id = body["jobReference"]["jobId"]
            if job_id in self.jobs:
                error = {"code": 409, "message": f"Already Exists: Job {PROJECT}:{LOCATION}.{job_id}"}
                return self._answer(409, {"error": error}, method, url)
            raise AssertionError(f"unexpected new job {job_id}")
        if method == "GET" and (job := re.fullmatch(rf"/projects/{PROJECT}/jobs/([^/]+)", path)):
            return self._answer(200, self.jobs[job.group(1)], method, url)
        raise AssertionError(f"unexpected request {method} {url}")

    @staticmethod
    def _answer(status: int, payload: dict[str, Any], method: str, url: str) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(payload).encode()
        response.headers["Content-Type"] = "application/json"
        response.request = requests.Request(method, url).prepare()
        return response


def _done_job(job_id: str, destination: str, rows: int) -> dict[str, Any]:
    project, dataset, table = destination.split(".")
    return {
        "jobReference": {"projectId": project, "jobId": job_id, "location": LOCATION},
        "configuration": {
            "jobType": "LOAD",
            "load": {"destinationTable": {"projectId": project, "datasetId": dataset, "tableId": table}},
        },
        "status": {"state": "DONE"},
        "statistics": {"load": {"outputRows": str(rows)}},
    }


def test_real_client_meets_the_409_of_a_loaded_batch_and_loads_nothing(monkeypatch):
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # never probe the metadata server
    quarantine_job = load_job_id(QUARANTINE, LOAD)
    http = FakeHttp(
        {TICKS_JOB_A0: _done_job(TICKS_JOB_A0, TICKS, 20), quarantine_job: _done_job(quarantine_job, QUARANTINE, 1)}
    )
    client = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(), _http=http)

    result = _warehouse(client).load_batch(LOAD, STAGED)

    assert (result.ticks, result.quarantined, result.already_loaded) == (20, 1, True)
    inserts = [body for method, path, _, body in http.requests if method == "POST"]
    assert [body["jobReference"] for body in inserts] == [
        {"jobId": TICKS_JOB_A0, "projectId": PROJECT, "location": LOCATION},
        {"jobId": quarantine_job, "projectId": PROJECT, "location": LOCATION},
    ]
    assert inserts[0]["configuration"] == {
        "load": {
            **TICKS_CONFIG["load"],
            "sourceUris": list(STAGED.ticks),
            "destinationTable": {"projectId": PROJECT, "datasetId": DATASET, "tableId": "market_ticks"},
        }
    }
    gets = [
        (path.rsplit("/", 1)[-1], query["location"]) for method, path, query, _ in http.requests if "/jobs/" in path
    ]
    assert gets == [(TICKS_JOB_A0, [LOCATION]), (quarantine_job, [LOCATION])]
