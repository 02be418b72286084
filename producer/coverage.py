"""What has been back-filled, per coin and currency, so overlapping back-fills land each point once.

The stream does not de-duplicate back-filled rows (they are older than its watermark),
and a back-fill's marker is keyed by its exact range, so two different but
overlapping ranges would land their overlap twice. The producer therefore keeps, per
coin and currency, the time spans it has back-filled, and a new task is clipped to
the parts not yet covered (docs/PRODUCER.md "Back-fill").

Spans are closed intervals of whole milliseconds, the resolution of a chart point's
timestamp, so "after the end of a covered span" is exactly ``end + 1`` and clipped
pieces never share a point. The state lives in one JSON file, replaced atomically:

- ``covered``: ``{currency: {coin id: [[first ms, last ms], …]}}``, merged and sorted;
- ``spooling``: ``{poll id: [coin id, currency, first ms, last ms]}``, a piece that is
  being written to the spool. It is written before the spool entry and moved to
  ``covered`` after it, so a crash in between is settled on the next start: a piece
  whose object was spooled (or landed) is covered, one that never reached the spool is
  forgotten and fetched again (:meth:`Coverage.settle`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from producer.files import replace_json

#: A closed span of unix milliseconds: ``(first, last)``, both included.
Span = tuple[int, int]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def span_of(start: datetime, end: datetime) -> Span:
    """The whole milliseconds from ``start`` to ``end``, both included."""
    return -(-(start - _EPOCH) // _MS), (end - _EPOCH) // _MS


def moment(ms: int) -> datetime:
    return _EPOCH + ms * _MS


def merged(spans: list[Span]) -> list[Span]:
    """``spans`` sorted, with overlapping and touching spans joined."""
    out: list[Span] = []
    for first, last in sorted(spans):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def uncovered(span: Span, covered: list[Span]) -> list[Span]:
    """The parts of ``span`` outside every span of ``covered`` (merged), in time order."""
    first, last = span
    pieces: list[Span] = []
    for done_first, done_last in covered:
        if done_last < first:
            continue
        if done_first > last:
            break
        if done_first > first:
            pieces.append((first, done_first - 1))
        first = done_last + 1
        if first > last:
            return pieces
    return [*pieces, (first, last)]


class Coverage:
    """The spans back-filled so far, durable in one file (under the back-fill's lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"covered": {}, "spooling": {}}

    def covered(self, coin_id: str, vs_currency: str) -> list[Span]:
        return [tuple(span) for span in self._read()["covered"].get(vs_currency, {}).get(coin_id, [])]

    def add(self, coin_id: str, vs_currency: str, span: Span) -> None:
        """Record ``span`` as back-filled (its object is spooled or landed)."""
        state = self._read()
        self._cover(state, coin_id, vs_currency, span)
        replace_json(self.path, state)

    def begin(self, poll_id: str, coin_id: str, vs_currency: str, span: Span) -> None:
        """Note that ``poll_id`` is about to be spooled: still uncovered until :meth:`finish`."""
        state = self._read()
        state["spooling"][poll_id] = [coin_id, vs_currency, *span]
        replace_json(self.path, state)

    def finish(self, poll_id: str) -> None:
        """``poll_id`` is in the spool: its span is covered, in the same write that ends its note."""
        state = self._read()
        coin_id, vs_currency, first, last = state["spooling"].pop(poll_id)
        self._cover(state, coin_id, vs_currency, (first, last))
        replace_json(self.path, state)

    def settle(self, landed_or_spooled: Callable[[str], bool]) -> None:
        """After a crash between :meth:`begin` and :meth:`finish`: cover what reached the spool, forget the rest."""
        state = self._read()
        if not state["spooling"]:
            return
        for poll_id, (coin_id, vs_currency, first, last) in list(state["spooling"].items()):
            if landed_or_spooled(poll_id):
                self._cover(state, coin_id, vs_currency, (first, last))
            del state["spooling"][poll_id]
        replace_json(self.path, state)

    @staticmethod
    def _cover(state: dict, coin_id: str, vs_currency: str, span: Span) -> None:
        coins = state["covered"].setdefault(vs_currency, {})
        coins[coin_id] = [list(s) for s in merged([*(tuple(s) for s in coins.get(coin_id, [])), span])]
