"""Waits where Google documents eventual consistency: a ``time_sleep`` of the hashicorp/time
provider between a change Google has accepted and the first resource that needs it in effect.

``depends_on`` orders the calls, it does not wait: Terraform creates the next resource the
moment the API answers the previous call. Two places of this app need more:

- **A new log-based metric, then the alert policy that reads it.** Monitoring refuses the
  policy with 404 "Cannot find metric(s) that match type = ... If a metric was created
  recently, it could take up to 10 minutes to become available" (hashicorp/terraform-provider-google#11102,
  open since 2022; cloud-foundation-fabric ships its impersonation alert commented out for the
  same error, GoogleCloudPlatform/cloud-foundation-fabric#3739). The policies wait
  :data:`METRIC_VISIBILITY_SECONDS` after the metrics.
- **A new IAM grant, then the workload that uses it.** "Changes to allow or deny policies
  typically propagate in 2 minutes, but could potentially take 7 minutes or longer"
  (https://cloud.google.com/iam/docs/access-change-propagation). The cluster's nodes fetch
  their initialization action once, without a retry, so a cluster made before its grants
  work can end in ERROR; the producer VM retries its own download, but no longer than about
  5 minutes (producer_startup.sh). Both wait :data:`IAM_PROPAGATION_SECONDS` after the grants
  their service accounts use; so does scheduled mode's Cloud Scheduler job (schedule.py),
  whose first trigger runs the workflow as the scheduler account.

A ``time_sleep`` waits when it is created, and again whenever one of its ``triggers`` changes
(a new metric, a new or replaced grant: the trigger joins their ids, unknown until the new
one exists); an apply that touches nothing it guards does not wait. The first deploy pays
both waits once, side by side with the cluster's own start.
tests/cdktf/test_first_deploy.py walks the synthesized stacks with these delays as its rules.
"""

from __future__ import annotations

from typing import Any

from constructs import Construct

from infra.cdk import Fn, time

#: Google's "up to 10 minutes" for a new metric to become available to alert policies.
METRIC_VISIBILITY_SECONDS = 600
#: Google's "potentially 7 minutes" for an allow-policy change to propagate.
IAM_PROPAGATION_SECONDS = 420


def wait_after(scope: Construct, id_: str, seconds: int, resources: list[Any]) -> Any:
    """A ``time_sleep`` of ``seconds`` after ``resources``, again whenever one of them is replaced
    or added: what must wait for them depends on it."""
    return time.sleep.Sleep(
        scope, id_, create_duration=f"{seconds}s",
        triggers={"after": Fn.join(",", [resource.id for resource in resources])},
        depends_on=resources,
    )


def after_metrics(scope: Construct, metrics: list[Any]) -> Any:
    """What alert policies reading ``metrics`` wait for."""
    return wait_after(scope, "metrics-visible", METRIC_VISIBILITY_SECONDS, metrics)


def after_grants(scope: Construct, grants: list[Any]) -> Any:
    """What a workload whose service account holds ``grants`` waits for before it starts."""
    return wait_after(scope, "grants-propagated", IAM_PROPAGATION_SECONDS, grants)
