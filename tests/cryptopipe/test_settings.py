"""The local runner's settings: the producer's and the stream's own, built for the layout (no Spark needed)."""

from __future__ import annotations

import pytest

from core.layout import LocalLayout
from cryptopipe.errors import PipelineError
from cryptopipe.settings import (
    REPLAY_INTERVAL_SECONDS,
    REPLAY_REQUESTS_PER_MINUTE,
    default_trigger_seconds,
    producer_config,
    stream_config,
)
from producer import ProducerConfig
from jobs.loaders.duckdb import DuckDBWarehouse
from producer.config import InvalidSetting


def test_producer_config_points_at_the_layout_with_the_sources_pace(tmp_path):
    layout = LocalLayout(tmp_path)
    replay, live = producer_config(layout, "replay"), producer_config(layout, "live")
    assert (replay.landing_uri, replay.spool_dir) == (str(layout.landing), str(layout.spool))
    assert (replay.interval_seconds, replay.requests_per_minute) == (REPLAY_INTERVAL_SECONDS, REPLAY_REQUESTS_PER_MINUTE)
    # The live API keeps the producer's own pace: its defaults, not a copy of them.
    assert (live.interval_seconds, live.requests_per_minute) == (
        ProducerConfig.model_fields["interval_seconds"].default, ProducerConfig.model_fields["requests_per_minute"].default)
    assert live.interval_seconds != REPLAY_INTERVAL_SECONDS


def test_producer_config_takes_options_over_variables_over_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYPTOPIPE__PRODUCER__TOP_N", "100")
    layout = LocalLayout(tmp_path)
    assert producer_config(layout, "replay").top_n == 100
    config = producer_config(layout, "replay", top_n=20, coin_ids="bitcoin, ethereum", interval_seconds=2)
    assert (config.top_n, config.coin_ids, config.interval_seconds) == (20, ("bitcoin", "ethereum"), 2)
    with pytest.raises(InvalidSetting) as refused:
        producer_config(layout, "replay", vs_currencies="USD")
    assert refused.value.field == "vs_currencies"
    with pytest.raises(PipelineError, match="source 'file' is not one of live, replay"):
        producer_config(layout, "file")


def test_stream_config_points_at_the_layout_and_builds_its_warehouse(tmp_path):
    layout = LocalLayout(tmp_path)
    config = stream_config(layout, trigger_seconds=2.0)
    assert [place.local_path for place in (config.landing, config.archive, config.checkpoint, config.staging)] == [
        layout.landing.resolve(), layout.archive.resolve(), layout.checkpoint.resolve(), layout.staging.resolve(),
    ]
    assert isinstance(config.target, DuckDBWarehouse) and config.target.path == layout.warehouse.resolve()
    assert config.trigger == {"processingTime": "2000 milliseconds"}
    # Without a trigger, the local warehouse's own default holds.
    assert stream_config(layout, trigger_seconds=None).trigger_seconds == default_trigger_seconds() == 1.0
