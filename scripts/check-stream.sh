#!/usr/bin/env bash
# After `terraform apply`: fail unless the processing runs as its mode says, and the newest
# live row in BigQuery is younger than the freshness threshold.
#
#   scripts/check-stream.sh STACK_DIR
#
# Stream mode (the stack's processing_mode output; stacks from before it are streams):
# the google provider counts a job in ERROR, DONE or CANCELLED as created, so a
# driver that dies at start would deploy green. This waits for the job the stack
# outputs (job_id, project, region) to reach RUNNING, then checks it is still
# RUNNING, in the same run (same state start time: no driver restart), SETTLE_SECONDS
# later. Then it asks market_ticks for the age of its newest live row (a poll's, not
# a back-fill's), waiting up to the freshness threshold the alerts use
# (freshness_threshold_seconds) for it to fall within that threshold: a pipeline that
# runs but loads nothing (producer down, spool jammed, loads refused) is red too.
#
# Scheduled mode (docs/STREAM.md, "Scheduled mode"): no job runs between runs. It reads the
# workflow's newest execution (the newest run; executions are listed newest first,
# https://cloud.google.com/workflows/docs/reference/executions/rest/v1/projects.locations.workflows.executions/list):
# FAILED or CANCELLED is red. Then the newest live row once, against the threshold of that
# mode (the interval between runs plus a run's time and the polls' slack): older is red,
# unless no run has ended yet (a first deploy before its first slot), which it says.
#
# It reads the rows, not the table's metadata: a load's or a Storage Write API
# commit's effect on lastModifiedTime is not what we promise, and a back-fill of old
# rows moves it too. It runs as the read-only planner (.github/workflows/deploy.yml),
# which may run query jobs, read this one table's data and list the workflow's
# executions (cdktf/infra/access/api_calls.py).
# Exits 1, saying what failed and what to check, otherwise.
set -euo pipefail
stack_dir="$1"
timeout_seconds="${TIMEOUT_SECONDS:-900}"
settle_seconds="${SETTLE_SECONDS:-120}"
poll_seconds="${POLL_SECONDS:-15}"

output() { terraform -chdir="$stack_dir" output -raw "$1"; }
mode="$(output processing_mode 2>/dev/null)" || mode=stream
job=""
if [ "$mode" = stream ]; then
    job="$(output job_id)"
else
    workflow="$(output workflow)"
fi
project="$(output project)"
region="$(output region)"
table="$(output table_id)"
freshness_seconds="${FRESHNESS_SECONDS:-$(output freshness_threshold_seconds)}"

describe() {
    gcloud dataproc jobs describe "$job" --project "$project" --region "$region" --format "$1"
}
fail() {
    echo "check-stream: $*" >&2
    if [ -n "$job" ]; then describe 'value(status.details)' >&2 || true; fi
    echo "check-stream: runbook: docs/OPERATIONS.md" >&2
    exit 1
}

if [ "$mode" = scheduled ]; then
    read -r run_state run_name <<<"$(gcloud workflows executions list "$workflow" --project "$project" \
        --location "$region" --limit 1 --format 'value(state,name)')"
    case "$run_state" in
        FAILED | CANCELLED)
            fail "the newest scheduled run, $run_name, is $run_state: gcloud workflows executions describe" \
                "$run_name shows its error (runbook: \"Scheduled run missed or failed\")" ;;
        "") echo "check-stream: no scheduled run yet: the first starts in the next slot" ;;
        *) echo "check-stream: the newest scheduled run, $run_name, is $run_state" ;;
    esac
    timeout_seconds=0 # one look at the rows: a run comes once an interval
fi

deadline=$((SECONDS + timeout_seconds))
while [ "$mode" = stream ]; do
    read -r state started <<<"$(describe 'value(status.state,status.stateStartTime)')"
    case "$state" in
        RUNNING) break ;;
        PENDING | SETUP_DONE | QUEUED) ;;
        *) fail "job $job is ${state:-in no state}, not RUNNING" ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || fail "job $job is still $state after ${timeout_seconds} s"
    sleep "$poll_seconds"
done

if [ "$mode" = stream ]; then
    sleep "$settle_seconds"
    read -r state_after started_after <<<"$(describe 'value(status.state,status.stateStartTime)')"
    if [ "$state_after" != RUNNING ] || [ "$started_after" != "$started" ]; then
        fail "job $job was RUNNING since $started, then $state_after since $started_after: the driver restarted" \
            "or ended"
    fi
    echo "check-stream: job $job RUNNING since $started"
fi

# The newest live tick, in the schema's names (core/schemas/market_tick.json, core/tables.py;
# tests/cdktf/test_check_stream.py checks them there).
time_column=last_updated # event time; the table is partitioned by day on it
origin_column=origin     # NULL (rows from before the field) or 'poll': live; 'backfill': old points
live_origin=poll
# It scans two columns (last_updated, origin) of at most two day partitions, yesterday's
# and today's (UTC; later ones hold no rows), whatever the table's size: a few MB, billed
# as the 10 MB minimum. The byte cap refuses it should the filter ever stop pruning.
newest_live_sql="SELECT TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), MAX($time_column), SECOND) AS age_seconds
FROM \`$table\`
WHERE $time_column >= TIMESTAMP(DATE_SUB(CURRENT_DATE(), INTERVAL 1 DAY))
  AND ($origin_column IS NULL OR $origin_column = '$live_origin')"
errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT

# Sets age to the newest live row's age in seconds, or to "none" when there is none.
newest_live_age() {
    local answer message
    if answer="$(bq --quiet --project_id="$project" query --nouse_legacy_sql --format=json \
        --maximum_bytes_billed=1000000000 "$newest_live_sql" 2>"$errors")"; then
        age="$(python3 -c 'import json, sys
value = json.load(sys.stdin)[0]["age_seconds"]
print("none" if value is None else int(value))' <<<"$answer")" ||
            fail "bq query answered what is not one row of age_seconds: $answer"
        return 0
    fi
    message="$(tr '\n' ' ' <"$errors") $answer"
    case "$message" in
        *bigquery.jobs.create*)
            fail "the query of $table was refused: the planner lacks bigquery.jobs.create on project $project" \
                "(roles/bigquery.jobUser, cdktf/infra/stacks/bootstrap.py): $message" ;;
        *"Access Denied"* | *"does not have permission"* | *"Permission denied"*)
            fail "the query of $table was refused: the planner lacks bigquery.tables.getData on $table" \
                "(roles/bigquery.dataViewer on the table, cdktf/infra/stacks/warehouse.py): $message" ;;
        *) fail "bq query of $table failed: $message" ;;
    esac
}

fresh_deadline=$(($(date +%s) + freshness_seconds))
[ "$mode" = stream ] || fresh_deadline=0 # one look: the next row comes with the next run
while :; do
    newest_live_age
    if [ "$age" != none ] && [ "$age" -le "$freshness_seconds" ]; then
        echo "check-stream: the newest live row of $table is $age s old (threshold $freshness_seconds s)"
        exit 0
    fi
    if [ "$mode" = scheduled ] && [ -z "$run_state" ]; then
        echo "check-stream: no live row of $table within ${freshness_seconds} s, and no run has ended yet:" \
            "the alert \"Scheduled run missed or failed\" judges the first runs"
        exit 0
    fi
    if [ "$(date +%s)" -ge "$fresh_deadline" ]; then
        if [ "$age" = none ]; then
            fail "no live row in $table since yesterday (UTC), after waiting ${freshness_seconds} s:" \
                "check the producer's poll lines, the spool and the job's driver output for load errors"
        fi
        fail "the newest live row of $table is $age s old, older than the threshold of ${freshness_seconds} s," \
            "after waiting that long: check the producer's poll lines, the spool and the job's driver output" \
            "for load errors"
    fi
    sleep "$poll_seconds"
done
