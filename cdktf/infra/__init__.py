"""The CDKTF app's code, grouped by the job each part does (docs/ARCHITECTURE.md, "The CDKTF app").

- ``environments``: each environment's settings (cdktf/environments.toml), checked before any CDK import;
- ``cdk``: the one seam to the CDK family (cdktf or cdktn) and its google provider;
- ``artifacts``: the producer and job artifacts built at synth, and the boot scripts that install them;
- ``access``: the effective-permission model (role data, the API calls each identity makes);
- ``monitoring``: the log-metric filters and alert conditions, as plain data;
- ``stacks``: the constructs, the only part that imports the provider bindings;
- ``reports``: the generated access, alert and cost tables of the docs.

A package inside ``cdktf/`` rather than ``cdktf/`` itself: a package named ``cdktf``
would shadow the library. The entry points (``cdktf/main.py``, ``cdktf/ci.py``) put
this folder on ``sys.path`` by being run from it. The layers are import-linter
contracts in pyproject.toml.
"""
