"""Every table of the docs that restates code is a generated section, and each is what its code writes now.

scripts/docs.py holds the generators (core/docsections.py the markers); here they run on
the test session's synth, so the access tables need no synth of their own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from infra.environments import load_environments

from core.docsections import section_names, splice

from ..conftest import script_module

ROOT = Path(__file__).resolve().parents[2]
#: The sections each document must carry: a table that restates code, written by it.
EXPECTED = {
    "README.md": ["up-options", "cost-summary"],
    "SECURITY.md": ["access:capabilities"],
    "docs/DEPLOY.md": ["alerts", "cost", "cost-other-mode", "cost-storage-write", "deploy-settings", "access:capabilities",
                       "access:grants"],
    "docs/OPERATIONS.md": ["alerts", "log-queries"],
    "docs/PRODUCER.md": ["producer-variables"],
    "docs/STREAM.md": ["job-options", "cost-storage-write"],
}


DOCS = script_module("docs")


@pytest.fixture(scope="module")
def sources(stacks, bootstrap_stacks):
    environments = load_environments()
    first = environments[0].name
    return DOCS.Sources(environments, synthesize=lambda: {first: stacks[first].json,
                                                          f"bootstrap-{first}": bootstrap_stacks[first].json})


def test_every_generated_section_is_what_its_code_writes(sources):
    stale = [str(document.relative_to(ROOT)) for document in DOCS.stale(sources)]
    assert stale == [], "regenerate with: .venv/bin/python scripts/docs.py"


def test_each_table_that_restates_code_is_a_generated_section():
    found = {name: section_names((ROOT / name).read_text()) for name in EXPECTED}
    assert {name: sorted(sections) for name, sections in found.items()} == {
        name: sorted(sections) for name, sections in EXPECTED.items()}
    assert set(DOCS.SECTIONS) == {section for sections in EXPECTED.values() for section in sections}


def test_a_stale_section_is_found_and_rewritten(tmp_path, sources):
    for name in EXPECTED:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    stream = tmp_path / "docs" / "STREAM.md"
    stream.write_text(splice(stream.read_text(), "job-options", "| option | meaning | default |\n|---|---|---|"))
    stale = DOCS.stale(sources, root=tmp_path)
    assert list(stale) == [stream]
    assert stale[stream] == (ROOT / "docs" / "STREAM.md").read_text()


def test_a_section_no_generator_writes_is_refused(tmp_path, sources):
    page = tmp_path / "page.md"
    page.write_text("<!-- no-such-table -->\n<!-- /no-such-table -->\n")
    with pytest.raises(ValueError, match="no generator writes the section <!-- no-such-table -->"):
        DOCS.regenerate(page, sources)


def test_splice_replaces_the_whole_section_and_only_it():
    text = "a\n<!-- t -->\nold\nrows\n<!-- /t -->\nb <!-- t --> inline stays\n"
    assert splice(text, "t", "new\n") == "a\n<!-- t -->\nnew\n<!-- /t -->\nb <!-- t --> inline stays\n"
    assert section_names(text) == ["t"]
    with pytest.raises(ValueError, match="no <!-- u -->"):
        splice(text, "u", "x")
