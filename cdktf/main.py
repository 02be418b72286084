"""The CDKTF app: two stacks per environment of cdktf/environments.toml.

``<env>`` (``dev``, ``prod``) is the pipeline, deployed by ``cdktf deploy <env>`` or CI;
``bootstrap-<env>`` is its state bucket and CI identities, applied by hand (infra/stacks/bootstrap.py).

Run by ``cdktf synth|deploy|destroy`` through cdktf.json, or directly
(``.venv/bin/python cdktf/main.py``) to synthesize into ``cdktf.out/``.

Run from this folder, it finds the app's package, ``infra/`` (grouped by job; a package
named ``cdktf`` would shadow the library).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from infra.artifacts.archive import build_artifacts
from infra.artifacts.wheelhouse import WheelhouseError
from infra.environments import ConfigError, EnvironmentConfig, load_environments

REPO_ROOT = Path(__file__).resolve().parent.parent

# Before jsii starts its Node process: cdktf 0.21 is final and runs on Node 20; the
# banner about Node 20's end of life would print on every run.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def synth(
    outdir: str | None = None,
    environments: Sequence[EnvironmentConfig] | None = None,
    source_root: Path = REPO_ROOT,
) -> Path:
    """Synthesize every environment's stack into ``outdir`` (the CLI's, or ``cdktf.out``); return it."""
    environments = load_environments() if environments is None else environments
    # Imported here: the provider bindings take 12-13 s to import, and a bad setting
    # should be reported before that.
    from infra.cdk import App
    from infra.stacks.bootstrap import BootstrapStack
    from infra.stacks.pipeline import PipelineStack

    with tempfile.TemporaryDirectory(prefix="cryptopipe-artifacts-") as build_dir:
        artifacts = build_artifacts(source_root, Path(build_dir))
        app = App(outdir=outdir) if outdir else App()
        for cfg in environments:
            PipelineStack(app, cfg, artifacts)
            BootstrapStack(app, cfg)  # `bootstrap-<env>`: applied by hand, once (docs/DEPLOY.md)
        app.synth()  # copies the artifacts into the output before build_dir goes
        return Path(app.outdir)


def main() -> int:
    try:
        environments = load_environments()
        outdir = synth(environments=environments)
    except (ConfigError, FileNotFoundError, ValueError, WheelhouseError) as exc:
        print(f"cdktf/main.py: {exc}", file=sys.stderr)
        return 1
    names = [cfg.name for cfg in environments]
    print(f"synthesized {', '.join(names)} and {', '.join(f'bootstrap-{n}' for n in names)} into {outdir}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
