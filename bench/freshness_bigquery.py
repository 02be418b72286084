"""Freshness on the BigQuery Storage Write path: poll response to rows queryable in BigQuery.

The local pipeline (:class:`cryptopipe.pipeline.LocalPipeline`: the bundled replay, the
producer thread, the Spark stream) with its warehouse swapped for BigQuery's Storage Write
path (``--bigquery-write storage-write``) against bqemulator on loopback
(scripts/bigquery_emulator.py), at a 1 s trigger (the path's floor is 0.72 s). A watcher
queries the emulator's REST API every 0.5 s, as a dashboard on BigQuery would, for the poll
ids present; a poll's freshness is the moment its id was first seen minus its rows'
earliest ``ingested_at`` (an upper bound: the watcher's period and its query are included).

The figure is the path's own cost here (stage, read back, append, finalize, record,
commit) on the emulator; on Google Cloud the 10 s trigger and the network add to it
(docs/STREAM.md, "Storage Write API"). Fails unless every landed row of the loaded
polls is in the table once.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from typing import Any

from bench.common import REPO, WORK, BenchFailure, LoadSampler, write_result
from bench.freshness import _landed_keys, _stats, watch_polls

PROJECT, DATASET = "bench-project", "freshness"
TRIGGER_SECONDS = 1.0


def _emulator_module() -> Any:
    spec = importlib.util.spec_from_file_location("bigquery_emulator", REPO / "scripts" / "bigquery_emulator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(minutes: float = 3.0) -> dict[str, Any]:
    from core.bigquery_quotas import DEFAULT_TRIGGER_SECONDS, MIN_TRIGGER_SECONDS
    from core.layout import LocalLayout
    from cryptopipe.pipeline import LocalPipeline
    from cryptopipe.settings import producer_config
    from jobs import StreamConfig

    started_mono = time.monotonic()
    root = WORK / "freshness-bigquery"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    layout = LocalLayout(root)
    with LoadSampler() as load, _emulator_module().Emulator(log=WORK / "freshness-bigquery-emulator.log") as emulator:
        emulator.create_tables(PROJECT, DATASET)
        os.environ.update(emulator.environment)
        client = emulator.client(PROJECT)
        table = f"`{PROJECT}.{DATASET}.market_ticks`"
        places = StreamConfig.locations(**{name: getattr(layout, name)
                                           for name in ("landing", "archive", "checkpoint", "staging")})
        stream = StreamConfig(**places, warehouse=f"bigquery://{PROJECT}.{DATASET}", bigquery_write="storage-write",
                              trigger_seconds=TRIGGER_SECONDS)
        pipeline = LocalPipeline(layout, producer_config(layout, "replay"), stream, replay_port=0)
        with pipeline:
            seen, first_rows_after = watch_polls(
                lambda: [poll_id for (poll_id,) in client.query(f"SELECT DISTINCT poll_id FROM {table}").result()],
                minutes, "the pipeline", check=pipeline.check_stream,
            )
        polls = list(client.query(
            f"SELECT poll_id, MIN(ingested_at), COUNT(*), COUNT(DISTINCT _load_id) FROM {table} GROUP BY poll_id"
        ).result())
        (dupes,) = next(iter(client.query(
            f"SELECT COUNT(*) - COUNT(DISTINCT CONCAT(coin_id, vs_currency, CAST(last_updated AS STRING))) FROM {table}"
        ).result()))
        client.close()
    landed_keys = _landed_keys(root)
    first_poll = min(polls, key=lambda p: p[1])[0] if polls else None
    observed = [(seen[p[0]] - p[1]).total_seconds() for p in polls if p[0] != first_poll and p[0] in seen]
    problems = []
    if dupes:
        problems.append(f"{dupes} duplicate ticks in BigQuery")
    if any(p[3] != 1 for p in polls):
        problems.append("a poll's rows were split over loads")
    loaded = {p[0] for p in polls}
    expected = len({key for poll_id, keys in landed_keys.items() if poll_id in loaded for key in keys})
    rows = sum(p[2] for p in polls)
    if rows != expected:
        problems.append(f"BigQuery holds {rows} ticks; the polls it loaded landed {expected} distinct ticks")
    if len(observed) < minutes * 60 / 10 * 0.8:
        problems.append(f"only {len(observed)} polls measured in {minutes} minutes")
    result = {
        "minutes": minutes,
        "trigger_seconds": TRIGGER_SECONDS,
        "poll_interval_seconds": 10.0,
        "first_rows_queryable_seconds": round(first_rows_after, 1),
        "observed_seconds": _stats(observed),
        "polls_measured": len(observed),
        "rows_in_warehouse": rows,
        "distinct_ticks_of_loaded_polls": expected,
        "duplicate_ticks": dupes,
        "cloud_trigger_seconds": DEFAULT_TRIGGER_SECONDS["storage-write"],
        "cloud_min_trigger_seconds": MIN_TRIGGER_SECONDS["storage-write"],
        "load_jobs_trigger_seconds": DEFAULT_TRIGGER_SECONDS["load-jobs"],
        "problems": problems,
    }
    document = write_result("freshness_bigquery", result, load, started_mono)
    shutil.rmtree(root, ignore_errors=True)
    if problems:
        raise BenchFailure("; ".join(problems))
    return document
