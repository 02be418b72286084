"""The subset of Cloud Logging's query language the alerts' metrics use, evaluated on log entries.

A hand-written stand-in (no emulator of Cloud Logging exists): it implements the
documented meaning of what cdktf/infra/monitoring/log_metrics.py writes and refuses anything else, so
a filter growing a construct this does not know fails loudly instead of being guessed.

- ``a.b="text"``: the field equals the text; ``a.b:"text"``: the field contains it
  (Logging's ``:`` is a substring match on strings);
- ``log_id("name")``: the entry's ``logName`` ends in ``/logs/`` and the URL-encoded name;
- ``AND``, ``OR`` (upper case, as Logging requires) and parentheses.

Not faithful: Logging's implicit AND, ``NOT``, comparisons, regular expressions and
its case-insensitive ``:`` on some fields are not implemented (none is used).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

_TOKEN = re.compile(r'\s*(?:(?P<open>\()|(?P<close>\))|(?P<op>AND|OR)\b|(?P<logid>log_id\((?P<name>"(?:[^"\\]|\\.)*")\))'
                    r'|(?P<field>[A-Za-z_][A-Za-z0-9_.]*)(?P<cmp>[=:])(?P<value>"(?:[^"\\]|\\.)*"))')


def matches(filter_: str, entry: dict[str, Any]) -> bool:
    """Whether ``entry`` (a LogEntry as JSON) passes ``filter_``."""
    tokens = _tokens(filter_)
    result, rest = _or(tokens, entry)
    if rest:
        raise ValueError(f"unexpected {rest[0]} in {filter_!r}")
    return result


def _tokens(filter_: str) -> list[re.Match[str]]:
    found, position = [], 0
    while position < len(filter_.rstrip()):
        match = _TOKEN.match(filter_, position)
        if match is None:
            raise ValueError(f"not in the supported subset at {filter_[position:]!r}")
        found.append(match)
        position = match.end()
    return found


def _or(tokens: list, entry: dict) -> tuple[bool, list]:
    result, tokens = _and(tokens, entry)
    while tokens and tokens[0]["op"] == "OR":
        right, tokens = _and(tokens[1:], entry)
        result = result or right
    return result, tokens


def _and(tokens: list, entry: dict) -> tuple[bool, list]:
    result, tokens = _atom(tokens, entry)
    while tokens and tokens[0]["op"] == "AND":
        right, tokens = _atom(tokens[1:], entry)
        result = result and right
    return result, tokens


def _atom(tokens: list, entry: dict) -> tuple[bool, list]:
    token = tokens[0]
    if token["open"]:
        result, rest = _or(tokens[1:], entry)
        if not rest or not rest[0]["close"]:
            raise ValueError("unbalanced parenthesis")
        return result, rest[1:]
    if token["logid"]:
        name = json.loads(token["name"])
        return entry.get("logName", "").endswith(f"/logs/{quote(name, safe='')}"), tokens[1:]
    if token["field"]:
        value = _field(entry, token["field"])
        text = json.loads(token["value"])
        if not isinstance(value, str):
            return False, tokens[1:]
        return (value == text if token["cmp"] == "=" else text in value), tokens[1:]
    raise ValueError(f"unexpected {token.group(0)!r}")


def _field(entry: dict, path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def extract(extractor: str, entry: dict[str, Any]) -> str | None:
    """``REGEXP_EXTRACT(field, "pattern")``: the pattern's one group in the field, or None."""
    found = re.fullmatch(r'REGEXP_EXTRACT\((?P<field>[A-Za-z_.]+), (?P<pattern>"(?:[^"\\]|\\.)*")\)', extractor)
    if found is None:
        raise ValueError(f"not a supported extractor: {extractor!r}")
    value = _field(entry, found["field"])
    hit = re.search(json.loads(found["pattern"]), value) if isinstance(value, str) else None
    return hit.group(1) if hit else None
