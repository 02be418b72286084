"""Scheduled mode's run, as the source of the Cloud Workflows workflow that Cloud Scheduler starts.

docs/STREAM.md, "Scheduled mode", weighs the design; this is its one starter. Every
``schedule_minutes`` Cloud Scheduler creates an execution (infra/stacks/schedule.py), which runs
as the ``scheduler`` service account and:

1. lists the cluster's ACTIVE jobs and, when one is there (a long run, a run started by hand,
   the stream's job being cancelled after a switch), ends as ``skipped``: never two drivers on
   one checkpoint;
2. gets the cluster and, when it is STOPPED, starts it, then polls it until RUNNING (the start's
   operation is not awaited: ``skip_polling``, so the account needs no ``dataproc.operations.get``);
3. submits the job with ``--available-now`` under the slot's job id, ``<prefix>-<env>-run-<minutes
   since the epoch, floored to the interval>``, with the same ``requestId``: a trigger retried in
   the same slot gets the first submission back, or a 409 for an id already used, and starts
   nothing;
4. polls the job until it ends;
5. lists ACTIVE jobs again and stops the cluster only when there is none ("If a cluster has
   running jobs, the stop request will succeed ... and the running jobs will fail",
   https://cloud.google.com/dataproc/docs/guides/dataproc-start-stop);
6. returns the run and its state, or fails the execution when the job did not end DONE (the
   "Scheduled run missed or failed" alert and scripts/check-stream.sh read that).

Every call goes through Workflows' Dataproc connector
(https://cloud.google.com/workflows/docs/reference/googleapis/dataproc/v1/Overview), which
authenticates as the workflow's service account; ``connector_params.skip_polling`` returns a
long-running operation at once instead of polling it
(https://cloud.google.com/workflows/docs/reference/googleapis, "Invoke a connector call").
The Dataproc methods and the permission each checks are those of the REST reference
(https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.jobs/submit:
``requestId`` "If the server receives two SubmitJobRequests with the same id, then the second
request will be ignored and the first Job created and stored in the backend is returned";
https://cloud.google.com/dataproc/docs/concepts/iam/granular-iam: submitting to a cluster takes
``dataproc.clusters.use`` on it). infra/access/api_calls.py lists each method's permissions
for the permission model, and :func:`connector_methods` the methods, to check the two agree.

The source is JSON, which Workflows takes as well as YAML
(https://cloud.google.com/workflows/docs/reference/syntax): built from Python data here, so
the tests read the steps instead of parsing text. Pure Python, no CDKTF import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: Workflows' Dataproc connector: every call of the workflow is one of its methods.
CONNECTOR = "googleapis.dataproc.v1.projects.regions"
#: A job in one of these states has ended (Dataproc's JobStatus.State).
ENDED = ("DONE", "ERROR", "CANCELLED")
#: Seconds between two looks at the cluster while it starts, and at the job while it runs: each look
#: and each sleep is a billed step (infra/reports/cost.py counts them).
POLL_SECONDS = 30
#: Dataproc's limit on a requestId: 40 letters, digits, ``_`` and ``-``
#: (https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.clusters/start).
REQUEST_ID_MAX = 40
#: The slot's digits: minutes since the epoch stay eight digits until the 2160s.
SLOT_DIGITS = 8


def _call(method: str, result: str | None = None, skip_polling: bool = False, **args: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"call": f"{CONNECTOR}.{method}",
                            "args": {"projectId": "${project}", "region": "${region}", **args}}
    if skip_polling:
        body["args"]["connector_params"] = {"skip_polling": True}
    if result:
        body["result"] = result
    return body


def _active(result: str) -> dict[str, Any]:
    return _call("jobs.list", result, clusterName="${cluster}", jobStateMatcher="ACTIVE")


def _count(result: str) -> str:
    """An expression: how many jobs a ``jobs.list`` answer holds (an empty answer has no ``jobs``)."""
    return f'len(default(map.get({result}, "jobs"), []))'


def workflow(*, project: str, region: str, cluster: str, run_id_prefix: str, schedule_minutes: int,
             start_deadline_seconds: int, pyspark_job: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    """The workflow's definition: one run of ``pyspark_job`` (a Dataproc ``PySparkJob``, REST field names,
    ``--available-now`` among its args) on ``cluster``, in the slot of ``schedule_minutes``."""
    longest = len(f"{run_id_prefix}-{'9' * SLOT_DIGITS}-start")
    if longest > REQUEST_ID_MAX:
        raise ValueError(f"run ids like {run_id_prefix}-<slot>-start are {longest} characters, over Dataproc's "
                         f"{REQUEST_ID_MAX} for a requestId: shorten the prefix")
    ended = json.dumps(list(ENDED))
    steps = [
        {"init": {"assign": [
            {"project": project}, {"region": region}, {"cluster": cluster},
            {"slot": f"${{int(sys.now()) // 60 // {schedule_minutes} * {schedule_minutes}}}"},
            {"run": f'${{"{run_id_prefix}-" + string(slot)}}'},
            {"start_deadline": f"${{sys.now() + {start_deadline_seconds}}}"},
        ]}},
        {"look_for_active_jobs": _active("active")},
        {"skip_while_a_job_is_active": {"switch": [
            {"condition": f"${{{_count('active')} > 0}}",
             "return": {"run": "${run}", "state": "skipped", "active": "${active.jobs[0].reference.jobId}"}},
        ]}},
        {"get_cluster": _call("clusters.get", "found", clusterName="${cluster}")},
        {"start_when_stopped": {"switch": [
            {"condition": '${found.status.state == "RUNNING"}', "next": "submit"},
            {"condition": "${sys.now() > start_deadline}",
             "raise": {"run": "${run}", "state": "cluster not running",
                       "cluster_state": "${found.status.state}"}},
            {"condition": '${found.status.state == "STOPPED"}', "next": "start_cluster"},
        ]}},
        {"wait_for_cluster": {"call": "sys.sleep", "args": {"seconds": POLL_SECONDS}, "next": "get_cluster"}},
        {"start_cluster": {**_call("clusters.start", skip_polling=True, clusterName="${cluster}",
                                   body={"requestId": '${run + "-start"}'}), "next": "wait_for_cluster"}},
        {"submit": {
            "try": _call("jobs.submit", "submitted", body={"requestId": "${run}", "job": {
                "reference": {"jobId": "${run}"},
                "placement": {"clusterName": "${cluster}"},
                "pysparkJob": dict(pyspark_job),
                "labels": dict(labels),
            }}),
            "except": {"as": "error", "steps": [
                {"slot_already_ran": {"switch": [
                    {"condition": "${error.code == 409}",
                     "return": {"run": "${run}", "state": "skipped", "active": "${run}"}},
                ]}},
                {"submit_failed": {"raise": "${error}"}},
            ]},
        }},
        {"get_job": _call("jobs.get", "job", jobId="${run}")},
        {"until_the_job_ends": {"switch": [
            {"condition": f"${{job.status.state in {ended}}}", "next": "look_for_jobs_left"},
        ]}},
        {"wait_for_job": {"call": "sys.sleep", "args": {"seconds": POLL_SECONDS}, "next": "get_job"}},
        {"look_for_jobs_left": _active("left")},
        {"stop_when_idle": {"switch": [
            {"condition": f"${{{_count('left')} == 0}}", "next": "stop_cluster"},
        ], "next": "report"}},
        {"stop_cluster": _call("clusters.stop", skip_polling=True, clusterName="${cluster}",
                               body={"requestId": '${run + "-stop"}'})},
        {"report": {"switch": [
            {"condition": '${job.status.state == "DONE"}', "return": {"run": "${run}", "state": "DONE"}},
        ]}},
        {"run_failed": {"raise": {"run": "${run}", "state": "${job.status.state}",
                                  "details": '${default(map.get(job.status, "details"), "")}'}}},
    ]
    return {"main": {"steps": steps}}


def connector_methods(definition: Mapping[str, Any]) -> set[str]:
    """The connector methods a definition calls, like ``jobs.submit``."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            call = value.get("call")
            if isinstance(call, str) and call.startswith(f"{CONNECTOR}."):
                found.add(call.removeprefix(f"{CONNECTOR}."))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(definition)
    return found


def source(definition: Mapping[str, Any]) -> str:
    """The workflow's ``source_contents``."""
    return json.dumps(definition, indent=1)


def cron(schedule_minutes: int) -> str:
    """Cloud Scheduler's unix-cron schedule of a run every ``schedule_minutes`` (a divisor of an hour or of a
    day, as the config allows), in UTC: its slots are the workflow's floors of minutes since the epoch."""
    if schedule_minutes < 60:
        return f"*/{schedule_minutes} * * * *"
    if schedule_minutes == 60:
        return "0 * * * *"
    if schedule_minutes < 1440:
        return f"0 */{schedule_minutes // 60} * * *"
    return "0 0 * * *"
