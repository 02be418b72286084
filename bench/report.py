"""Regenerate docs/BENCHMARKS.md from bench/results/*.json (``python -m bench doc``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS

DOC = REPO / "docs" / "BENCHMARKS.md"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _context(doc: dict[str, Any]) -> str:
    m, v, load = doc["machine"], doc["versions"], doc["load"]
    return (
        f"Run {doc['date']} with `{doc['command']}` ({doc['wall_seconds']:.0f} s) on {m['cores']} cores "
        f"({m['cpu_model']}), {m['ram_gib']} GiB RAM; load average (1 min) during the run "
        f"{load['load1_min']}-{load['load1_max']} (mean {load['load1_mean']}). "
        f"Python {v['python']}, pyspark {v['pyspark']}, duckdb {v['duckdb']}, {v['java']}."
    )


def _met(ok: bool | None) -> str:
    return "met" if ok else "**missed**"


def _load_cell(run: dict[str, Any]) -> str:
    load = run.get("load") or {}
    return f"{load.get('load1_mean', '?')} (max {load.get('load1_max', '?')})"


def catchup_section(doc: dict[str, Any] | None) -> list[str]:
    out = ["## Catch-up: draining a backlog", ""]
    if doc is None:
        return [*out, "Not run yet: `.venv/bin/python -m bench catchup`.", ""]
    out += [
        _context(doc),
        "",
        "| configuration | files drained | rows | batches | drain s | s / batch | rows/s | rows/s after 1st batch | session start s | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["runs"]:
        name = "this project" if r["kind"] == "ours" else "seed" + ("" if r["dedup"] else ", no de-duplication")
        out.append(
            f"| {name} | {r['files']:,} | {r['rows_in_warehouse']:,} / {r['rows_expected']:,} | {r['batches']} | "
            f"{r['drain_seconds']} | {r['seconds_per_batch']} | {r['rows_per_second']:,.0f} | "
            f"{(r['steady_rows_per_second'] or 0):,.0f} | {r['session_start_seconds']} | {_load_cell(r)} |"
        )
    out += [
        "",
        f"**Ratio: {doc['ratio']}x** (this project's rows/s over its whole drain vs the faster seed variant's "
        f"rows/s after its first batch); target >= {doc['target_ratio']}x: {_met(doc['target_met'])}. "
        f"Against the seed with de-duplication: {doc.get('ratio_vs_seed_with_dedup') or 'not measured'}"
        f"{'x' if doc.get('ratio_vs_seed_with_dedup') else ''}; without: "
        f"{doc['ratio_vs_seed_without_dedup'] or 'not measured'}x"
        + (
            f" ({doc['steady_ratio_vs_seed_without_dedup']}x with both after their first batch)"
            if doc.get("steady_ratio_vs_seed_without_dedup")
            else ""
        )
        + ". Row counts match: "
        f"{'yes' if doc['counts_match'] else '**NO**'}."
        + (
            " This project's row is from an earlier run of the same command on the same machine "
            "(`--ours-result`), not repeated here."
            if any(r.get("reused_from_earlier_run") for r in doc["runs"])
            else ""
        ),
        "",
    ]
    return out


def growth_section(doc: dict[str, Any] | None) -> list[str]:
    out = ["## Landing-zone growth: per-trigger overhead", ""]
    if doc is None:
        return [*out, "Not run yet: `.venv/bin/python -m bench growth`.", ""]
    out += [
        _context(doc),
        "",
        "| design | files already landed | trigger ms (mean) | median | p95 | listing ms (`latestOffset`, median) | triggers | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["runs"]:
        name = "this project (archived)" if r["design"] == "ours" else "seed (never cleaned)"
        out.append(
            f"| {name} | {r['landed_files']:,} | {r['trigger_ms_mean']} | {r['trigger_ms_median']:.0f} | "
            f"{r['trigger_ms_p95']} | {r['listing_ms_median']:.0f} | {r['triggers_measured']} | {_load_cell(r)} |"
        )
    ours, seed = doc["ratios"]["ours"], doc["ratios"]["seed"]
    big, small = max(doc["sizes"]), min(doc["sizes"])
    out += [
        "",
        f"Ratio of the {big:,}-file figure to the {small:,}-file figure (mean trigger): "
        f"**this project {ours['trigger_ratio']}x** (target <= {doc['target_ratio_ours']}x: "
        f"{_met(doc['target_met'])}), **seed {seed['trigger_ratio']}x**. Median trigger: this project "
        f"{ours.get('trigger_median_ratio', '?')}x, seed {seed.get('trigger_median_ratio', '?')}x; median listing: "
        f"this project {ours['listing_ratio']}x, seed {seed['listing_ratio']}x. Checks passed: "
        f"{'yes' if doc['checks_passed'] else '**NO**'}."
        + (f" ({doc['note']}.)" if doc.get("note") else ""),
        "",
    ]
    return out


def freshness_section(doc: dict[str, Any] | None) -> list[str]:
    out = ["## Freshness: poll response to queryable rows", ""]
    if doc is None:
        return [*out, "Not run yet: `.venv/bin/python -m bench freshness`.", ""]
    o, ledger = doc["observed_seconds"], doc["ledger_seconds"]
    out += [
        _context(doc),
        "",
        "| measure | polls | p50 s | p95 s | max s | target |",
        "|---|---:|---:|---:|---:|---|",
        f"| first seen by a reader (0.5 s watcher) - `ingested_at` | {o['n']} | {o['p50']} | {o['p95']} | {o['max']} | "
        f"p95 < {doc['target_p95_seconds']} s: {_met(doc['target_met'])} |",
        f"| `_loads.loaded_at` - `ingested_at` | {ledger['n']} | {ledger['p50']} | {ledger['p95']} | {ledger['max']} | |\n"
        + "".join(
            f"| {label} | {doc[key]['n']} | {doc[key]['p50']} | {doc[key]['p95']} | {doc[key]['max']} | |\n"
            for key, label in (
                ("producer_seconds", "of which: response to file landed (producer)"),
                ("stream_seconds", "of which: file landed to `loaded_at` (stream)"),
            )
            if key in doc
        )
        + f"| first rows queryable after starting `cryptopipe up` | | | | {doc['first_rows_queryable_seconds']} | "
        f"< {doc['first_rows_target_seconds']} s: {_met(doc['first_rows_queryable_seconds'] < doc['first_rows_target_seconds'])} |",
        "",
        f"{doc['minutes']} minutes after the first rows, trigger {doc['trigger_seconds']} s, a replay poll every "
        f"{doc['poll_interval_seconds']:.0f} s. Warehouse: {doc['rows_in_warehouse']:,} ticks = the distinct ticks "
        f"of the polls it loaded ({doc['distinct_ticks_of_loaded_polls']:,}; {doc['rows_landed']:,} lines landed, "
        f"the rest repeats the stream de-duplicated), {doc['duplicate_ticks']} duplicates.",
        "",
    ]
    return out


def freshness_bigquery_section(doc: dict[str, Any] | None) -> list[str]:
    out = ["## Freshness on BigQuery's Storage Write path (bqemulator)", ""]
    if doc is None:
        return [*out, "Not run yet: `.venv/bin/python -m bench freshness-bigquery`.", ""]
    o = doc["observed_seconds"]
    cloud, floor, load_jobs = doc["cloud_trigger_seconds"], doc["cloud_min_trigger_seconds"], doc["load_jobs_trigger_seconds"]
    out += [
        _context(doc),
        "",
        "| measure | polls | p50 s | p95 s | max s |",
        "|---|---:|---:|---:|---:|",
        f"| first seen by a reader of BigQuery (0.5 s watcher) - `ingested_at` | {o['n']} | {o['p50']} | {o['p95']} "
        f"| {o['max']} |",
        f"| first rows queryable after starting the pipeline | | | | {doc['first_rows_queryable_seconds']} |",
        "",
        f"The local pipeline (replay, producer, Spark) writing through `--bigquery-write storage-write` into "
        f"bqemulator over gRPC, trigger {doc['trigger_seconds']:g} s, a replay poll every "
        f"{doc['poll_interval_seconds']:.0f} s, {doc['minutes']:g} minutes after the first rows. BigQuery: "
        f"{doc['rows_in_warehouse']:,} ticks = the distinct ticks of the polls it loaded "
        f"({doc['distinct_ticks_of_loaded_polls']:,}), {doc['duplicate_ticks']} duplicates.",
        "",
        "On Google Cloud (not measured here: no cloud from this machine):",
        "",
        "| | load jobs (before) | Storage Write API (now) |",
        "|---|---|---|",
        f"| quota behind the floor | 1,500 load jobs per table a day, two a batch: 86,400 × 2 / 1,500 = 115.2 s "
        f"| 10,000 CreateWriteStream an hour per project and region, two a batch: 3,600 × 2 / 10,000 = {floor:g} s |",
        f"| cloud trigger (`cdktf/infra/environments.py`) | {load_jobs:g} s | {cloud:g} s |",
        f"| batches a day | {86_400 / load_jobs:,.0f} | {86_400 / cloud:,.0f} |",
        f"| expected data age the pipeline adds: mean / worst | about {load_jobs / 2 + 5:.0f} s / {load_jobs + 30:.0f} s "
        f"| about {cloud / 2 + 5:.0f} s / {cloud + 10:.0f} s |",
        "",
        "The age is the wait for the next trigger (half the trigger on average, all of it at worst) plus the batch "
        "itself (seconds: stage, append, commit; a load job's queueing at worst), on top of CoinGecko's own 45-60 s "
        "cache. Arithmetic and cost: docs/STREAM.md, \"Storage Write API\".",
        "",
    ]
    return out


def scale_section(doc: dict[str, Any] | None) -> list[str]:
    out = ["## Scale: every coin, three currencies, a poll a minute", ""]
    if doc is None:
        return [*out, "Not run yet: `.venv/bin/python -m bench scale`.", ""]
    f, m, mem = doc["freshness_seconds"], doc["monthly"], doc["memory_mib"]

    def row(label: str, s: dict[str, Any], target: str = "") -> str:
        return f"| {label} | {s['n']} | {s['p50']} | {s['p95']} | {s['max']} | {target} |"

    out += [
        _context(doc),
        "",
        f"{doc['coins']:,} coins (the replay's synthetic market, `top_n={doc['top_n']}`) × "
        f"{len(doc['currencies'])} currencies ({', '.join(doc['currencies'])}) every {doc['interval_seconds']:g} s, "
        f"the replay playing the {doc['plan']} plan's {doc['rate_limit_per_minute']} calls a minute; one producer, "
        f"one request a page and currency, each poll one landing object with every currency; stream trigger "
        f"{doc['trigger_seconds']:g} s, {doc['minutes']:g} minutes after the first rows.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| calls a minute (every HTTP attempt as the replay's account counted them, over {doc['polls']} polls) "
        f"| {doc['calls_per_minute']:,} ({doc['pages_per_poll']} pages a poll, all currencies; "
        f"{doc['retried_attempts']} retried attempts) |",
        f"| credits a 31-day month at that pace | {m['credits_a_month']:,}: {m['times_the_plan']}× the "
        f"{m['plan']} plan's {m['plan_credits']:,}, beyond the largest documented plan ({m['largest_documented']:,}) |",
        f"| landing bytes a poll (every currency, one object) | {doc['landing_bytes_per_poll']:,} "
        f"({doc['rows_per_poll']:,} rows; {doc['landing_bytes_per_minute']:,} a minute) |",
        f"| rows a second through the stream | {doc['stream_rows_per_second']:,} over the run; "
        f"{doc['stream_rows_per_busy_second'] or 0:,} while a batch ran (busy {doc['stream_busy_share']:.0%} "
        f"of the time, {doc['batches']} batches) |",
        f"| JVM peak (VmHWM) | {mem['jvm']} MiB: {_met(doc['jvm_target_met'])} (≤ {doc['target_jvm_mib']} MiB) |",
        f"| producer peak (VmHWM) | {mem['producer']} MiB; the stream's Python driver {mem['stream_driver']} MiB, "
        f"the replay {mem['replay']} MiB |",
        f"| polls | {doc['polls']} ({doc['polls_not_ok']} not ok), {doc['duplicates_within_polls']} coins seen on two "
        f"pages of one poll, {doc['rejected_per_poll']} records rejected a poll (the dead coins' null prices) |",
        f"| nothing lost or doubled | warehouse {doc['rows_in_warehouse']:,} ticks = the distinct ticks landed "
        f"({doc['distinct_ticks_landed']:,} of {doc['rows_landed']:,} lines; the rest repeat the thin coins), "
        f"{doc['duplicate_ticks']} duplicates: {'yes' if not doc['problems'] else '**NO**'} |",
        "",
        "| freshness and where the time goes | polls | p50 s | p95 s | max s | target |",
        "|---|---:|---:|---:|---:|---|",
        row("first page's response to seen by a reader (0.5 s watcher)", f,
            f"p95 ≤ {doc['target_p95_seconds']:g} s: {_met(doc['freshness_target_met'])}"),
        row("last page's response to seen by a reader", doc["freshness_from_last_page_seconds"]),
        *(row(f"of which: {stage}", stats) for stage, stats in doc["stages_seconds"].items()),
        row("a poll's fetch (`fetch_ms`, every poll)", doc["fetch_ms"]),
        row("a stream batch (`triggerExecution`)", doc["batch_seconds"]),
        row("of which: staging as Parquet", doc["batch_stage_seconds"]),
        row("of which: the DuckDB load", doc["batch_load_seconds"]),
        row("of which: the rest (planning, offset and commit logs, state store commit)", doc["batch_other_seconds"]),
        "",
    ]
    return out


def footprint_section(doc: dict[str, Any] | None) -> list[str]:
    out = ["## Footprint", ""]
    if doc is None:
        return [*out, "Not run yet: `.venv/bin/python -m bench footprint`.", ""]
    out += [_context(doc), "", "| process | JVM peak MiB (VmHWM) | Python peak MiB (VmHWM) |", "|---|---:|---:|"]
    for label, peaks in doc["memory_mib"].items():
        out.append(f"| {label} | {peaks.get('jvm', '?')} | {peaks.get('python_driver', '?')} |")
    out += ["", "| step | wall s | result |", "|---|---:|---|"]
    for s in doc["synth"].values():  # one synth per CDK family
        out.append(f"| `{s['command']}` ({', '.join(s['stacks'])}) | {s['seconds']} | exit {s['exit_code']} |")
    t = doc.get("tests")
    if t:
        out.append(f"| `{t['command']}` | {t['seconds']} | {t['summary']} (exit {t['exit_code']}) |")
    else:
        out.append("| test suite | not run | (`--skip-tests`) |")
    out.append("")
    return out


def write() -> Path:
    head = (REPO / "bench" / "BENCHMARKS.head.md").read_text()
    tail = (REPO / "bench" / "BENCHMARKS.tail.md").read_text()
    sections = [
        *catchup_section(_load("catchup")),
        *growth_section(_load("growth")),
        *freshness_section(_load("freshness")),
        *freshness_bigquery_section(_load("freshness_bigquery")),
        *scale_section(_load("scale")),
        *footprint_section(_load("footprint")),
    ]
    DOC.write_text(head.rstrip() + "\n\n" + "\n".join(sections).rstrip() + "\n\n" + tail.strip() + "\n")
    print(f"wrote {DOC}", flush=True)
    return DOC
