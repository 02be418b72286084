"""The one reader of cryptopipe's addresses: each form, and refusals that name the option, the value and the forms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.uris import (
    BigQueryDataset, DuckDBFile, GcsPath, LocalPath, UriError, file_uri, parse_location, parse_warehouse,
)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("data/landing", LocalPath("data/landing")),
        (Path("/data/landing"), LocalPath("/data/landing")),
        ("file:///data//landing/", LocalPath("/data/landing")),
        ("file://localhost/data", LocalPath("/data")),
        ("gs://bucket", GcsPath("bucket", "/")),
        ("gs://bucket/landing/", GcsPath("bucket", "/landing")),
    ],
)
def test_a_location_is_a_local_path_or_a_bucket_folder(value, parsed):
    assert parse_location(value, option="--landing") == parsed


def test_a_bucket_folder_gives_its_object_prefix():
    assert parse_location("gs://bucket//a/b/", option="--landing").prefix == "a/b"
    assert parse_location("gs://bucket/", option="--landing").prefix == ""


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("duckdb:///data/warehouse.duckdb", DuckDBFile("/data/warehouse.duckdb")),
        ("bigquery://my-project.cryptopipe_dev", BigQueryDataset("my-project", "cryptopipe_dev")),
        ("bigquery://example.com:my-project.ds", BigQueryDataset("example.com:my-project", "ds")),
    ],
)
def test_a_warehouse_is_a_duckdb_file_or_a_bigquery_dataset(value, parsed):
    assert parse_warehouse(value) == parsed


LOCATIONS = "a local path, file:///absolute/path or gs://bucket/path"
WAREHOUSES = "duckdb:///absolute/path/warehouse.duckdb or bigquery://project.dataset"
REFUSALS = {
    # value: (what it was parsed as, the problem, the forms expected)
    "  ": (parse_location, "is empty", LOCATIONS),
    "s3://bucket/x": (parse_location, "is not a location (unsupported scheme 's3')", LOCATIONS),
    "file:relative": (parse_location, "is not an absolute file URI", "a local path, file:///absolute/path"),
    "file://host/x": (parse_location, "is not an absolute file URI", "a local path, file:///absolute/path"),
    "gs://Bad_Bucket!/x": (parse_location, "does not name a valid bucket", "gs://bucket/path"),
    "gs://bucket/a/../b": (parse_location, "contains '..'", "gs://bucket/path"),
    "gs://bucket/x?generation=1": (parse_location, "has a query or fragment", "gs://bucket/path"),
    "/tmp/w.duckdb": (parse_warehouse, "is not a warehouse URI (it has no scheme)", WAREHOUSES),
    "gs://bucket/w": (parse_warehouse, "is not a warehouse URI (unsupported scheme 'gs')", WAREHOUSES),
    "duckdb://w.duckdb": (parse_warehouse, "does not name an absolute file path (note the three slashes)",
                          "duckdb:///absolute/path/warehouse.duckdb"),
    "duckdb:///data/": (parse_warehouse, "does not name an absolute file path (note the three slashes)",
                        "duckdb:///absolute/path/warehouse.duckdb"),
    "duckdb:///w.duckdb#x": (parse_warehouse, "has a query or fragment", "duckdb:///absolute/path/warehouse.duckdb"),
    "bigquery://dataset": (parse_warehouse, "is not a BigQuery dataset URI", "bigquery://project.dataset"),
    "bigquery://project.": (parse_warehouse, "is not a BigQuery dataset URI", "bigquery://project.dataset"),
    "bigquery://p.ds/table": (parse_warehouse, "is not a BigQuery dataset URI", "bigquery://project.dataset"),
}


@pytest.mark.parametrize("value", REFUSALS)
def test_a_bad_address_is_refused_naming_option_value_and_the_forms_expected(value):
    parse, problem, expected = REFUSALS[value]
    with pytest.raises(UriError, match=re.escape(f"--option: {value!r} {problem}; expected {expected}")):
        parse(value, option="--option")


def test_a_refusal_is_the_callers_own_error():
    class ConfigError(Exception):
        pass

    with pytest.raises(ConfigError, match="landing URI: 'gs://' does not name a valid bucket"):
        parse_location("gs://", option="landing URI", error=ConfigError)


@pytest.mark.parametrize(
    ("uri", "scheme", "bucket", "path", "object_path"),
    [
        ("file:/data/staging/part-0.parquet", "file", "", "/data/staging/part-0.parquet", "/data/staging/part-0.parquet"),
        ("file:///data/a%20b.ndjson", "file", "", "/data/a b.ndjson", "/data/a b.ndjson"),
        ("/data/x.parquet", "file", "", "/data/x.parquet", "/data/x.parquet"),
        ("gs://bkt/staging/batch_id=1/p.parquet", "gs", "bkt", "/staging/batch_id=1/p.parquet",
         "bkt/staging/batch_id=1/p.parquet"),
    ],
)
def test_a_file_hadoop_names_reads_the_same_however_it_is_spelled(uri, scheme, bucket, path, object_path):
    file = file_uri(uri)
    assert (file.scheme, file.bucket, file.path, file.object_path) == (scheme, bucket, path, object_path)
