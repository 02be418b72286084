"""Landing-zone growth: per-trigger overhead with 1k ... 100k files already landed.

For each size N and each design, in one Spark session:

1. N one-row poll files (named as the producer names them, one a minute: 100k files
   span 69 days of ``dt=/hour=`` folders) are hard-linked from a pool generated once
   into a fresh landing folder.
2. Prime: the design's file source takes N-1 files in one ``availableNow`` batch and
   the last in a second, rows filtered out, so the checkpoint records them as
   processed (as after N polls of normal running) without paying to read them.
3. Measure: the same source on a 1 s processing-time trigger while a feeder lands
   one 250-row poll a second; the first triggers (ours: Spark archives the N primed
   files there) are warm-up; the next ``triggers`` are measured.

The query is the design's file source into a ``foreachBatch`` that counts the rows,
so what grows with N is the source's own cost: listing (``latestOffset``), its
checkpoint log, and (ours) archiving. Ours: ``cleanSource=archive`` into an archive
folder outside the input path, 50 files per trigger, the job's session settings.
Seed: no cleanup, 1 file per trigger, Spark's default discovery threshold (32).

Fails unless each measured trigger read exactly one 250-row file, no primed row was
read again, and (ours) the primed files left the landing folder.
"""

from __future__ import annotations

import os
import shutil
import statistics
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.common import WORK, BenchFailure, LoadSampler, bench_session, percentile, quiet_spark_logs, write_result
from bench.data import PollWriter, write_polls

POOL_MARK = ".complete"
ROWS_PER_POLL = 250
WARMUP_TRIGGERS = 2


def growth_pool(size: int) -> tuple[Path, list[Path]]:
    pool = WORK / f"growth-pool-{size}"
    if not (pool / POOL_MARK).exists():
        shutil.rmtree(pool, ignore_errors=True)
        started = time.monotonic()
        step = timedelta(minutes=1)
        write_polls(pool, size, 1, start=datetime.now(timezone.utc) - size * step - timedelta(hours=1), step=step)
        (pool / POOL_MARK).write_text("")
        print(f"generated {size} landed files in {time.monotonic() - started:.1f} s", flush=True)
    return pool, sorted(pool.rglob("*.ndjson"))


def _source(session, design: str, landing: Path, archive: Path, max_files: int):  # noqa: ANN001, ANN202
    from pyspark.sql import functions as F

    reader = (
        session.readStream.format("text")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "*.ndjson")
        .option("maxFilesPerTrigger", max_files)
    )
    if design == "ours":
        reader = reader.option("cleanSource", "archive").option("sourceArchiveDir", str(archive))
    return reader.load(str(landing)).select("value", F.col("_metadata.file_path").alias("_source_file"))


def measure(spark, design: str, n: int, pool: Path, pool_paths: list[Path], triggers: int) -> dict[str, Any]:  # noqa: ANN001
    from pyspark.sql import functions as F

    from bench.seed import SEED_MAX_FILES_PER_TRIGGER, seed_session
    from jobs import SESSION_CONF, StreamConfig

    root = WORK / f"growth-{design}-{n}"
    shutil.rmtree(root, ignore_errors=True)
    landing, archive, checkpoint = root / "landing", root / "archive", root / "checkpoint"
    started = time.monotonic()
    for path in pool_paths[:n]:
        target = landing / path.relative_to(pool)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    link_seconds = time.monotonic() - started
    if design == "ours":
        session = spark.newSession()
        for key, value in SESSION_CONF.items():
            session.conf.set(key, value)
        max_files = StreamConfig.__dataclass_fields__["max_files_per_trigger"].default
    else:
        session = seed_session(spark)
        max_files = SEED_MAX_FILES_PER_TRIGGER

    # Prime: N-1 files in one batch, then the last one in a second, rows filtered out
    # (never read). The one-file last batch matters: on restart Spark rebuilds the last
    # batch's file index from its file list, which for N files would be a listing job
    # of N tasks. The priming session lists those file lists serially (high threshold).
    t0 = time.monotonic()
    priming = session.newSession()
    priming.conf.set("spark.sql.sources.parallelPartitionDiscovery.threshold", str(10**9))
    prime = (
        _source(priming, design, landing, archive, max(n - 1, 1))
        .where(F.lit(False))
        .writeStream.format("noop")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    prime.awaitTermination()
    prime_seconds = time.monotonic() - t0

    counts: dict[int, int] = {}

    def count_rows(batch, batch_id: int) -> None:  # noqa: ANN001
        counts[batch_id] = batch.count()

    writer = PollWriter(ROWS_PER_POLL)
    stop = threading.Event()

    def feed() -> None:
        while not stop.wait(1.0):
            writer.write(landing, datetime.now(timezone.utc))

    feeder = threading.Thread(target=feed, daemon=True)
    query = (
        _source(session, design, landing, archive, max_files)
        .writeStream.foreachBatch(count_rows)
        .option("checkpointLocation", str(checkpoint))
        .trigger(processingTime="1 second")
        .start()
    )
    feeder.start()
    wanted = WARMUP_TRIGGERS + triggers
    deadline = time.monotonic() + 120 + wanted * 20
    progresses: dict[int, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for p in query.recentProgress:
            if p["numInputRows"] > 0:
                progresses[p["batchId"]] = p
        if len([b for b in progresses if b > 0]) >= wanted:
            break
        time.sleep(0.5)
    stop.set()
    feeder.join()
    query.stop()
    batches = sorted(b for b in progresses if b > 0)[WARMUP_TRIGGERS:wanted]
    if len(batches) < triggers:
        raise BenchFailure(f"growth {design} {n}: only {len(batches)} triggers measured in time")
    measured = [progresses[b] for b in batches]
    trigger_ms = [p["durationMs"]["triggerExecution"] for p in measured]
    listing_ms = [p["durationMs"].get("latestOffset", 0) for p in measured]
    rows = [p["numInputRows"] for p in measured]
    left_in_landing = sum(1 for _ in landing.rglob("*.ndjson")) if design == "ours" else None
    problems = []
    if any(r % ROWS_PER_POLL for r in rows):
        problems.append(f"a trigger read {rows} rows, not whole {ROWS_PER_POLL}-row polls (a primed file re-read?)")
    if design == "ours" and left_in_landing > 20:
        problems.append(f"{left_in_landing} files still in the landing folder: archiving did not happen")
    if design == "seed" and sum(1 for _ in landing.rglob("*.ndjson")) < n:
        problems.append("the seed's landing folder lost files")
    shutil.rmtree(root, ignore_errors=True)
    result = {
        "design": design,
        "landed_files": n,
        "link_seconds": round(link_seconds, 1),
        "prime_seconds": round(prime_seconds, 1),
        "triggers_measured": len(measured),
        "trigger_ms_median": statistics.median(trigger_ms),
        "trigger_ms_p95": round(percentile(trigger_ms, 0.95)),
        "trigger_ms_mean": round(statistics.fmean(trigger_ms)),
        "listing_ms_median": statistics.median(listing_ms),
        "listing_ms_mean": round(statistics.fmean(listing_ms)),
        "listing_ms_max": max(listing_ms),
        "rows_per_trigger": sorted(set(rows)),
        "files_left_in_landing": left_in_landing,
        "problems": problems,
    }
    print(f"  growth {design} {n}: {result}", flush=True)
    return result


def main(sizes: list[int], triggers: int = 10, keep_pool: bool = False) -> dict[str, Any]:
    started = time.monotonic()
    quiet_spark_logs()
    pool, pool_paths = growth_pool(max(sizes))
    results = []
    with LoadSampler() as load:
        spark = bench_session("bench-growth", WORK / "growth-tmp")
        try:
            for design in ("ours", "seed"):
                for n in sizes:
                    run_load = LoadSampler()
                    with run_load:
                        result = measure(spark, design, n, pool, pool_paths, triggers)
                    result["load"] = run_load.summary()
                    results.append(result)
        finally:
            spark.stop()
    if not keep_pool:
        shutil.rmtree(pool, ignore_errors=True)
    ratios = {}
    for design in ("ours", "seed"):
        mine = {r["landed_files"]: r for r in results if r["design"] == design}
        small, large = mine[min(sizes)], mine[max(sizes)]
        ratios[design] = {
            # The mean is the headline: with maxFilesPerTrigger, Spark 3.5 caches the files
            # a listing found beyond the limit and skips listing until they are used up,
            # so a median can miss the (periodic) full listings.
            "trigger_ratio": round(large["trigger_ms_mean"] / small["trigger_ms_mean"], 2),
            "trigger_median_ratio": round(large["trigger_ms_median"] / small["trigger_ms_median"], 2),
            "listing_ratio": round(large["listing_ms_median"] / max(small["listing_ms_median"], 1), 2),
        }
    summary = {
        "sizes": sizes,
        "runs": results,
        "ratios": ratios,
        "target_ratio_ours": 1.5,
        "target_met": ratios["ours"]["trigger_ratio"] <= 1.5,
    }
    problems = [p for r in results for p in r["problems"]]
    summary["checks_passed"] = not problems
    document = write_result("growth", summary, load, started)
    if problems:
        raise BenchFailure("; ".join(problems))
    return document
