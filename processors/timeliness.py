"""Decide, per event and from per-partition event time only, whether it is on time, late, a duplicate or a flood.

Only the partition's own history is used (its watermark and each source's recent timestamps, both
committed with the partition's offset), so a replay after a crash makes exactly the same decisions.
"""

from __future__ import annotations

from enum import StrEnum
from itertools import repeat
from operator import sub
from typing import Any

from processors.outcome import window_start_ms

RECENT_KEPT = 16


class Timeliness(StrEnum):
    """What to do with an event given when it was observed."""

    on_time = "on_time"
    out_of_order = "out_of_order"  # older than its source's newest event, but its window is still open
    late = "late"  # its window closed (watermark past window end + grace): to the late topic
    duplicate = "duplicate"  # same source and observed_at as an event already applied
    flood = "flood"  # closer to another event of the same source than the source can report


def classify(
    observed_ms: int,
    seen: dict[str, Any],
    watermark_ms: int,
    window_s: int,
    grace_ms: int,
    min_spacing_ms: int,
) -> tuple[Timeliness, str]:
    """Return the event's timeliness and, unless on time or merely out of order, the reason."""
    window_end = window_start_ms(observed_ms, window_s) + window_s * 1000
    if window_end + grace_ms <= watermark_ms:
        behind = (watermark_ms - observed_ms) / 1000
        return Timeliness.late, (
            f"late: observed {behind:.0f} s behind the partition's event time; its window closed "
            f"{(watermark_ms - window_end - grace_ms) / 1000:.0f} s ago (grace {grace_ms / 1000:g} s)"
        )
    recent: list[int] = seen.get("recent", [])
    if observed_ms in recent:
        return Timeliness.duplicate, "duplicate: an event of this source with the same observed_at was already applied"
    if recent:
        nearest = min(map(abs, map(sub, recent, repeat(observed_ms))))  # in C: a generator cost 2% of a worker
        if nearest < min_spacing_ms:
            return Timeliness.flood, (
                f"flood: {nearest} ms from another event of this source; it cannot report more often than "
                f"every {min_spacing_ms} ms"
            )
        if observed_ms < max(recent):
            return Timeliness.out_of_order, ""
    return Timeliness.on_time, ""


def remember(seen: dict[str, Any], observed_ms: int) -> None:
    """Record an applied event's time in its source's bounded history."""
    recent: list[int] = seen.setdefault("recent", [])
    recent.append(observed_ms)
    if len(recent) > RECENT_KEPT:
        del recent[0]
