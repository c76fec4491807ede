"""What every domain generator shares: the simulated clock, daily curves and injected incidents."""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from streams.models import Domain

LOCAL_UTC_OFFSET_H = 8.0  # Asia/Shanghai keeps UTC+8 all year, no daylight saving
MS_PER_S = 1000
MS_PER_HOUR = 3_600_000

# One generated event before sorting: (ms since start, domain, key, value).
RawEvent = tuple[int, str, str, dict[str, Any]]


@dataclass(frozen=True)
class Injected:
    """One incident the simulator injected: what the detectors are expected to find."""

    kind: str
    domain: Domain
    source: str
    start: datetime
    end: datetime
    detail: dict[str, Any] = field(default_factory=dict, compare=False)


class SimClock:
    """Map simulated milliseconds since the start to datetimes, ISO strings and local hours."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"simulation start {start!r} must be timezone-aware")
        self.start = start.astimezone(UTC)
        self._start_local_h = (self.start.timestamp() / 3600 + LOCAL_UTC_OFFSET_H) % 24

    def ms(self, when: datetime) -> int:
        """Return the first whole millisecond since the start at or after `when`."""
        micros = (when - self.start) // timedelta(microseconds=1)
        return -(-micros // 1000)

    def at(self, ms: int) -> datetime:
        """Return the aware UTC datetime `ms` milliseconds after the start."""
        return self.start + timedelta(milliseconds=ms)

    def iso(self, ms: int) -> str:
        """Return the ISO-8601 timestamp (with offset) `ms` milliseconds after the start."""
        return (self.start + timedelta(milliseconds=ms)).isoformat()

    def local_hour(self, ms: int) -> float:
        """Return the Asia/Shanghai hour of day, 0 <= h < 24, `ms` milliseconds after the start."""
        return (self._start_local_h + ms / MS_PER_HOUR) % 24


class DailyCurve:
    """A piecewise-linear profile over the local hour of day that wraps at midnight."""

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        ordered = sorted(points)
        if not ordered or not all(0 <= h < 24 for h, _ in ordered):
            raise ValueError("a daily curve needs points with hours in [0, 24)")
        first, last = ordered[0], ordered[-1]
        wrapped = [(last[0] - 24, last[1]), *ordered, (first[0] + 24, first[1])]
        self._hours = [h for h, _ in wrapped]
        self._values = [v for _, v in wrapped]

    def __call__(self, hour: float) -> float:
        i = bisect.bisect_right(self._hours, hour)
        h0, h1 = self._hours[i - 1], self._hours[i]
        v0, v1 = self._values[i - 1], self._values[i]
        return v0 + (v1 - v0) * (hour - h0) / (h1 - h0)


class Generator(Protocol):
    """One domain's sensors, advanced strictly forward in simulated time."""

    injected: list[Injected]

    def emit(self, begin_ms: int, end_ms: int, out: list[RawEvent]) -> None:
        """Append every event with begin_ms <= observed ms < end_ms to out."""


def sub_rng(seed: int, *path: object) -> random.Random:
    """Return an independent random stream for one part of the simulation (stable across runs)."""
    return random.Random("/".join(map(str, (seed, *path))))


def first_tick(phase_ms: int, interval_ms: int, at_ms: int) -> int:
    """Return the index of the first tick `phase + k * interval` at or after at_ms."""
    return max(0, -(-(at_ms - phase_ms) // interval_ms))
