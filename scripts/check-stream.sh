#!/usr/bin/env bash
# After `terraform apply`: fail unless the stream's Dataproc job is RUNNING and stays so.
#
#   scripts/check-stream.sh STACK_DIR
#
# The google provider counts a job in ERROR, DONE or CANCELLED as created, so a
# driver that dies at start would deploy green. This waits for the job the stack
# outputs (job_id, project, region) to reach RUNNING, then checks it is still
# RUNNING, in the same run (same state start time: no driver restart), SETTLE_SECONDS
# later. Exits 1, with the job's status details, otherwise.
set -euo pipefail
stack_dir="$1"
timeout_seconds="${TIMEOUT_SECONDS:-900}"
settle_seconds="${SETTLE_SECONDS:-120}"
poll_seconds="${POLL_SECONDS:-15}"

output() { terraform -chdir="$stack_dir" output -raw "$1"; }
job="$(output job_id)"
project="$(output project)"
region="$(output region)"

describe() {
    gcloud dataproc jobs describe "$job" --project "$project" --region "$region" --format "$1"
}
fail() {
    echo "check-stream: $*" >&2
    describe 'value(status.details)' >&2 || true
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
