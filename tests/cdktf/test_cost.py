"""The cost table (docs/DEPLOY.md, generated) is computed from the environments' settings, and its inputs hold."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from infra.environments import environment, load_environments
from infra.monitoring.conditions import condition_count
from infra.reports import cost

CONFIGS = {cfg.name: cfg for cfg in load_environments()}


def test_storage_write_ingestion_follows_the_schema_and_the_rate():
    gib_250, dollars_250 = cost.storage_write_per_day(250)
    gib_15k, dollars_15k = cost.storage_write_per_day(15_000)
    assert gib_15k == pytest.approx(60 * gib_250) and dollars_15k == pytest.approx(gib_15k * 0.025)
    assert gib_250 == pytest.approx(250 * 1440 * cost.tick_row_bytes() / 2**30)
    load_jobs = environment("qa", {"project": "my-project-1", "state_bucket": "my-tfstate-1",
                                   "bigquery_write": "load-jobs", "trigger_seconds": 120})
    by_item = {line.item: line for line in cost.lines(load_jobs)}
    assert by_item["BigQuery Storage Write API ingestion (no free tier counted)"].dollars == 0
    assert len(by_item) == len(cost.lines(CONFIGS["dev"]))  # the table's rows line up across environments


def test_every_resource_type_of_the_stacks_has_a_cost_line_or_a_reasoned_free_entry(all_stacks):
    declared = {type_ for stack in all_stacks.values() for type_ in stack.json.get("resource", {})}
    items = {line.item for line in cost.lines(CONFIGS["dev"])}
    assert cost.unaccounted(declared, items) == []
    # a billed type without a line, a line the table lost, an unexplained free type: each is named
    billed = dict(cost.BILLED_AS)
    del billed["google_compute_subnetwork"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cost, "BILLED_AS", billed)
        assert cost.unaccounted(declared, items) == [
            "google_compute_subnetwork: no cost line and no reasoned free entry in cdktf/infra/reports/cost.py BILLED_AS"]
    assert cost.unaccounted(declared, items - {"Cloud Monitoring alert conditions"}) == [
        "google_monitoring_alert_policy: the table has no line 'Cloud Monitoring alert conditions'"]


def test_alert_conditions_are_billed_per_condition_of_the_synthesized_policies(stack):
    cfg = CONFIGS[stack.directory.name]
    synthesized = sum(len(p["conditions"]) for p in stack.resources("google_monitoring_alert_policy").values())
    line = {line.item: line for line in cost.lines(cfg)}["Cloud Monitoring alert conditions"]
    assert line.formula.startswith(f"{synthesized} × ")
    assert line.dollars == pytest.approx(synthesized * (1.50 / 30.4 + 2_880 * 0.35 / 1e6))


def test_storage_operations_count_a_listing_per_trigger_and_writes_per_loading_batch():
    """A trigger finds a new file about once per poll: 1,440 loading batches a day, not 8,640."""
    dev = CONFIGS["dev"].in_mode("stream")
    assert cost.loading_batches_per_day(dev) == 1_440
    assert cost.gcs_class_a_per_day(dev) == 8_640 * 3 + 1_440 * 30 + 1_440
    slow = environment("qa", {"project": "my-project-1", "state_bucket": "my-tfstate-1", "trigger_seconds": 120})
    assert cost.loading_batches_per_day(slow) == 720  # one trigger can take several polls' files


def test_batches_follow_the_trigger_and_disks_are_counted_per_disk():
    dev = CONFIGS["dev"].in_mode("stream")
    assert cost.batches_per_day(dev) == 8_640  # the 10 s trigger; the load jobs' 120 s made 720
    disks = {line.item: line for line in cost.lines(dev)}["producer disks, pd-balanced: boot and spool"]
    assert disks.dollars == pytest.approx((dev.producer_disk_gb + dev.producer_spool_disk_gb) * 0.10 / 30.4)


def test_the_cluster_grows_with_its_workers():
    base = {"project": "my-project-1", "state_bucket": "my-tfstate-1"}
    single, three = (cost.lines(environment("qa", {**base, "cluster_worker_count": n})) for n in (0, 2))
    assert three[0].dollars == pytest.approx(3 * single[0].dollars)  # e2-standard-4 master and workers
    assert three[1].dollars == pytest.approx(3 * single[1].dollars)


def test_an_unpriced_machine_type_is_a_clear_error():
    cfg = environment("qa", {"project": "my-project-1", "state_bucket": "my-tfstate-1",
                             "cluster_master_machine_type": "c3-standard-4"})
    with pytest.raises(KeyError, match="no list price for 'c3-standard-4'"):
        cost.lines(cfg)


def test_poll_sizes_match_the_bundled_replay():
    """The per-coin byte counts the table rests on, measured on a poll of the bundled replay."""
    from cryptopipe.replay.market import frame
    from producer.validate import to_ndjson, validate_records

    records = frame(0)[:250]
    landed = to_ndjson(validate_records(records, vs_currency="usd", ingested_at=datetime.now(timezone.utc),
                                        poll_id="20261130T160501123Z-1f2e3d4c5b6a").accepted)
    assert len(landed) / 250 == pytest.approx(cost.POLL_BYTES_PER_COIN, rel=0.2)
    assert len(json.dumps(records)) / 250 == pytest.approx(cost.RESPONSE_BYTES_PER_COIN, rel=0.2)


def test_dev_in_scheduled_mode_costs_at_most_a_dollar_fifty_a_day_with_every_lines_formula():
    dev = CONFIGS["dev"]
    assert dev.processing == "scheduled"  # the default a small team would choose (README)
    lines = cost.lines(dev)
    assert sum(line.dollars for line in lines) <= 1.50
    stream_dev = dev.in_mode("stream")
    assert [line.item for line in lines] == [line.item for line in cost.lines(stream_dev)]  # rows line up
    assert all(line.formula and "stream mode" not in line.formula for line in lines)
    by_item = {line.item: line for line in lines}
    hours = 24 * cost.SCHEDULED_RUN_MINUTES / 60  # hourly runs of the assumed length
    assert by_item["Dataproc nodes"].dollars == pytest.approx(0.1340 * hours)
    assert by_item["Dataproc nodes"].formula.endswith("× 24 runs × 5 min")
    assert by_item["Dataproc boot disks, pd-balanced"].dollars == pytest.approx(50 * 0.10 / 30.4)  # kept all day
    conditions = condition_count(dev.alert_thresholds)
    assert conditions == condition_count(stream_dev.alert_thresholds) - 2  # no cluster gauge, no restarts
    assert by_item["Cloud Monitoring alert conditions"].formula.startswith(f"{conditions} × ")
    assert cost.loading_batches_per_day(dev) == 24  # an hour's 60 polls fit one batch of 200 files
    every_15 = environment("qa", {"project": "my-project-1", "state_bucket": "my-tfstate-1",
                                  "schedule_minutes": 15}).in_mode("scheduled")
    assert cost.runs_per_day(every_15) == 96 and cost.cluster_hours_per_day(every_15) == pytest.approx(8.0)
    # stream mode's rows of the scheduled mode's services cost nothing
    stream = {line.item: line for line in cost.lines(stream_dev)}
    assert stream["Workflows steps (scheduled runs)"].dollars == stream["Cloud Scheduler job"].dollars == 0


def test_the_readme_summary_prices_each_environment_and_names_the_coingecko_plan_its_polls_need():
    demo = environment("qa", {"project": "my-project-1", "state_bucket": "my-tfstate-1", "api_plan": "demo",
                              "interval_seconds": 300})
    rows = [row.split(" | ") for row in cost.summary_table([CONFIGS["dev"], demo]).splitlines()[2:]]
    dev, qa = ({cells[0].strip("| "): cells for cells in rows}[name] for name in ("dev", "qa"))
    assert dev[2] == f"${sum(line.dollars for line in cost.lines(CONFIGS['dev'])):,.2f}"
    assert dev[4:] == ["`basic`", f"{CONFIGS['dev'].coingecko_need.calls:,}", "100,000", "$35 |"]
    assert qa[4:] == ["`demo`", "8,928", "10,000", "free |"]  # a poll every 300 s of 31 days: 8,928 calls
