"""Landing files for the benchmarks, written fast and named as the producer names them.

Rows come from the bundled replay market (frame 0), validated by the producer's own
:func:`producer.validate.validate_records`, so every line is one the stream accepts.
Each file gets its own ``last_updated`` (one second apart), so no row is a duplicate
of another and the warehouse must end up with exactly ``files x rows`` ticks.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from core.timefmt import utc_millis
from producer.landing import new_poll_id, object_name

_LU, _IA, _PID = "@@LAST_UPDATED@@", "@@INGESTED_AT@@", "@@POLL_ID@@"


def line_templates(rows: int) -> list[str]:
    """``rows`` valid landing lines with placeholders for times and poll id."""
    from cryptopipe.replay.market import frame
    from producer.validate import validate_records

    now = datetime.now(timezone.utc)
    records = frame(0)
    accepted = validate_records(records, vs_currency="usd", ingested_at=now, poll_id="x").accepted
    if len(accepted) < rows:
        raise ValueError(f"the bundled market has {len(accepted)} valid coins, fewer than {rows}")
    lines = []
    for record in accepted[:rows]:
        record = {**record, "last_updated": _LU, "ingested_at": _IA, "poll_id": _PID}
        lines.append(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
    return lines


def write_polls(
    landing: Path, count: int, rows: int, *, start: datetime | None = None, step: timedelta = timedelta(seconds=1)
) -> list[Path]:
    """Write ``count`` poll files of ``rows`` lines each under ``landing``; return their paths.

    Poll ``i`` is at ``start + i * step`` (default: ``count`` steps before now), which is
    its ``last_updated``, ``ingested_at`` and the time in its name. Written to a hidden
    temp name and renamed, as the producer does (Spark must never see a partial file).
    """
    template = "\n".join(line_templates(rows)) + "\n"
    start = start or (datetime.now(timezone.utc) - count * step - timedelta(minutes=1))
    paths = []
    made: set[Path] = set()
    for i in range(count):
        at = start + i * step
        poll_id = new_poll_id(at)
        stamp = utc_millis(at)
        text = template.replace(_LU, stamp).replace(_IA, stamp).replace(_PID, poll_id)
        target = landing / object_name(poll_id)
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        temp = target.parent / f".{target.name}.tmp"
        temp.write_text(text)
        os.rename(temp, target)
        paths.append(target)
    return paths


def count_files(root: Path) -> int:
    return sum(1 for p in root.rglob("*.ndjson") if not p.name.startswith("."))


class PollWriter:
    """Writes single polls on demand (the growth benchmark's steady trickle)."""

    def __init__(self, rows: int) -> None:
        self.template = "\n".join(line_templates(rows)) + "\n"

    def write(self, landing: Path, at: datetime) -> Path:
        poll_id = new_poll_id(at)
        stamp = utc_millis(at)
        target = landing / object_name(poll_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.parent / f".{target.name}.tmp"
        temp.write_text(self.template.replace(_LU, stamp).replace(_IA, stamp).replace(_PID, poll_id))
        os.rename(temp, target)
        return target
