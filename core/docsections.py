"""Sections of the docs that code writes: one way to mark them, one way to replace them.

A generated section is every line between ``<!-- name -->`` and ``<!-- /name -->``,
each marker on a line of its own. The tables that restate code (options, variables,
alerts, grants, prices) live in such sections, so they are written by the code they
describe: ``scripts/docs.py`` regenerates every section of every document, and
tests/cdktf/test_generated_docs.py fails while any document is stale.
"""

from __future__ import annotations

import re

_OPENING = re.compile(r"^<!-- ([a-z0-9][a-z0-9:-]*) -->$", re.M)


def section_names(text: str) -> list[str]:
    """The names of the generated sections of ``text``, in order."""
    return [name for name in _OPENING.findall(text) if f"<!-- /{name} -->" in text]


def splice(text: str, name: str, body: str) -> str:
    """``text`` with ``body`` as the whole of section ``name``; ValueError if it has no such section."""
    pattern = re.compile(rf"^(<!-- {re.escape(name)} -->\n)(?:.*?\n)?(<!-- /{re.escape(name)} -->)$", re.M | re.S)
    if not pattern.search(text):
        raise ValueError(f"no <!-- {name} --> … <!-- /{name} --> lines")
    return pattern.sub(lambda match: match.group(1) + body.rstrip("\n") + "\n" + match.group(2), text, count=1)


def markdown_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A Markdown table; a ``|`` inside a cell is escaped so it stays one cell."""
    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(row) for row in rows)])
