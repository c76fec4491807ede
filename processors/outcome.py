"""What one batch of one partition produced, before it is committed to Redis in one transaction."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from streams.models import Alert, Domain

UNZONED = "unzoned"


def window_start_ms(observed_ms: int, window_s: int) -> int:
    """Return the start of the tumbling window holding an event-time instant."""
    size = window_s * 1000
    return observed_ms - observed_ms % size


@dataclass(frozen=True)
class DeadLetter:
    """A value refused by the worker, with where it came from and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    stage: str


WindowKey = tuple[int, str, int]  # (window size in s, zone or group id, window start ms)


@dataclass
class BatchOutcome:
    """Alerts, window sums and dead letters of one batch; applied to Redis all or nothing.

    Windows are kept per zone in every size of `zone_sizes`, and per source group (`meter:<id>`,
    `feeder:<id>`) in every size of `source_sizes`; `window_s` is the finest zone window.
    """

    domain: Domain
    window_s: int
    zone_sizes: tuple[int, ...] = ()
    source_sizes: tuple[int, ...] = ()
    alerts: dict[str, Alert] = field(default_factory=dict)
    sums: dict[WindowKey, Counter[str]] = field(default_factory=dict)
    members: dict[WindowKey, set[str]] = field(default_factory=dict)
    maxima: dict[WindowKey, dict[str, int]] = field(default_factory=dict)
    deadletters: list[DeadLetter] = field(default_factory=list)
    late: list[DeadLetter] = field(default_factory=list)
    dirty_sources: set[str] = field(default_factory=set)
    silence_watch: dict[str, int | None] = field(default_factory=dict)  # source -> last reading ms (None: unwatch)
    supply_transitions: list[Any] = field(default_factory=list)  # energy: meters going dark or back, by feeder
    positions: list[Any] = field(default_factory=list)  # drones: in-order fixes for the separation check
    events: int = 0
    max_event_ms: int = -1

    # A reading's zone windows of every size are the same fields in nested windows: readings are summed per
    # zone and finest window here, and each size's windows are added up from those once per batch (`settle`)
    # instead of per reading. Sums add, maxima max and members unite, so the result is exactly that of adding
    # every reading to every size.
    staged: dict[tuple[str, int], tuple[dict[str, int], dict[str, int], set[str]]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        if not self.zone_sizes:
            self.zone_sizes = (self.window_s,)
        # Staging pays off with more than one size, and is exact when every size nests the finest window.
        self._stage = len(self.zone_sizes) > 1 and all(size % self.window_s == 0 for size in self.zone_sizes)

    def add_sums(self, zone_id: str, start_ms: int, increments: dict[str, int], window_s: int | None = None) -> None:
        """Add integer increments to one window (the finest zone window unless window_s is given)."""
        key = (window_s or self.window_s, zone_id, start_ms)
        bucket = self.sums.get(key)
        if bucket is None:
            bucket = self.sums[key] = Counter()
        _add_into(bucket, increments)

    def add_max(self, zone_id: str, start_ms: int, values: dict[str, int], window_s: int | None = None) -> None:
        """Keep the highest integer of each field in one window (order-independent, like a sum)."""
        _max_into(self.maxima.setdefault((window_s or self.window_s, zone_id, start_ms), {}), values)

    def add_member(self, zone_id: str, start_ms: int, member: str, window_s: int | None = None) -> None:
        """Count a source once in one window (distinct count)."""
        self.members.setdefault((window_s or self.window_s, zone_id, start_ms), set()).add(member)

    def add_reading(
        self,
        zone_id: str,
        observed_ms: int,
        sums: dict[str, int],
        maxima: dict[str, int] | None = None,
        member: str | None = None,
        groups: tuple[str, ...] = (),
    ) -> None:
        """Add one reading to its zone's windows of every size, and to its groups' source windows."""
        if self._stage:
            minute = (zone_id, window_start_ms(observed_ms, self.window_s))
            fine = self.staged.get(minute)
            if fine is None:
                fine = self.staged[minute] = ({}, {}, set())
            fine_sums, fine_maxima, fine_members = fine
            _add_into(fine_sums, sums)
            if maxima:
                _max_into(fine_maxima, maxima)
            if member is not None:
                fine_members.add(member)
            targets = [(g, size) for g in groups for size in self.source_sizes]
        else:
            targets = [(zone_id, size) for size in self.zone_sizes] + [
                (g, size) for g in groups for size in self.source_sizes
            ]
        for group, size in targets:
            start = window_start_ms(observed_ms, size)
            self.add_sums(group, start, sums, size)
            if maxima:
                self.add_max(group, start, maxima, size)
            if member is not None:
                self.add_member(group, start, member, size)

    def settle(self) -> None:
        """Add the staged readings to their zone windows of every size (idempotent; before any write)."""
        staged, self.staged = self.staged, {}
        for (zone_id, start), (sums, maxima, members) in staged.items():
            for size in self.zone_sizes:
                window_start = window_start_ms(start, size)
                self.add_sums(zone_id, window_start, sums, size)
                if maxima:
                    self.add_max(zone_id, window_start, maxima, size)
                for member in sorted(members):
                    self.add_member(zone_id, window_start, member, size)

    def emit(self, alert: Alert | None) -> None:
        """Keep the latest version of an alert produced in this batch."""
        if alert is not None:
            self.alerts[alert.id] = alert


def _add_into(bucket: dict[str, int], increments: dict[str, int]) -> None:
    """Add integer increments to a window's fields (Counter.update's own loop costs three times this)."""
    for name, value in increments.items():
        bucket[name] = bucket.get(name, 0) + value


def _max_into(bucket: dict[str, int], values: dict[str, int]) -> None:
    """Raise a window's fields to at least the values."""
    for name, value in values.items():
        current = bucket.get(name)
        bucket[name] = value if current is None else max(current, value)
