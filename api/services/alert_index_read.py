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


# One chunk of a first_seen page in one round trip: the next `want` ids of the facet indexes' union, with each
# one's JSON, operator state and, when its rule+source has a burst's worth of episodes near it, those episodes.
# KEYS: alert_index, facets hash, snoozes hash, operator states hash, then the facet indexes.
# ARGV: top, bottom, desc ('1'/'0'), want, prepare ('1': also sizes and snoozes), alert JSON key prefix,
#       episode index prefix, flapping window ms, burst (episodes), then each facet index's offset.
# Returns {meta, offsets, rows}: meta = {alert_index size, facets size, snoozes HGETALL} when preparing, else {};
# offsets = each facet index's offset after the chunk; rows = {id, score, JSON, operator state, episodes}.
PAGE_CHUNK = """
local sets = #KEYS - 4
local top, bottom, desc, want = ARGV[1], ARGV[2], ARGV[3] == '1', tonumber(ARGV[4])
local window, burst = tonumber(ARGV[8]), tonumber(ARGV[9])
local bufs, pos, offs = {}, {}, {}
for j = 1, sets do
  offs[j] = tonumber(ARGV[9 + j])
  if desc then
    bufs[j] = redis.call('ZREVRANGEBYSCORE', KEYS[4 + j], top, bottom, 'WITHSCORES', 'LIMIT', offs[j], want)
  else
    bufs[j] = redis.call('ZRANGEBYSCORE', KEYS[4 + j], bottom, top, 'WITHSCORES', 'LIMIT', offs[j], want)
  end
  pos[j] = 1
end
local rows = {}
while #rows < want do
  local best, bs, bm = nil, 0, ''
  for j = 1, sets do
    local b = bufs[j]
    if pos[j] < #b then
      local m, s = b[pos[j]], tonumber(b[pos[j] + 1])
      if best == nil or (desc and (s > bs or (s == bs and m > bm))) or
         (not desc and (s < bs or (s == bs and m < bm))) then
        best, bs, bm = j, s, m
      end
    end
  end
  if best == nil then break end
  pos[best] = pos[best] + 2
  offs[best] = offs[best] + 1
  local record = redis.call('HGET', KEYS[2], bm)
  local near = {}
  if record then
    local group = string.match(record, '^[^|]*|(.*)$')
    near = redis.call('ZRANGEBYSCORE', ARGV[7] .. group, bs - window, bs + 2 * window, 'WITHSCORES')
    if #near < 2 * burst then near = {} end
  end
  rows[#rows + 1] = {bm, bs, redis.call('GET', ARGV[6] .. bm), redis.call('HGET', KEYS[4], bm), near}
end
local meta = {}
if ARGV[5] == '1' then
  meta = {redis.call('ZCARD', KEYS[1]), redis.call('HLEN', KEYS[2]), redis.call('HGETALL', KEYS[3])}
end
return {meta, offs, rows}
"""
