"""Read several alert facet indexes as one, in (first_seen, id) order, a little at a time."""

from __future__ import annotations

from collections import deque
from typing import cast

from redis.asyncio import Redis

FIRST_CHUNK_MIN = 16
CHUNK_MAX = 1000

Entry = tuple[str, int]  # alert id, first_seen ms


class MergedIndexes:
    """The union of sorted sets within [bottom, top], newest first (desc) or oldest first, read lazily.

    Each set is read in chunks (doubling up to CHUNK_MAX) only when the merge needs its next entry, and
    every set that needs more is read in the same round trip; ties of score are ordered by id, as Redis
    orders one set's members.
    """

    def __init__(self, client: Redis, index_keys: list[str], bottom: float, top: float, desc: bool) -> None:
        self.client = client
        self.bottom, self.top, self.desc = bottom, top, desc
        self._buffers: dict[str, deque[Entry]] = {k: deque() for k in index_keys}
        self._offsets = dict.fromkeys(index_keys, 0)
        self._chunks = dict.fromkeys(index_keys, 0)
        self._exhausted: set[str] = set()

    async def take(self, count: int) -> list[Entry]:
        """Return the next `count` entries of the union (fewer at its end)."""
        out: list[Entry] = []
        while len(out) < count:
            await self._refill(count - len(out))
            live = [buffer for buffer in self._buffers.values() if buffer]
            if not live:
                break
            heads = [(buffer[0][1], buffer[0][0], buffer) for buffer in live]
            _, _, best = max(heads, key=lambda h: h[:2]) if self.desc else min(heads, key=lambda h: h[:2])
            out.append(best.popleft())
        return out

    async def _refill(self, wanted: int) -> None:
        empty = [k for k, buffer in self._buffers.items() if not buffer and k not in self._exhausted]
        if not empty:
            return
        first = max(FIRST_CHUNK_MIN, 2 * wanted // len(self._buffers) + 1)
        async with self.client.pipeline(transaction=False) as pipe:
            for key in empty:
                chunk = self._chunks[key] = min(CHUNK_MAX, self._chunks[key] * 2 or first)
                if self.desc:
                    pipe.zrevrangebyscore(key, self.top, self.bottom, self._offsets[key], chunk, withscores=True)
                else:
                    pipe.zrangebyscore(key, self.bottom, self.top, self._offsets[key], chunk, withscores=True)
            replies = await pipe.execute()
        for key, reply in zip(empty, replies, strict=True):
            found = cast(list[tuple[bytes | str, float]], reply)
            self._offsets[key] += len(found)
            if len(found) < self._chunks[key]:
                self._exhausted.add(key)
            self._buffers[key].extend((_text(m), int(s)) for m, s in found)


def _text(member: bytes | str) -> str:
    return member.decode() if isinstance(member, bytes) else member
