"""Search and sort of the latest-prices table, over one answer of the ``LATEST`` query.

Done here rather than in SQL: every search and sort is a different view of the same
(at most 250) rows, so they all share one cached warehouse read. In SQL each keystroke
in the search box would be another query, and on BigQuery another bill.

::

    order = Ordering.parse(sort="change_24h", order=None)   # 24 h change, highest first
    rows = order.apply(matching(rows, "eth"))
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptopipe.dashboard.errors import BadRequest

Row = Mapping[str, Any]

#: Sort name (the API's and the page's) -> (column, whether its natural order is descending).
#: Rank reads best ascending; for the others the biggest, or newest, first is what one looks for.
SORTS: dict[str, tuple[str, bool]] = {
    "rank": ("market_cap_rank", False),
    "price": ("price", True),
    "change_24h": ("price_change_percentage_24h", True),
    "market_cap": ("market_cap", True),
    "updated": ("last_updated", True),
}
DEFAULT_SORT = "rank"
ORDERS = ("asc", "desc")
#: Longest search accepted: longer than any coin's name, short enough to refuse junk.
MAX_SEARCH_CHARS = 64


@dataclass(frozen=True)
class Ordering:
    """A sort of the table: which column, and which way."""

    sort: str
    order: str

    @classmethod
    def parse(cls, sort: str | None, order: str | None) -> Ordering:
        """The ordering for the API's ``sort`` and ``order``; :class:`BadRequest` names a bad value.

        Without ``order``, each column sorts its natural way (:data:`SORTS`).
        """
        sort = sort or DEFAULT_SORT
        if sort not in SORTS:
            raise BadRequest(f"sort {sort!r} is not one of {', '.join(SORTS)}")
        if order is None:
            order = "desc" if SORTS[sort][1] else "asc"
        if order not in ORDERS:
            raise BadRequest(f"order {order!r} is not one of {', '.join(ORDERS)}")
        return cls(sort, order)

    def apply(self, rows: Iterable[Row]) -> list[Row]:
        """``rows`` in this order. Coins without a value come last either way, and ties keep
        the order they came in (by market-cap rank), so the table does not reshuffle itself
        between refreshes."""
        column = SORTS[self.sort][0]
        present, missing = [], []
        for row in rows:
            (missing if _missing(row[column]) else present).append(row)
        present.sort(key=lambda row: row[column], reverse=self.order == "desc")  # stable, reversed too
        return present + missing


def matching(rows: Iterable[Row], q: str | None) -> list[Row]:
    """The rows whose name or symbol contains ``q``, ignoring case; all of them without ``q``.

    Raises :class:`BadRequest` for a search longer than :data:`MAX_SEARCH_CHARS`.
    """
    needle = (q or "").strip().casefold()
    if len(needle) > MAX_SEARCH_CHARS:
        raise BadRequest(f"q is {len(needle)} characters long; search with at most {MAX_SEARCH_CHARS}")
    if not needle:
        return list(rows)
    return [row for row in rows if needle in row["name"].casefold() or needle in row["symbol"].casefold()]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))
