"""The separation check's reads inside a partition's commit: the part of it that awaits Redis.

`SeparationCheck` (processors/drone/separation.py) decides; this drives it through the sink's shared-update
protocol: one `READ_NEAR` call for the neighbours and open episodes, a WATCH on the episodes it may touch, one
read of those episodes and the drones' last fixes, then the decision. It is kept out of the decision's module
because that module is compiled with mypyc (processors/native.py), and mypyc must not compile a coroutine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from processors.drone.separation import READ_NEAR, SeparationCheck
from streams.models import Alert


class SeparationCommit:
    """A batch's separation check as shared state of its commit (`processors.sink.Shared`)."""

    def __init__(self, check: SeparationCheck) -> None:
        self.check = check

    @property
    def keys(self) -> list[str]:
        """Return the tile stamps to WATCH with the partition offset."""
        return self.check.keys

    @property
    def publish(self) -> Callable[[list[Alert]], Awaitable[None]]:
        """Return how the separation alerts are sent before the commit."""
        return self.check.publish

    async def decide_in(self, pipe: Any, reader: Any) -> tuple[Callable[[Any], None], list[Alert]]:
        """Read the neighbours and episodes (watched by `pipe`), decide, and return the writes and alerts."""
        check = self.check
        near, open_sets = await reader.eval(READ_NEAR, *check.near_query())
        seen = check.neighbours(near, open_sets)
        raws: list[bytes | str | None] = []
        last_raw: list[bytes | str | None] = []
        if seen.pair_keys:
            await pipe.watch(*seen.pair_keys)
            async with reader.pipeline(transaction=False) as read:
                for key in seen.pair_keys:
                    read.get(key)
                read.hmget(check.k.separation_last, seen.pair_drones)
                *raws, last_raw = await read.execute()
        return check.decide(seen, raws, last_raw)
