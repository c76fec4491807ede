"""Other sources' state in the partition being applied: what a rule may read besides its own source's state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Peers:
    """The partition's per-source states, as of the event being applied (log order), and the partition's number.

    A rule reads a neighbour's state only if that neighbour's events come through the same partition (it
    records the partition in its state): then the state is the one the log order gives, on every replay.
    A rule may write only `shared` entries, which it marks dirty so they are committed with the batch.
    """

    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    partition: int = 0

    def state_of(self, source_id: str) -> dict[str, Any] | None:
        """Return a source's state to read (never to change), or None if this partition has none."""
        return self.states.get(source_id)

    def shared(self, key: str) -> dict[str, Any]:
        """Return the state of a partition-owned entity (a road segment), created empty on first use."""
        return self.states.setdefault(key, {})


class OwnStateOnly:
    """Mixed into a domain processor whose rules read only their own source's state."""

    def related_sources(self, event: Any, partition: int) -> tuple[str, ...]:
        """Return no other sources: every rule here reads only its own source's state."""
        return ()
