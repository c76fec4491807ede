"""Read zone windows back from Redis as Aggregates, and find the windows the event-time watermark closed."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

from redis.asyncio import Redis

from processors.metrics import HAS_MEMBERS, WindowSums, window_aggregates
from streams.keys import Keys
from streams.models import Aggregate, Domain
from streams.topics import Topics

# KEYS: window hashes, each followed by its members set when its ARGV flag is '1'; ARGV: one flag per window.
# Returns, per window, its HGETALL reply and its members' SCARD (0 without members): one round trip for many windows.
WINDOW_SUMS = """
local out = {}
local k = 1
for i = 1, #ARGV do
  local sums = redis.call('HGETALL', KEYS[k])
  local distinct = 0
  if ARGV[i] == '1' then
    if #sums > 0 then distinct = redis.call('SCARD', KEYS[k + 1]) end
    k = k + 2
  else
    k = k + 1
  end
  out[#out + 1] = sums
  out[#out + 1] = distinct
end
return out
"""
# The windows of whole series (one zone, consecutive starts) without a key each on the wire: ARGV holds five
# values per series (hash key head, members key head or '', first start ms, count, step ms) and the script
# builds the keys (fine on the standalone Redis citystream uses; Redis Cluster would need them declared).
# Returns what WINDOW_SUMS returns, series after series, oldest window first.
SERIES_SUMS = """
local out = {}
for i = 1, #ARGV, 5 do
  local head, members = ARGV[i], ARGV[i + 1]
  local first, count, step = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  for k = 0, count - 1 do
    local start = string.format('%d', first + k * step)
    local sums = redis.call('HGETALL', head .. start)
    local distinct = 0
    if members ~= '' and #sums > 0 then distinct = redis.call('SCARD', members .. start) end
    out[#out + 1] = sums
    out[#out + 1] = distinct
  end
end
return out
"""
SUMS_CHUNK = 1000  # windows one script call reads, so no call holds Redis long


WindowRef = tuple[Domain, str, int]  # domain, zone or group id, window start ms


class WindowStore:
    """Reader of the per-zone window sums the workers commit."""

    def __init__(self, redis: Redis, keys: Keys, window_s: int, topics: Topics, idle_partition_s: float = 30.0) -> None:
        self.redis = redis
        self.idle_ms = idle_partition_s * 1000
        self.topics = topics
        self.keys = keys
        self.window_s = window_s
        self._sums_script = redis.register_script(WINDOW_SUMS)
        self._series_script = redis.register_script(SERIES_SUMS)

    async def window_refs(
        self,
        domain: Domain,
        start_ms: float = float("-inf"),
        end_ms: float = float("inf"),
        limit: int | None = None,
    ) -> list[tuple[str, int]]:
        """Return (zone_id, start_ms) of the windows starting within [start_ms, end_ms], oldest first."""
        index = self.keys.window_index(domain.value, self.window_s)
        if limit is None:
            members = await self.redis.zrangebyscore(index, start_ms, end_ms)
        else:
            members = await self.redis.zrangebyscore(index, start_ms, end_ms, start=0, num=limit)
        refs = []
        for member in members:
            text = member.decode() if isinstance(member, bytes) else str(member)
            zone_id, _, start = text.rpartition("|")
            refs.append((zone_id, int(start)))
        return refs

    async def span(self, domain: Domain) -> tuple[int, int] | None:
        """Return the start ms of the oldest and newest window in the domain's index, None if it is empty."""
        index = self.keys.window_index(domain.value, self.window_s)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrange(index, 0, 0, withscores=True)
            pipe.zrange(index, -1, -1, withscores=True)
            first, last = await pipe.execute()
        if not first or not last:
            return None
        return int(first[0][1]), int(last[0][1])

    async def window_sums(self, domain: Domain, refs: Iterable[tuple[str, int]]) -> list[WindowSums]:
        """Return the integer sums (and distinct members) of the given windows; absent or expired ones are left out."""
        out = []
        for window_domain, zone_id, start_ms, raw, distinct in await self.window_replies(
            [(domain, z, s) for z, s in refs]
        ):
            sums = {_text(raw[j]): int(raw[j + 1]) for j in range(0, len(raw), 2)}
            out.append(WindowSums(window_domain, self.window_s, zone_id, start_ms, sums, distinct))
        return out

    async def window_replies(self, refs: list[WindowRef]) -> list[tuple[Domain, str, int, list[bytes], int]]:
        """Return each present window's HGETALL reply (field, value, ...) and distinct members, in the refs' order."""
        out = []
        for chunk in range(0, len(refs), SUMS_CHUNK):
            part = refs[chunk : chunk + SUMS_CHUNK]
            window_keys: list[str] = []
            flags: list[str] = []
            for domain, zone_id, start_ms in part:
                window_keys.append(self.keys.window(domain.value, self.window_s, zone_id, start_ms))
                flags.append("1" if domain in HAS_MEMBERS else "0")
                if domain in HAS_MEMBERS:
                    window_keys.append(self.keys.window_members(domain.value, self.window_s, zone_id, start_ms))
            replies = await self._sums_script(keys=window_keys, args=flags)
            for i, (domain, zone_id, start_ms) in enumerate(part):
                if replies[2 * i]:
                    out.append((domain, zone_id, start_ms, replies[2 * i], int(replies[2 * i + 1])))
        return out

    async def series_replies(
        self, series: list[tuple[Domain, str, int, int]]
    ) -> list[tuple[Domain, str, int, list[bytes], int]]:
        """Return window_replies for whole series (domain, zone, first start ms, count) in one script call."""
        step = self.window_s * 1000
        args: list[str | int] = []
        for domain, zone_id, first, count in series:
            members = domain in HAS_MEMBERS
            args += [
                self.keys.window_series(domain.value, self.window_s, zone_id),
                self.keys.window_members_series(domain.value, self.window_s, zone_id) if members else "",
                first,
                count,
                step,
            ]
        replies = await self._series_script(args=args)
        out = []
        i = 0
        for domain, zone_id, first, count in series:
            for k in range(count):
                if replies[2 * i]:
                    out.append((domain, zone_id, first + k * step, replies[2 * i], int(replies[2 * i + 1])))
                i += 1
        return out

    async def aggregates(self, domain: Domain, refs: Iterable[tuple[str, int]]) -> list[Aggregate]:
        """Return every metric of the given windows of one domain."""
        return [agg for window in await self.window_sums(domain, refs) for agg in window_aggregates(window)]

    async def watermark_ms(self, domain: Domain, now_ms: int | None = None) -> float:
        """Return the domain's event-time watermark: the slowest active partition's latest event.

        Partitions idle for idle_partition_s do not hold windows open; when all are idle every window may close.
        """
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        prefix = self.topics.for_domain(domain) + ":"
        marks = []
        for field, value in (await self.redis.hgetall(self.keys.watermarks)).items():
            name = field.decode() if isinstance(field, bytes) else field
            if not name.startswith(prefix):
                continue
            event_ms, wall_ms = (int(x) for x in (value.decode() if isinstance(value, bytes) else value).split(":"))
            if now_ms - wall_ms < self.idle_ms:
                marks.append(event_ms)
        return min(marks) if marks else float("inf")

    async def closed_unemitted(self, domain: Domain, grace_s: float) -> list[tuple[str, int]]:
        """Return the windows the watermark has closed (past their grace) that were not emitted yet."""
        watermark = await self.watermark_ms(domain)
        cutoff = watermark - grace_s * 1000 - self.window_s * 1000
        refs = await self.window_refs(domain, float("-inf"), cutoff)
        if not refs:
            return []
        scores = await self.redis.zmscore(
            self.keys.windows_emitted(domain.value, self.window_s), [f"{z}|{s}" for z, s in refs]
        )
        return [ref for ref, done in zip(refs, scores, strict=True) if done is None]

    async def mark_emitted(self, domain: Domain, refs: Iterable[tuple[str, int]]) -> None:
        """Remember windows as sent to the aggregates topic."""
        members = {f"{z}|{s}": s for z, s in refs}
        if members:
            await self.redis.zadd(self.keys.windows_emitted(domain.value, self.window_s), members)

    async def forget_expired(self, domain: Domain, batch: int = 500) -> int:
        """Drop the index entries of the oldest windows whose keys have expired; return how many."""
        refs = await self.window_refs(domain, limit=batch)
        if not refs:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for zone_id, start_ms in refs:
                pipe.exists(self.keys.window(domain.value, self.window_s, zone_id, start_ms))
            alive = await pipe.execute()
        gone = [f"{z}|{s}" for (z, s), exists in zip(refs, alive, strict=True) if not exists]
        if gone:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(self.keys.window_index(domain.value, self.window_s), *gone)
                pipe.zrem(self.keys.windows_emitted(domain.value, self.window_s), *gone)
                pipe.incr(self.keys.windows_version(domain.value))
                await pipe.execute()
        return len(gone)


def parse_time(value: datetime | None) -> float | None:
    """Return epoch ms of an optional datetime."""
    return None if value is None else value.timestamp() * 1000


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
