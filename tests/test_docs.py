"""The repository stands alone: its citations point into it, and its architecture document exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
CITATION = re.compile(r"ARCHITECTURE(?:\.md)? ?§(\d+)")


def _tracked_texts() -> dict[str, str]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    texts = {}
    for name in names:
        try:
            texts[name] = (ROOT / name).read_text()
        except (UnicodeDecodeError, FileNotFoundError):
            continue
    return texts


def test_every_architecture_citation_names_a_section_of_the_repositorys_document():
    sections = set(re.findall(r"^## (\d+)\. ", ARCHITECTURE.read_text(), re.M))
    cited = {(name, match.group(1), text[max(0, match.start() - 17):match.start()])
             for name, text in _tracked_texts().items() for match in CITATION.finditer(text)}
    assert cited, "nothing cites docs/ARCHITECTURE.md"
    assert [(name, n) for name, n, _ in cited if n not in sections] == []
    # always by its path in this repository
    assert [(name, before) for name, _, before in cited
            if name != "docs/ARCHITECTURE.md" and not before.endswith("docs/")] == []


def test_nothing_cites_a_file_outside_the_repository():
    shared = "sha" + "red"  # spelled apart, so this file does not match itself
    outside = re.compile(rf"\.\./{shared}|{shared}/gcp-iam|{shared}/ARCHITECTURE")
    assert [name for name, text in _tracked_texts().items() if outside.search(text)] == []


def test_the_readme_links_the_architecture():
    assert "(docs/ARCHITECTURE.md)" in (ROOT / "README.md").read_text()
