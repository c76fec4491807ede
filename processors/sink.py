"""The Redis writer: one transaction per batch and partition, guarded by the partition's applied offset.

Kafka delivers at least once; this guard makes the effects exactly once. A batch is applied only if the
offset stored with the results is still the one its state was read at (compare-and-set), so a replay
after a crash, a zombie worker after a rebalance, or a retry after a Redis outage never counts twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import WatchError

from processors.outcome import BatchOutcome
from streams.codec import encode
from streams.keys import Keys

# Keep the larger integer in a hash field: max is order-independent, so replays and interleavings agree.
HASH_MAX = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current or tonumber(ARGV[2]) > tonumber(current) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 0
"""


@dataclass(frozen=True)
class CommitResult:
    """Whether a batch was applied; if not, the offset Redis holds for the partition."""

    applied: bool
    stored_offset: int


class RedisSink:
    """Read partition state from Redis and apply batch outcomes atomically."""

    def __init__(self, redis: Redis, keys: Keys, window_ttl_s: int = 48 * 3600) -> None:
        self.redis = redis
        self.keys = keys
        self.window_ttl_s = window_ttl_s

    async def ping(self) -> None:
        """Check that Redis answers; raises the client's ConnectionError if not."""
        await self.redis.ping()

    async def applied_offset(self, topic: str, partition: int) -> int:
        """Return the last offset of a partition whose effects are in Redis (-1 for none)."""
        raw = await self.redis.get(self.keys.partition_offset(topic, partition))
        return -1 if raw is None else int(raw)

    async def applied_position(self, topic: str, partition: int) -> tuple[int, int]:
        """Return a partition's last applied offset and event-time watermark (-1, -1 for none)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.partition_offset(topic, partition))
            pipe.hget(self.keys.watermarks, f"{topic}:{partition}")
            offset, mark = await pipe.execute()
        event_ms = -1 if mark is None else int((mark.decode() if isinstance(mark, bytes) else mark).split(":")[0])
        return (-1 if offset is None else int(offset)), event_ms

    async def load_states(self, domain: str, source_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Return the stored state of the given sources (absent ones are left out)."""
        if not source_ids:
            return {}
        raws = await self.redis.hmget(self.keys.state(domain), source_ids)
        return {sid: orjson.loads(raw) for sid, raw in zip(source_ids, raws, strict=True) if raw is not None}

    async def commit(
        self,
        topic: str,
        partition: int,
        base_offset: int,
        last_offset: int,
        outcome: BatchOutcome,
        states: dict[str, dict[str, Any]],
    ) -> CommitResult:
        """Apply a batch if the partition is still at base_offset; otherwise apply nothing."""
        offset_key = self.keys.partition_offset(topic, partition)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(offset_key)
                raw = await pipe.get(offset_key)
                stored = -1 if raw is None else int(raw)
                if stored != base_offset:
                    return CommitResult(False, stored)
                pipe.multi()
                self._write(pipe, topic, partition, outcome, states)
                pipe.set(offset_key, last_offset)
                await pipe.execute()
            except WatchError:
                return CommitResult(False, await self.applied_offset(topic, partition))
        return CommitResult(True, last_offset)

    def _write(
        self, pipe: Any, topic: str, partition: int, outcome: BatchOutcome, states: dict[str, dict[str, Any]]
    ) -> None:
        keys, domain, window_s = self.keys, outcome.domain.value, outcome.window_s
        index: dict[str, float] = {}
        for (zone_id, start_ms), sums in outcome.sums.items():
            window_key = keys.window(domain, window_s, zone_id, start_ms)
            for field_name, amount in sums.items():
                pipe.hincrby(window_key, field_name, amount)
            pipe.expire(window_key, self.window_ttl_s)
            index[f"{zone_id}|{start_ms}"] = start_ms
        for (zone_id, start_ms), maxima in outcome.maxima.items():
            window_key = keys.window(domain, window_s, zone_id, start_ms)
            for field_name, value in maxima.items():
                pipe.eval(HASH_MAX, 1, window_key, field_name, value)
            pipe.expire(window_key, self.window_ttl_s)
            index[f"{zone_id}|{start_ms}"] = start_ms
        for (zone_id, start_ms), members in outcome.members.items():
            members_key = keys.window_members(domain, window_s, zone_id, start_ms)
            pipe.sadd(members_key, *members)
            pipe.expire(members_key, self.window_ttl_s)
        if index:
            pipe.zadd(keys.window_index(domain, window_s), index)
        for alert in outcome.alerts.values():
            pipe.set(keys.alert(alert.id), encode(alert))
            pipe.zadd(keys.alert_index, {alert.id: int(alert.first_seen.timestamp() * 1000)})
        if states:
            pipe.hset(keys.state(domain), mapping={sid: orjson.dumps(st) for sid, st in states.items()})
        pipe.hincrby(keys.stats, f"events:{topic}", outcome.events)
        if outcome.deadletters:
            pipe.hincrby(keys.stats, f"deadletter:{topic}", len(outcome.deadletters))
        if outcome.late:
            pipe.hincrby(keys.stats, f"late:{topic}", len(outcome.late))
        if outcome.max_event_ms >= 0:
            pipe.hset(keys.watermarks, f"{topic}:{partition}", f"{outcome.max_event_ms}:{int(time.time() * 1000)}")
