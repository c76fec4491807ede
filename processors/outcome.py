"""What one batch of one partition produced, before it is committed to Redis in one transaction."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

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


@dataclass
class BatchOutcome:
    """Alerts, window sums and dead letters of one batch; applied to Redis all or nothing."""

    domain: Domain
    window_s: int
    alerts: dict[str, Alert] = field(default_factory=dict)
    sums: dict[tuple[str, int], Counter[str]] = field(default_factory=dict)
    members: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    maxima: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)
    deadletters: list[DeadLetter] = field(default_factory=list)
    late: list[DeadLetter] = field(default_factory=list)
    dirty_sources: set[str] = field(default_factory=set)
    events: int = 0
    max_event_ms: int = -1

    def add_sums(self, zone_id: str, start_ms: int, increments: dict[str, int]) -> None:
        """Add integer increments to one zone window."""
        bucket = self.sums.get((zone_id, start_ms))
        if bucket is None:
            bucket = self.sums[(zone_id, start_ms)] = Counter()
        bucket.update(increments)

    def add_max(self, zone_id: str, start_ms: int, values: dict[str, int]) -> None:
        """Keep the highest integer of each field in one zone window (order-independent, like a sum)."""
        bucket = self.maxima.setdefault((zone_id, start_ms), {})
        for name, value in values.items():
            current = bucket.get(name)
            bucket[name] = value if current is None else max(current, value)

    def add_member(self, zone_id: str, start_ms: int, member: str) -> None:
        """Count a source once in one zone window (distinct count)."""
        self.members.setdefault((zone_id, start_ms), set()).add(member)

    def emit(self, alert: Alert | None) -> None:
        """Keep the latest version of an alert produced in this batch."""
        if alert is not None:
            self.alerts[alert.id] = alert
