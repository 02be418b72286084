"""The job's command line: resolved values, and bad values refused by name (no Spark needed)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dataclasses import fields, replace

from core.joboptions import option
from jobs.config import StreamConfig, build_parser, parse_args
from jobs.loaders.duckdb import DuckDBWarehouse
from jobs.locations import Location

BASE = {
    "--landing": "data/landing",
    "--archive": "data/archive",
    "--checkpoint": "data/checkpoint",
    "--staging": "data/staging",
    "--warehouse": "duckdb:///tmp/warehouse.duckdb",
}


def _argv(**overrides: str | None) -> list[str]:
    options = {**BASE, **{f"--{k.replace('_', '-')}": v for k, v in overrides.items()}}
    return [part for option, value in options.items() if value is not None for part in (option, value)]


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_parse_args_resolves_local_paths_to_absolute_file_uris(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    config = parse_args(_argv())
    assert config.landing.uri == f"file://{tmp_path}/data/landing"
    assert config.archive.local_path == tmp_path / "data" / "archive"
    assert config.warehouse == "duckdb:///tmp/warehouse.duckdb"


def test_parse_args_defaults_are_bounded_and_hours_sized():
    config = parse_args(_argv())
    assert config.trigger == {"processingTime": "1000 milliseconds"}
    assert config.max_files_per_trigger == 200
    assert config.watermark_delay == timedelta(hours=6)
    assert config.shuffle_partitions == 4


def test_parse_args_takes_every_option():
    config = parse_args(
        _argv(
            landing="gs://my-bucket/landing/",
            archive="gs://my-bucket/archive",
            checkpoint="file:///ckpt/stream",
            staging="/staging",
            max_files_per_trigger="30",
            watermark="12 hours",
            shuffle_partitions="2",
            trigger_seconds="30",
        )
    )
    assert (config.landing.uri, config.archive.uri) == ("gs://my-bucket/landing", "gs://my-bucket/archive")
    assert config.checkpoint == Location("file", "", "/ckpt/stream")
    assert config.trigger == {"processingTime": "30000 milliseconds"}
    assert (config.max_files_per_trigger, config.watermark, config.shuffle_partitions) == (30, "12 hours", 2)


def test_parse_args_available_now_replaces_the_trigger():
    assert parse_args([*_argv(), "--available-now"]).trigger == {"availableNow": True}


def test_parse_args_refuses_trigger_seconds_with_available_now(capsys):
    assert "not allowed with argument" in _refused([*_argv(trigger_seconds="5"), "--available-now"], capsys)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("landing", "s3://bucket/landing", "unsupported scheme 's3'"),
        ("landing", "http://example.com/landing", "unsupported scheme 'http'"),
        ("archive", "gs://Bad_Bucket!/archive", "does not name a valid bucket"),
        ("checkpoint", "file:relative/ckpt", "not an absolute file URI"),
        ("staging", "gs://bucket/a/../b", "contains '..'"),
        ("landing", " ", "is empty"),
        ("warehouse", "bigquery://dataset", "not a BigQuery dataset URI"),
        ("warehouse", "duckdb://warehouse.duckdb", "absolute file path"),
        ("warehouse", "/tmp/warehouse.duckdb", "not a warehouse URI"),
        ("watermark", "6 parsecs", "not a duration"),
        ("watermark", "30 minutes", "must be longer than"),
        ("trigger_seconds", "0", "must be more than 0"),
        ("max_files_per_trigger", "0", "must be at least 1"),
        ("shuffle_partitions", "0", "must be at least 1"),
    ],
)
def test_parse_args_refuses_bad_value_naming_option_and_value(option, value, message, capsys):
    error = _refused(_argv(**{option: value}), capsys)
    assert message in error
    assert f"--{option.replace('_', '-')}" in error
    assert value.strip() in error


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("archive", "data/landing/archive"),
        ("archive", "data"),
        ("checkpoint", "data/landing"),
        ("staging", "data/landing/x"),
    ],
)
def test_parse_args_refuses_folders_overlapping_the_landing_root(option, value, capsys):
    error = _refused(_argv(**{option: value}), capsys)
    assert f"--{option}" in error and "overlaps --landing" in error


def test_parse_args_refuses_remote_staging_for_duckdb(capsys):
    assert "local disk" in _refused(_argv(staging="gs://bucket/staging"), capsys)


BIGQUERY = {"warehouse": "bigquery://my-project.cryptopipe_dev", "staging": "gs://bucket/staging",
            "bigquery_write": "load-jobs"}
STORAGE_WRITE = {**BIGQUERY, "bigquery_write": "storage-write"}


def test_parse_args_bigquery_writes_with_the_storage_write_api_by_default_every_10_seconds():
    config = parse_args(_argv(warehouse=BIGQUERY["warehouse"], staging=BIGQUERY["staging"],
                              checkpoint="gs://bucket/checkpoints/market_ticks"))
    assert type(config.target).__name__ == "StorageWriteWarehouse"
    assert config.trigger == {"processingTime": "10000 milliseconds"}
    # Two CreateWriteStream calls a batch against 10,000 a project and region an hour.
    assert 3600 / config.trigger_seconds * 2 <= 10_000
    # beside the checkpoint, which no lifecycle rule ages out (docs/STREAM.md)
    assert config.target.records.uri == "gs://bucket/checkpoints/market_ticks/_write_streams"


def test_parse_args_refuses_a_storage_write_trigger_under_its_stream_quota(capsys):
    error = _refused(_argv(**STORAGE_WRITE, trigger_seconds="0.5"), capsys)
    assert "--trigger-seconds: 0.5 is shorter than 0.72 s" in error
    assert parse_args(_argv(**STORAGE_WRITE, trigger_seconds="0.72")).trigger_seconds == 0.72


def test_parse_args_refuses_an_unknown_write_path(capsys):
    assert "invalid choice: 'streaming-inserts'" in _refused(_argv(**{**STORAGE_WRITE,
                                                                      "bigquery_write": "streaming-inserts"}), capsys)


def test_parse_args_bigquery_defaults_to_a_trigger_within_the_load_job_quota():
    # 1,500 load jobs per table a day, two per batch: a batch every 115.2 s at most.
    config = parse_args(_argv(**BIGQUERY))
    assert config.trigger == {"processingTime": "120000 milliseconds"}
    assert config.trigger_seconds == 120
    assert 24 * 3600 / config.trigger_seconds * 2 <= 1500


def test_parse_args_refuses_a_bigquery_trigger_that_would_exhaust_the_quota(capsys):
    error = _refused(_argv(**BIGQUERY, trigger_seconds="30"), capsys)
    assert "--trigger-seconds: 30.0 is shorter than 115.2 s" in error and "use 120 or more" in error


def test_parse_args_takes_any_trigger_at_or_above_the_bigquery_minimum_and_available_now():
    assert parse_args(_argv(**BIGQUERY, trigger_seconds="115.2")).trigger_seconds == 115.2
    assert parse_args([*_argv(**BIGQUERY), "--available-now"]).trigger == {"availableNow": True}


def test_parse_args_refuses_local_staging_for_bigquery(capsys):
    assert "from Cloud Storage only" in _refused(_argv(**{**BIGQUERY, "staging": "data/staging"}), capsys)


def test_parse_args_requires_every_location(capsys):
    assert "--warehouse" in _refused(_argv(warehouse=None), capsys)


def test_stream_config_takes_locations_not_strings():
    with pytest.raises(ValueError, match="expected a Location"):
        StreamConfig(*[Path(p) for p in ("l", "a", "c", "s")], warehouse="duckdb:///w.duckdb")  # type: ignore[arg-type]


def test_location_overlap_is_by_path_components():
    landing = Location.parse("/data/landing", option="--landing")
    assert not Location.parse("/data/landing-archive", option="--archive").overlaps(landing)
    assert Location.parse("/data/landing/", option="--archive").overlaps(landing)
    assert not Location.parse("gs://bkt/data/landing", option="--archive").overlaps(landing)


def test_every_option_is_named_once_by_its_field():
    declared = {action.option_strings[0] for action in build_parser()._actions if action.dest != "help"}
    assert declared == {option(spec.name) for spec in fields(StreamConfig) if spec.init}
    assert option("max_files_per_trigger") == "--max-files-per-trigger"


def test_the_config_builds_the_warehouse_it_names_once_for_the_stream_to_load_into():
    config = parse_args(_argv())
    assert isinstance(config.target, DuckDBWarehouse) and config.target.path == Path("/tmp/warehouse.duckdb")
    assert "target" not in repr(config)
    assert replace(config, watermark="7 hours").target is not config.target  # a new config, its own warehouse


def test_stream_config_parses_locations_naming_their_options():
    places = StreamConfig.locations(landing="data/landing", archive="gs://bucket/archive")
    assert places["archive"] == Location("gs", "bucket", "/archive")
    with pytest.raises(ValueError, match="--checkpoint.*s3"):
        StreamConfig.locations(checkpoint="s3://bucket/checkpoint")
