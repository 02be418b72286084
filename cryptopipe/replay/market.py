"""The bundled market: a CoinGecko ``/coins/markets`` snapshot, and how it moves.

Provenance: ``data/coins.json`` is synthetic, modelled on the API's shape; it is not
market history. About 130 well-known coins carry their real ids, symbols and names,
with prices and supplies hand-approximated to mid-2025 levels; the long tail (about
190 coins) was generated with plausible names and magnitudes. Every record has the
exact shape of ``GET /api/v3/coins/markets``: the same fields in the same order,
whole numbers sent as JSON integers, ``last_updated`` in ISO-8601 UTC with
milliseconds. The file is the source of truth: edit it by hand.

The snapshot keeps on purpose the quirks a consumer of the real API must survive:

- nulls in ``fully_diluted_valuation``, ``max_supply``, ``roi`` and ``market_cap_rank``
  (unranked coins with an unverified supply report a market cap of 0);
- tiny prices such as ``1.2e-08``, and prices that are JSON integers (``104512``);
- thin coins, whose ``last_updated`` is hours old at the snapshot: they never change,
  so their ``last_updated`` stays hours old in every frame;
- exactly one dead coin (``orbis-legacy``) whose ``current_price`` is null.

How it moves: frame ``k`` is a pure function of the snapshot and ``k`` (plus the
frame spacing, which sets how much market time a frame covers). Each live coin's
log-price follows its own seeded Gaussian random walk, with the daily volatility
its 24 h change in the snapshot suggests; highs, lows, 24 h changes, market caps
and ROI follow the price. The walk is built by Brownian-bridge refinement rather
than step by step, so any frame costs a few dozen draws per coin and frame 10**6
is as cheap as frame 1.

At scale (:meth:`Market.synthetic`, e.g. 18,000 coins, CoinGecko's whole listing): the
bundled coins are cloned under new ids, names and symbols, each clone scaled by its own
seeded factor (market cap, volume, supplies; the price is the template's), so the same
shape and quirks recur through the listing: null ranks and caps of 0 in its tail, thin
coins, dead coins (one per copy of the snapshot), short last pages. A clone moves on its
template's walk (the walks are the cost of a frame: 18,000 own walks would take about
5 s a frame), so clones of one template keep their order while coins of different
templates change rank, and pages, between frames.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache, lru_cache
from importlib import resources
from statistics import NormalDist
from typing import Any, Final

from core.timefmt import utc_millis

#: The fields of a ``/coins/markets`` record, in the order CoinGecko sends them.
FIELDS: Final = (
    "id",
    "symbol",
    "name",
    "image",
    "current_price",
    "market_cap",
    "market_cap_rank",
    "fully_diluted_valuation",
    "total_volume",
    "high_24h",
    "low_24h",
    "price_change_24h",
    "price_change_percentage_24h",
    "market_cap_change_24h",
    "market_cap_change_percentage_24h",
    "circulating_supply",
    "total_supply",
    "max_supply",
    "ath",
    "ath_change_percentage",
    "ath_date",
    "atl",
    "atl_change_percentage",
    "atl_date",
    "roi",
    "last_updated",
)

#: Units of a quote currency per US dollar. Fixed (mid-2025 levels) so that a replayed
#: frame never depends on a live exchange-rate feed, and every currency's prices are the
#: US-dollar market times one number, so they agree with each other. ``btc`` is the
#: snapshot's bitcoin price: bitcoin starts at 1 BTC, then moves with its dollar walk (on
#: CoinGecko it stays at 1).
RATES: Final = {"usd": 1.0, "eur": 0.88, "gbp": 0.74, "jpy": 144.0, "btc": 1 / 104_512}

#: A coin whose ``last_updated`` is older than this at the snapshot is thin: frozen.
STALE_AFTER: Final = timedelta(hours=1)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
_DAY_MS = 86_400_000
# CoinGecko refreshes a coin about once a minute: a live coin's last_updated trails
# its frame's time by less than that (and by less than one frame).
_MAX_LAG_MS = 60_000
# Frames per random-walk block; a block's end points are drawn directly, the frames
# inside by bridge refinement (2**20 frames is 12 days at 1 s a frame).
_BLOCK = 1 << 20
_NORMAL = NormalDist()

_PRICE_FIELDS = ("current_price", "high_24h", "low_24h", "ath", "atl", "price_change_24h")
_WHOLE_FIELDS = ("market_cap", "fully_diluted_valuation", "total_volume")
_PERCENT_FIELDS = (
    "price_change_percentage_24h",
    "market_cap_change_percentage_24h",
    "ath_change_percentage",
    "atl_change_percentage",
)


def _to_ms(timestamp: str) -> int:
    return (datetime.fromisoformat(timestamp) - _EPOCH) // _MS


def _to_iso(ms: int) -> str:
    return utc_millis(_EPOCH + ms * _MS)


def _significant(value: float | None, digits: int) -> float | int | None:
    """Round like CoinGecko: a few significant digits, whole numbers as JSON integers."""
    if value is None:
        return None
    rounded = float(f"{value:.{digits}g}")
    return int(rounded) if rounded.is_integer() else rounded


def _uniform(*key: object) -> float:
    """A number in (0, 1) that is a pure function of ``key``, in any process."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2**64


def _normal(*key: object) -> float:
    return _NORMAL.inv_cdf(_uniform(*key))


@lru_cache(maxsize=1 << 14)  # a synthetic market's clones share their template's walks
def _walk(key: str, n: int) -> float:
    """Position after ``n >= 0`` unit-variance Gaussian steps of the walk named ``key``.

    The end points of each block of ``_BLOCK`` steps are drawn directly; inside a
    block, the midpoint of an interval is drawn from the Brownian bridge between its
    ends, halving the interval until it lands on ``n``. The result has exactly the
    distribution of a step-by-step walk at O(log n) cost.
    """
    block, offset = divmod(n, _BLOCK)
    lo_value = math.sqrt(_BLOCK) * sum(_normal(key, b) for b in range(block))
    hi_value = lo_value + math.sqrt(_BLOCK) * _normal(key, block)
    lo, hi = 0, _BLOCK
    while lo < offset < hi:
        mid = (lo + hi) // 2
        mid_value = (lo_value + hi_value) / 2 + math.sqrt((hi - lo) / 4) * _normal(key, block, mid)
        if offset < mid:
            hi, hi_value = mid, mid_value
        else:
            lo, lo_value = mid, mid_value
    return lo_value if offset == lo else hi_value


@dataclass(frozen=True)
class _Coin:
    """One snapshot record and what its movement needs, precomputed."""

    record: Mapping[str, Any]
    key: str
    """Names the coin's random walks; carries the market's seed."""
    live: bool
    """False for thin and dead coins: they repeat their snapshot record in every frame."""
    lag_key: str = ""
    """Names the draws of its ``last_updated`` lag; empty: ``key`` (a clone's own, its walk its template's)."""

    @property
    def price(self) -> float:
        return self.record["current_price"]

    @property
    def price_24h_ago(self) -> float:
        return self.price / (1 + self.record["price_change_percentage_24h"] / 100)

    @property
    def daily_sigma(self) -> float:
        # The snapshot's 24 h move stands in for the coin's daily volatility; the floor
        # keeps stablecoins moving a little.
        return max(abs(self.record["price_change_percentage_24h"]), 0.01) / 100

    def log_price(self, k: int, window: int) -> float:
        """Log-price ``k`` frames after the snapshot (before it for a negative ``k``).

        The day before the snapshot is a Brownian bridge from the price 24 h ago to
        the snapshot price, so a frame's 24 h change agrees with the snapshot's at
        frame 0 and with the walk afterwards.
        """
        sigma = self.daily_sigma / math.sqrt(window)
        if k < -window:  # further back than the bridge: a walk of its own, backwards from there
            return self.log_price(-window, window) + sigma * _walk(self.key + "<<", -window - k)
        if k >= 0:
            return math.log(self.price) + sigma * _walk(self.key, k)
        j = k + window
        start, end = math.log(self.price_24h_ago), math.log(self.price)
        back = self.key + "<"
        bridge = _walk(back, j) - j / window * _walk(back, window)
        return start + j / window * (end - start) + sigma * bridge

    def at(self, k: int, frame_ms: int, time_ms: int) -> dict[str, Any]:
        """The record in US dollars at frame ``k``, unrounded, timestamps unshifted."""
        if not self.live:
            return dict(self.record)
        window = max(1, round(_DAY_MS / frame_ms))
        snap = self.record
        price = math.exp(self.log_price(k, window))
        ago = math.exp(self.log_price(k - window, window))
        ratio = price / self.price
        change = price / ago - 1
        high_ratio = max(1.0, snap["high_24h"] / max(self.price, self.price_24h_ago))
        low_ratio = min(1.0, snap["low_24h"] / min(self.price, self.price_24h_ago))
        updated = time_ms - math.floor(_uniform(self.lag_key or self.key, "lag", k) * min(frame_ms, _MAX_LAG_MS))
        market_cap = snap["market_cap"] * ratio
        ath, atl = max(snap["ath"], price), min(snap["atl"], price)
        roi = snap["roi"]
        if roi is not None:
            times = (1 + roi["times"]) * ratio - 1
            roi = {"times": times, "currency": roi["currency"], "percentage": times * 100}
        fdv = snap["fully_diluted_valuation"]
        return {
            **snap,
            "current_price": price,
            "market_cap": market_cap,
            "fully_diluted_valuation": None if fdv is None else fdv * ratio,
            "total_volume": snap["total_volume"] * ratio,
            "high_24h": max(price, ago) * high_ratio,
            "low_24h": min(price, ago) * low_ratio,
            "price_change_24h": price - ago,
            "price_change_percentage_24h": 100 * change,
            "market_cap_change_24h": market_cap * change / (1 + change),
            "market_cap_change_percentage_24h": 100 * change if market_cap else 0,
            "ath": ath,
            "ath_change_percentage": 100 * (price / ath - 1),
            "ath_date": _to_iso(updated) if price > snap["ath"] else snap["ath_date"],
            "atl": atl,
            "atl_change_percentage": 100 * (price / atl - 1),
            "atl_date": _to_iso(updated) if price < snap["atl"] else snap["atl_date"],
            "roi": roi,
            "last_updated": _to_iso(updated),
        }


def chart_step(span: timedelta) -> timedelta:
    """CoinGecko's automatic granularity of ``market_chart/range`` for a range this long."""
    if span <= timedelta(days=1):
        return timedelta(minutes=5)
    if span <= timedelta(days=90):
        return timedelta(hours=1)
    return timedelta(days=1)


def _by_rank(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (row["market_cap_rank"] is None, row["market_cap_rank"] or 0, row["id"])


def _by_volume(sign: int) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    # Coins without a volume come last in both directions.
    return lambda row: (row["total_volume"] is None, sign * (row["total_volume"] or 0), row["id"])


# Each order as (sort key, reverse the sorted list).
_ORDERINGS: dict[str, tuple[Callable[[Mapping[str, Any]], Any], bool]] = {
    "market_cap_desc": (_by_rank, False),
    "market_cap_asc": (_by_rank, True),
    "volume_desc": (_by_volume(-1), False),
    "volume_asc": (_by_volume(1), False),
    "id_asc": (lambda row: row["id"], False),
    "id_desc": (lambda row: row["id"], True),
}

#: The ``order`` values ``/coins/markets`` accepts; the first is the API's default.
ORDERS: Final = tuple(_ORDERINGS)


def _render(row: Mapping[str, Any], rate: float, shift_ms: int) -> dict[str, Any]:
    """Convert to the quote currency, round like CoinGecko and shift the timestamps."""
    out = {name: row[name] for name in FIELDS}
    for name in _PRICE_FIELDS:
        out[name] = _significant(None if row[name] is None else row[name] * rate, 6)
    for name in _WHOLE_FIELDS:
        # Whole units, except in a currency worth more than a hundred dollars (btc), where a
        # small coin's cap would round to nothing: there CoinGecko sends fractions too.
        out[name] = None if row[name] is None else round(row[name] * rate) if rate > 0.01 else _significant(
            row[name] * rate, 10)
    change = row["market_cap_change_24h"]
    out["market_cap_change_24h"] = _significant(None if change is None else change * rate, 10)
    for name in _PERCENT_FIELDS:
        out[name] = None if row[name] is None else round(row[name], 5)
    for name in ("ath_date", "atl_date", "last_updated"):
        out[name] = _to_iso(_to_ms(row[name]) + shift_ms)
    return out


class Market:
    """A snapshot of ``/coins/markets`` records and its frames.

    Usage::

        market = Market.bundled()
        records = market.frame(3, "eur")  # what the API would send at frame 3
    """

    def __init__(self, snapshot: Mapping[str, Any], *, seed: int = 0) -> None:
        """``snapshot`` is ``{"as_of": ISO-8601, "coins": [records]}``; ``seed`` picks the walks.
        A record may name the coin whose walk it follows in ``"_walk_of"`` (a synthetic clone's
        template; the field is not served)."""
        self.as_of: datetime = datetime.fromisoformat(snapshot["as_of"])
        self._as_of_ms = _to_ms(snapshot["as_of"])
        stale_before = self._as_of_ms - STALE_AFTER // _MS
        self._coins = tuple(
            _Coin(
                record={name: value for name, value in record.items() if name != "_walk_of"},
                key=f"{seed}:{record.get('_walk_of', record['id'])}",
                live=record["current_price"] is not None and _to_ms(record["last_updated"]) >= stale_before,
                lag_key=f"{seed}:{record['id']}" if "_walk_of" in record else "",
            )
            for record in snapshot["coins"]
        )
        self._lock = threading.Lock()
        # Computing a frame takes tens of milliseconds (seconds at 18,000 coins) and a frame
        # is polled many times as long as it is current: keep the last few, and each one's
        # order. Rendering (currency, rounding, times) is left to each request, for its page
        # alone: it costs the same over a frame's pages, and cached renderings of whole
        # frames in every currency held most of the replay's memory at 18,000 coins.
        self._rows = lru_cache(maxsize=8)(self._compute_rows)
        self._ordered = lru_cache(maxsize=8)(self._order_rows)

    @classmethod
    @cache
    def bundled(cls) -> Market:
        """The market in ``data/coins.json``, loaded once per process."""
        text = resources.files(__package__).joinpath("data/coins.json").read_text(encoding="utf-8")
        return cls(json.loads(text))

    @classmethod
    def synthetic(cls, coins: int, *, seed: int = 0) -> Market:
        """A market of ``coins`` coins made from the bundled snapshot (module docstring): its
        ranked coins first, cloned in turn, then its unranked tail in the same share; the
        first copy keeps the bundled ids. Deterministic in ``coins`` and ``seed``."""
        if coins < 1:
            raise ValueError(f"a market needs at least one coin, got {coins}")
        text = resources.files(__package__).joinpath("data/coins.json").read_text(encoding="utf-8")
        snapshot = json.loads(text)
        ranked = [r for r in snapshot["coins"] if r["market_cap_rank"] is not None]
        unranked = [r for r in snapshot["coins"] if r["market_cap_rank"] is None]
        tail = round(coins * len(unranked) / len(snapshot["coins"]))
        made = [_clone(ranked[i % len(ranked)], i // len(ranked), seed) for i in range(coins - tail)]
        made += [_clone(unranked[i % len(unranked)], i // len(unranked), seed) for i in range(tail)]
        return cls({**snapshot, "coins": made}, seed=seed)

    @property
    def ids(self) -> tuple[str, ...]:
        """Every coin id, in snapshot order."""
        return tuple(coin.record["id"] for coin in self._coins)

    @property
    def frozen_ids(self) -> tuple[str, ...]:
        """Ids of the thin and dead coins: their records never change, apart from their rank."""
        return tuple(coin.record["id"] for coin in self._coins if not coin.live)

    def chart(
        self,
        coin_id: str,
        vs_currency: str,
        start: datetime,
        end: datetime,
        *,
        now: datetime,
        frame_seconds: float = 60.0,
        shift: timedelta = timedelta(0),
    ) -> dict[str, list[list[float]]] | None:
        """``/coins/{id}/market_chart/range``: the coin's prices, market caps and volumes
        from ``start`` to ``end`` (both included, never past ``now``); None for an unknown coin.

        Granularity as CoinGecko's: a point every :func:`chart_step` (5 minutes within a
        day, hourly up to 90 days, daily beyond) on multiples of the step since the epoch.
        Each point is the frame current at its time (before the snapshot too: the walk
        goes on backwards), so a point and a poll of the same frame agree; a thin coin's
        values never change; the dead coin has no points.
        """
        coin = next((c for c in self._coins if c.record["id"] == coin_id), None)
        if coin is None:
            return None
        chart: dict[str, list[list[float]]] = {"prices": [], "market_caps": [], "total_volumes": []}
        if coin.record["current_price"] is None:
            return chart
        step_ms = chart_step(end - start) // _MS
        frame_ms = round(frame_seconds * 1000)
        base_ms = self._as_of_ms + shift // _MS
        rate = RATES[vs_currency]
        first = -(-((start - _EPOCH) // _MS) // step_ms) * step_ms
        last = (min(end, now) - _EPOCH) // _MS
        for at_ms in range(first, last + 1, step_ms):
            k = (at_ms - base_ms) // frame_ms
            row = coin.at(k, frame_ms, self._as_of_ms + k * frame_ms)
            chart["prices"].append([at_ms, _significant(row["current_price"] * rate, 6)])
            for name, key in (("market_caps", "market_cap"), ("total_volumes", "total_volume")):
                chart[name].append([at_ms, None if row[key] is None else round(row[key] * rate)])
        return chart

    def frame(
        self,
        k: int,
        vs_currency: str = "usd",
        *,
        order: str = "market_cap_desc",
        frame_seconds: float = 60.0,
        shift: timedelta = timedelta(0),
        start: int = 0,
        stop: int | None = None,
    ) -> list[dict[str, Any]]:
        """Every coin's record at frame ``k``, as ``/coins/markets`` would send it
        (``[start:stop]`` of them: a page copies only its own).

        - ``vs_currency``: a key of :data:`RATES`.
        - ``order``: one of :data:`ORDERS`. Ranks are recomputed from each frame's market
          caps, so a coin can change rank (and page) between frames, as on CoinGecko.
        - ``frame_seconds``: event time between frames; frame ``k`` is at
          ``as_of + k * frame_seconds`` and live coins' ``last_updated`` trail it
          by under a minute (and under a frame).
        - ``shift``: added to every timestamp (a server rebasing frame 0 to "now").
        """
        if k < 0:
            raise ValueError(f"frame must be >= 0, got {k}")
        if vs_currency not in RATES:
            raise ValueError(f"vs_currency {vs_currency!r} is not supported; expected one of {sorted(RATES)}")
        if order not in _ORDERINGS:
            raise ValueError(f"order {order!r} is not supported; expected one of {list(ORDERS)}")
        frame_ms = round(frame_seconds * 1000)
        if frame_ms < 1:
            raise ValueError(f"frame_seconds must be at least 0.001, got {frame_seconds}")
        with self._lock:  # concurrent requests of a new frame compute it once
            rows = self._ordered(k, frame_ms, order)
        rate, shift_ms = RATES[vs_currency], shift // _MS
        records = [_render(row, rate, shift_ms) for row in rows[start:stop]]
        for record in records:  # the cached row's own dict must not reach a caller
            record["roi"] = record["roi"] and dict(record["roi"])
        return records

    def _order_rows(self, k: int, frame_ms: int, order: str) -> tuple[Mapping[str, Any], ...]:
        """Frame ``k``'s rows in ``order``; cached, never mutated."""
        key, reverse = _ORDERINGS[order]
        rows = sorted(self._rows(k, frame_ms), key=key)
        if reverse:
            rows.reverse()
        return tuple(rows)

    def _compute_rows(self, k: int, frame_ms: int) -> tuple[Mapping[str, Any], ...]:
        """Every coin at frame ``k`` in US dollars, ranked; cached per instance, never mutated."""
        time_ms = self._as_of_ms + k * frame_ms
        rows = [coin.at(k, frame_ms, time_ms) for coin in self._coins]
        ranked = sorted(
            (row for row in rows if row["market_cap_rank"] is not None),
            key=lambda row: (-row["market_cap"], row["id"]),
        )
        for rank, row in enumerate(ranked, start=1):
            row["market_cap_rank"] = rank
        return tuple(rows)


#: Fields a clone scales by its factor: what depends on how many coins exist, not on the price.
_SCALED = ("market_cap", "fully_diluted_valuation", "total_volume", "market_cap_change_24h",
           "circulating_supply", "total_supply", "max_supply")


def _clone(template: Mapping[str, Any], copy: int, seed: int) -> dict[str, Any]:
    """Copy ``copy`` of a bundled record: copy 0 is the record itself; later copies get their
    own id, name and symbol and a seeded factor of 10**-3 to 1 on the sizes (a long tail of
    smaller coins), and follow the template's walk."""
    if copy == 0:
        return dict(template)
    coin_id = f"{template['id']}-{copy}"
    factor = 10 ** (-3 * _uniform(seed, coin_id, "scale"))
    record = {**template, "id": coin_id, "symbol": f"{template['symbol']}{copy}",
              "name": f"{template['name']} {copy}", "_walk_of": template["id"]}
    for name in _SCALED:
        value = template[name]
        if value is not None:
            record[name] = round(value * factor) if isinstance(value, int) else value * factor
    return record


def frame(k: int, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Frame ``k`` of the bundled market; arguments as for :meth:`Market.frame`."""
    return Market.bundled().frame(k, *args, **kwargs)
