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


LINK = re.compile(r"\]\(([^)\s]+)\)")


def broken_links(document: Path, root: Path = ROOT) -> list[str]:
    """The relative links of a Markdown ``document`` whose file does not exist under ``root``
    (web addresses and in-page anchors are not followed)."""
    broken = []
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        path = (document.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(root) or not path.exists():
            broken.append(target)
    return broken


def test_every_link_in_the_readme_and_the_docs_resolves():
    documents = [ROOT / "README.md", ROOT / "SECURITY.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert {doc.name: found for doc in documents if (found := broken_links(doc))} == {}


def test_a_link_to_a_missing_file_or_outside_the_repository_is_found(tmp_path):
    (tmp_path / "here.md").write_text("x")
    page = tmp_path / "page.md"
    page.write_text("[ok](here.md) [anchor](here.md#a) [web](https://example.org) [gone](docs/gone.md) [up](../x.md)")
    assert broken_links(page, root=tmp_path) == ["docs/gone.md", "../x.md"]
