#!/usr/bin/env bash
# After `terraform apply`: fail unless the stream's Dataproc job is RUNNING, stays so,
# and loads ticks into BigQuery.
#
#   scripts/check-stream.sh STACK_DIR
#
# The google provider counts a job in ERROR, DONE or CANCELLED as created, so a
# driver that dies at start would deploy green. This waits for the job the stack
# outputs (job_id, project, region) to reach RUNNING, then checks it is still
# RUNNING, in the same run (same state start time: no driver restart), SETTLE_SECONDS
# later. Then it waits, up to the freshness threshold the alerts use
# (freshness_threshold_seconds) from then, for a load into market_ticks after the check began:
# a pipeline that runs but loads nothing (producer down, spool jammed, loads
# refused) is red too. It reads table metadata only (the table's lastModifiedTime,
# which a load moves; the apply's own table updates happen before the check
# begins), so the read-only planner can run it (.github/workflows/deploy.yml).
# Exits 1, saying what failed and what to check, otherwise.
set -euo pipefail
stack_dir="$1"
timeout_seconds="${TIMEOUT_SECONDS:-900}"
settle_seconds="${SETTLE_SECONDS:-120}"
poll_seconds="${POLL_SECONDS:-15}"

output() { terraform -chdir="$stack_dir" output -raw "$1"; }
job="$(output job_id)"
project="$(output project)"
region="$(output region)"
table="$(output table_id)"
freshness_seconds="${FRESHNESS_SECONDS:-$(output freshness_threshold_seconds)}"
began="$(date +%s)"

describe() {
    gcloud dataproc jobs describe "$job" --project "$project" --region "$region" --format "$1"
}
fail() {
    echo "check-stream: $*" >&2
    describe 'value(status.details)' >&2 || true
    echo "check-stream: runbook: docs/OPERATIONS.md" >&2
    exit 1
}

deadline=$((SECONDS + timeout_seconds))
while :; do
    read -r state started <<<"$(describe 'value(status.state,status.stateStartTime)')"
    case "$state" in
        RUNNING) break ;;
        PENDING | SETUP_DONE | QUEUED) ;;
        *) fail "job $job is ${state:-in no state}, not RUNNING" ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || fail "job $job is still $state after ${timeout_seconds} s"
    sleep "$poll_seconds"
done

sleep "$settle_seconds"
read -r state_after started_after <<<"$(describe 'value(status.state,status.stateStartTime)')"
if [ "$state_after" != RUNNING ] || [ "$started_after" != "$started" ]; then
    fail "job $job was RUNNING since $started, then $state_after since $started_after: the driver restarted or ended"
fi
echo "check-stream: job $job RUNNING since $started"

# The table's last data change, in seconds since the epoch (bq prints milliseconds).
loaded_at() {
    local shown
    shown="$(bq --project_id="$project" show --format=json "${table/./:}")" || return 1
    python3 -c 'import json, sys; print(int(json.load(sys.stdin)["lastModifiedTime"]) // 1000)' <<<"$shown"
}
load_deadline=$(($(date +%s) + freshness_seconds))
while :; do
    loaded="$(loaded_at)" || fail "cannot read the metadata of $table (does the planner hold bigquery.tables.get?)"
    if [ "$loaded" -ge "$began" ]; then
        echo "check-stream: $table loaded $(($(date +%s) - loaded)) s ago"
        exit 0
    fi
    if [ "$(date +%s)" -ge "$load_deadline" ]; then
        fail "no load into $table since the check began $(($(date +%s) - began)) s ago (last one" \
            "$(($(date +%s) - loaded)) s ago; threshold ${freshness_seconds} s): check the producer's poll lines," \
            "the spool and the job's driver output for load errors"
    fi
    sleep "$poll_seconds"
done
