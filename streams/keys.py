"""Redis key layout shared by the workers (writers) and the API (reader)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Build every Redis key citystream uses under one prefix."""

    prefix: str = "cs"

    def alert(self, alert_id: str) -> str:
        """Return the key of one alert's JSON."""
        return f"{self.prefix}:alert:{alert_id}"

    @property
    def alert_index(self) -> str:
        """Return the sorted set of alert ids scored by first_seen (epoch ms)."""
        return f"{self.prefix}:alerts"

    def window(self, domain: str, window_s: int, zone_id: str, start_ms: int) -> str:
        """Return the hash of one zone window's integer sums."""
        return f"{self.prefix}:agg:{domain}:{window_s}:{zone_id}:{start_ms}"

    def window_members(self, domain: str, window_s: int, zone_id: str, start_ms: int) -> str:
        """Return the set of distinct sources counted in one zone window."""
        return f"{self.prefix}:aggset:{domain}:{window_s}:{zone_id}:{start_ms}"

    def window_index(self, domain: str, window_s: int) -> str:
        """Return the sorted set of `zone|start_ms` windows scored by start_ms."""
        return f"{self.prefix}:aggidx:{domain}:{window_s}"

    def windows_emitted(self, domain: str, window_s: int) -> str:
        """Return the sorted set of windows already sent to the aggregates topic, scored by start_ms."""
        return f"{self.prefix}:aggemitted:{domain}:{window_s}"

    def partition_offset(self, topic: str, partition: int) -> str:
        """Return the key holding the last offset applied from one partition."""
        return f"{self.prefix}:offset:{topic}:{partition}"

    @property
    def watermarks(self) -> str:
        """Return the hash of `topic:partition` -> `event_ms:wall_ms` of the last commit."""
        return f"{self.prefix}:watermarks"

    def state(self, domain: str) -> str:
        """Return the hash of per-source detector and counter state of one domain."""
        return f"{self.prefix}:state:{domain}"

    @property
    def stats(self) -> str:
        """Return the hash of exact counters (events, dead letters) per topic."""
        return f"{self.prefix}:stats"
