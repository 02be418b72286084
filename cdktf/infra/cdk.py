"""The one place that picks the CDK family; every other module imports the CDK through it.

Two families synthesize this app, with the same classes and arguments:

- ``cdktf`` (default): CDKTF 0.21.0 with ``cdktf-cdktf-provider-google`` 16.12.1
  (hashicorp/google 6.50.0) and ``cdktf-cdktf-provider-time`` 11.0.1 (hashicorp/time 0.13.1). Both are final releases: HashiCorp archived CDKTF on
  2025-12-10, so this family is frozen on a provider of 2025.
- ``cdktn``: CDK Terrain, CDKTF's maintained fork, 0.24.0 with ``cdktn-provider-google``
  21.1.0 (hashicorp/google 8.7.0), the newest provider line, and ``cdktn-provider-time``
  14.0.2 (hashicorp/time 0.14.2); its submodules load lazily, so a synth takes a third of the time.

Choose with ``CRYPTOPIPE__DEPLOY__CDK_FAMILY=cdktn`` (``python cdktf/main.py``,
``cdktf synth|deploy``, the workflows: whatever runs the app). One App takes one
family: a cdktf App refuses resources of the cdktn provider. The arguments this app
uses are the same in both, and the synthesized stacks differ only in the provider's
source and version and the CDK's metadata (tests/cdktf/test_families.py); what moving
an environment means for its state is in docs/CDK.md.

Usage::

    from infra.cdk import TerraformStack, google

    google.storage_bucket.StorageBucket(scope, "bucket", name=..., ...)
    time.sleep.Sleep(scope, "wait", create_duration="120s", ...)   # hashicorp/time (infra/stacks/waits.py)
"""

from __future__ import annotations

import os
from importlib import import_module
from types import ModuleType

#: Family -> (core package, google provider package, time provider package).
FAMILIES = {
    "cdktf": ("cdktf", "cdktf_cdktf_provider_google", "cdktf_cdktf_provider_time"),
    "cdktn": ("cdktn", "cdktn_provider_google", "cdktn_provider_time"),
}
FAMILY_VARIABLE = "CRYPTOPIPE__DEPLOY__CDK_FAMILY"
DEFAULT_FAMILY = "cdktf"


def selected_family(environ: os._Environ[str] | dict[str, str] = os.environ) -> str:
    """The family ``environ`` selects; ValueError naming the variable for anything else."""
    family = environ.get(FAMILY_VARIABLE, DEFAULT_FAMILY) or DEFAULT_FAMILY
    if family not in FAMILIES:
        raise ValueError(f"{FAMILY_VARIABLE}={family!r} is not a CDK family; expected one of {sorted(FAMILIES)}")
    return family


class _Provider:
    """A provider's submodules as attributes, each imported on first use."""

    def __init__(self, package: str) -> None:
        self.package = package

    def __getattr__(self, submodule: str) -> ModuleType:
        module = import_module(f"{self.package}.{submodule}")
        setattr(self, submodule, module)
        return module


FAMILY = selected_family()
_core = import_module(FAMILIES[FAMILY][0])
#: The google provider, by submodule: ``google.storage_bucket.StorageBucket``.
google = _Provider(FAMILIES[FAMILY][1])
#: The hashicorp/time provider, by submodule: ``time.sleep.Sleep``.
time = _Provider(FAMILIES[FAMILY][2])

App = _core.App
AssetType = _core.AssetType
Fn = _core.Fn
GcsBackend = _core.GcsBackend
TerraformAsset = _core.TerraformAsset
TerraformOutput = _core.TerraformOutput
TerraformResourceLifecycle = _core.TerraformResourceLifecycle
TerraformStack = _core.TerraformStack
