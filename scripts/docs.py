#!/usr/bin/env python3
"""Regenerate every generated section of the docs from the code it restates.

    .venv/bin/python scripts/docs.py           # rewrite each stale document
    .venv/bin/python scripts/docs.py --check   # name the stale documents; exit 1 if any

A table that restates code (an option, a variable, a default, an alert, a grant, a
price) is a section between ``<!-- name -->`` and ``<!-- /name -->`` lines
(core/docsections.py), written only by the generator of its name in :data:`SECTIONS`.
tests/cdktf/test_generated_docs.py regenerates every section from the test session's
synth and fails on any difference; the access tables need a synth of their own here.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The packages, and the CDKTF app's package (cdktf/infra), as cdktf/main.py finds it.
sys.path[:0] = [str(ROOT), str(ROOT / "cdktf")]

from core.docsections import section_names, splice  # noqa: E402
from infra.environments import EnvironmentConfig, load_environments  # noqa: E402


@dataclass
class Sources:
    """What the generators read beyond the code: the environments and, for the access
    tables, the first environment's synthesized stacks (``{stack name: json}``), made by
    ``synthesize`` (the test session's synth) or here on first use."""

    environments: list[EnvironmentConfig]
    synthesize: Callable[[], dict[str, dict]] | None = None

    @cached_property
    def stacks(self) -> dict[str, dict]:
        return (self.synthesize or self._synthesize)()

    def _synthesize(self) -> dict[str, dict]:
        import main as app

        cfg = self.environments[0]
        with tempfile.TemporaryDirectory() as out:
            folder = app.synth(outdir=out, environments=[cfg]) / "stacks"
            return {name: json.loads((folder / name / "cdk.tf.json").read_text())
                    for name in (cfg.name, f"bootstrap-{cfg.name}")}


Generator = Callable[[Sources, Path], str]


def _alerts(sources: Sources, document: Path) -> str:
    from infra.reports.alerts import alerts_table

    in_docs = document.parent.name == "docs"
    runbook = "" if in_docs and document.name == "OPERATIONS.md" else "OPERATIONS.md" if in_docs else "docs/OPERATIONS.md"
    return alerts_table(sources.environments, runbook)


def _log_queries(sources: Sources, document: Path) -> str:
    from infra.reports.alerts import log_queries_table

    return log_queries_table()


def _access(table: str) -> Generator:
    def generate(sources: Sources, document: Path) -> str:
        from infra.reports.access import report

        return getattr(report(sources.stacks, sources.environments[0]), table)()

    return generate


def _cost(sources: Sources, document: Path) -> str:
    from infra.reports.cost import table

    return table(sources.environments)


def _cost_summary(sources: Sources, document: Path) -> str:
    from infra.reports.cost import summary_table

    return summary_table(sources.environments)


def _cost_other_mode(sources: Sources, document: Path) -> str:
    from infra.reports.cost import table

    return table([cfg.other_mode() for cfg in sources.environments])


def _cost_storage_write(sources: Sources, document: Path) -> str:
    from infra.reports.cost import storage_write_table

    return storage_write_table()


def _deploy_settings(sources: Sources, document: Path) -> str:
    from infra.environments import settings_table

    return settings_table(sources.environments)


def _job_options(sources: Sources, document: Path) -> str:
    from jobs.config import options_table

    return options_table()


def _up_options(sources: Sources, document: Path) -> str:
    from cryptopipe.cli import options_table

    return options_table("up")


def _producer_variables(sources: Sources, document: Path) -> str:
    from producer.config import variables_table

    return variables_table()


#: Each generated section's name and the generator that writes it.
SECTIONS: dict[str, Generator] = {
    "alerts": _alerts,
    "log-queries": _log_queries,
    "access:capabilities": _access("capabilities"),
    "access:grants": _access("grants"),
    "cost": _cost,
    "cost-other-mode": _cost_other_mode,
    "cost-summary": _cost_summary,
    "cost-storage-write": _cost_storage_write,
    "deploy-settings": _deploy_settings,
    "job-options": _job_options,
    "up-options": _up_options,
    "producer-variables": _producer_variables,
}


def documents(root: Path = ROOT) -> list[Path]:
    """The documents that may carry generated sections."""
    return [root / "README.md", root / "SECURITY.md", *sorted((root / "docs").glob("*.md"))]


def regenerate(document: Path, sources: Sources) -> str:
    """``document``'s text with every generated section written anew; ValueError for a section no generator writes."""
    text = document.read_text()
    for name in section_names(text):
        if name not in SECTIONS:
            raise ValueError(f"{document.name}: no generator writes the section <!-- {name} -->")
        text = splice(text, name, SECTIONS[name](sources, document))
    return text


def stale(sources: Sources, root: Path = ROOT) -> dict[Path, str]:
    """Each document whose generated sections differ from the code, with its text as it should be."""
    regenerated = {document: regenerate(document, sources) for document in documents(root)}
    return {document: text for document, text in regenerated.items() if text != document.read_text()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/docs.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only name the stale documents; exit 1 if any")
    args = parser.parse_args(argv)
    found = stale(Sources(load_environments()))
    for document, text in found.items():
        if not args.check:
            document.write_text(text)
        print(f"docs: {'stale' if args.check else 'rewrote'} {document.relative_to(ROOT)}", file=sys.stderr)
    return 1 if args.check and found else 0


if __name__ == "__main__":
    sys.exit(main())
