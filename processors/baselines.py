"""What is normal for one source at one local hour, learned online: shared by the traffic and energy detectors.

A bucket is a JSON-able list `[*EWMAs, readings taught, local day an abnormal reading last taught it (-1: none)]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

HOUR_MS = 3_600_000


def local_hours(observed_ms: int, utc_offset_h: float) -> int:
    """Return whole local hours since the epoch (hour of day: % 24; local day: // 24)."""
    return int((observed_ms / HOUR_MS + utc_offset_h) // 1)


def hour_of_week(observed_ms: int, utc_offset_h: float) -> int:
    """Return the local hour of the week, 0 = Monday 00:00-01:00 (the epoch was a Thursday, hour 72)."""
    return (local_hours(observed_ms, utc_offset_h) + 72) % 168


def teach(
    table: dict[str, Any],
    key: str,
    values: Sequence[float],
    *,
    day: int,
    abnormal: bool,
    alpha: float,
    digits: Sequence[int],
) -> None:
    """Teach one bucket a reading: an average over its first readings (weight 1/n), then an EWMA (weight alpha).

    An abnormal reading (a spike, a jam) teaches a bucket at most once a local day, so what comes back at the
    same hour every day becomes that hour's normal while a lasting anomaly does not teach itself away.
    Values are rounded to `digits` to keep the state short.
    """
    seen = table.get(key)
    k = len(values)
    if seen is None:
        table[key] = [*(round(v, d) for v, d in zip(values, digits, strict=True)), 1, day if abnormal else -1]
        return
    if abnormal and seen[k + 1] == day:
        return
    n = seen[k] + 1
    weight = max(alpha, 1 / n)
    ewmas = (round(s + weight * (v - s), d) for s, v, d in zip(seen[:k], values, digits, strict=True))
    table[key] = [*ewmas, n, day if abnormal else seen[k + 1]]
