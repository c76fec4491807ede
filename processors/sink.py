"""The Redis writer: one transaction per batch and partition, guarded by the partition's applied offset.

Kafka delivers at least once; this guard makes the effects exactly once. A batch is applied only if the
offset stored with the results is still the one its state was read at (compare-and-set), so a replay
after a crash, a zombie worker after a rebalance, or a retry after a Redis outage never counts twice.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import WatchError

from processors.alert_index import INDEX_ALERTS, first_seen_ms, index_alerts_args
from processors.outcome import BatchOutcome
from streams.codec import encode
from streams.keys import Keys
from streams.models import Alert
from streams.redisio import LUA_CALL_CHUNKED

# Add integers to window hash fields, raise others to at least a value, and set each hash's time to live,
# for every window of a batch in one call (one command per field would cost more to send than to run;
# max is order-independent, like a sum, so replays and interleavings agree). ARGV[1] is the TTL; then,
# per key, the number of field/amount pairs to add, those pairs, the number of field/value pairs to
# raise, and those pairs.
WINDOW_FIELDS = """
local ttl, a = ARGV[1], 2
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[a])
  for j = 1, n do
    redis.call('HINCRBY', key, ARGV[a + 2 * j - 1], ARGV[a + 2 * j])
  end
  a = a + 1 + 2 * n
  n = tonumber(ARGV[a])
  for j = 1, n do
    local field, value = ARGV[a + 2 * j - 1], ARGV[a + 2 * j]
    local current = redis.call('HGET', key, field)
    if not current or tonumber(value) > tonumber(current) then
      redis.call('HSET', key, field, value)
    end
  end
  a = a + 1 + 2 * n
  redis.call('EXPIRE', key, ttl)
end
return 0
"""

# Add members to sets and set their time to live: ARGV[1] is the TTL; then, per key, the count and members.
SET_ADD_MANY = (
    LUA_CALL_CHUNKED
    + """
local ttl, a = ARGV[1], 2
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[a])
  call_chunked('SADD', key, a + 1, a + n, 1000)
  a = a + 1 + n
  redis.call('EXPIRE', key, ttl)
end
return 0
"""
)

# Add scored members to several sorted sets (the partitions' silence watch lists): per key, the count of
# score/member pairs, then the pairs.
ZADD_MANY = (
    LUA_CALL_CHUNKED
    + """
local a = 1
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[a])
  call_chunked('ZADD', key, a + 1, a + 2 * n, 1000)
  a = a + 1 + 2 * n
end
return 0
"""
)

SHARED_RETRIES = 50  # shared keys changed by other partitions this many times in a row: give up, the batch is retried
ALERT_EVENTS_MAX = 200_000  # changes kept for clients that reconnect (about a day of a busy city)


Writes = Callable[[Any], None]  # adds a batch's writes to the transaction


def _offset(raw: bytes | str | None) -> int:
    """Return a stored partition offset (-1: nothing applied yet)."""
    return -1 if raw is None else int(raw)


Batch = tuple[str, int, int, int, BatchOutcome, dict[str, dict[str, Any]]]  # topic, partition, base, last, ...


class Shared(Protocol):
    """State several partitions write: watched with the partition offset and decided on inside the commit."""

    @property
    def keys(self) -> list[str]:
        """Return the keys to WATCH with the partition offset."""
        ...

    @property
    def publish(self) -> Callable[[list[Alert]], Awaitable[None]]:
        """Return how alerts decided here are sent before the commit."""
        ...

    async def decide_in(self, pipe: Any, reader: Redis) -> tuple[Writes, list[Alert]]:
        """Read the watched state (through `pipe`, or `reader` after the WATCH) and return the writes and alerts."""
        ...


@dataclass(frozen=True)
class SharedUpdate:
    """Keys several partitions write, and how one batch changes them given their current values."""

    keys: list[str]
    decide: Callable[[list[bytes | str | None]], tuple[dict[str, bytes], list[Alert]]]
    publish: Callable[[list[Alert]], Awaitable[None]]

    async def decide_in(self, pipe: Any, reader: Redis) -> tuple[Writes, list[Alert]]:
        """Decide on the keys' current values, read through the watching pipeline."""
        writes, alerts = self.decide(await pipe.mget(self.keys) if self.keys else [])

        def write(tx: Any) -> None:
            for key, value in writes.items():
                tx.set(key, value)

        return write, alerts


@dataclass(frozen=True)
class SharedAll:
    """Several batches' shared state decided in one transaction: every part's keys watched, decided in turn."""

    parts: list[Shared]

    @property
    def keys(self) -> list[str]:
        """Return every part's keys once, in order."""
        return list(dict.fromkeys(key for part in self.parts for key in part.keys))

    @property
    def publish(self) -> Callable[[list[Alert]], Awaitable[None]]:
        """Return the first part's publisher: every part sends alerts to the same alerts topic."""
        return self.parts[0].publish

    async def decide_in(self, pipe: Any, reader: Redis) -> tuple[Writes, list[Alert]]:
        """Decide each part on the watched state and return their writes together."""
        decided = [await part.decide_in(pipe, reader) for part in self.parts]

        def write(tx: Any) -> None:
            for writes, _ in decided:
                writes(tx)

        return write, [alert for _, alerts in decided for alert in alerts]


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
        return _offset(await self.redis.get(self.keys.partition_offset(topic, partition)))

    async def applied_position(self, topic: str, partition: int) -> tuple[int, int, int]:
        """Return a partition's last applied offset, event-time watermark and the wall ms of that commit.

        (-1, -1, -1) for a partition never committed.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.partition_offset(topic, partition))
            pipe.hget(self.keys.watermarks, f"{topic}:{partition}")
            offset, mark = await pipe.execute()
        event_ms, wall_ms = -1, -1
        if mark is not None:
            event_ms, wall_ms = (int(x) for x in (mark.decode() if isinstance(mark, bytes) else mark).split(":"))
        return (-1 if offset is None else int(offset)), event_ms, wall_ms

    async def silent_sources(self, topic: str, partition: int, last_before_ms: int, limit: int = 5000) -> list[str]:
        """Return the partition's watched sources whose last reading is older than `last_before_ms`."""
        members = await self.redis.zrangebyscore(
            self.keys.silence_index(topic, partition), "-inf", f"({last_before_ms}", start=0, num=limit
        )
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]

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
        shared: Shared | None = None,
    ) -> CommitResult:
        """Apply a batch if the partition is still at base_offset; otherwise apply nothing.

        With `shared`, keys that several partitions write (a feeder's state, the drones' separation index) are
        read under the same WATCH and decided on inside the transaction; if another partition changed one of
        them first, the decision is made again on the new value.
        """
        (result,) = await self.commit_many([(topic, partition, base_offset, last_offset, outcome, states)], shared)
        return result

    async def commit_many(self, batches: Sequence[Batch], shared: Shared | None = None) -> list[CommitResult]:
        """Apply several partitions' batches in one transaction, each only if Redis holds its base offset.

        `batches` are (topic, partition, base_offset, last_offset, outcome, states). Without `shared`, a
        partition that moved on elsewhere is left out and the others are applied. With `shared` (decided from
        every batch together), all are applied or none. A result that is not applied says where Redis stands.
        """
        offset_keys = [self.keys.partition_offset(topic, partition) for topic, partition, *_ in batches]
        shared_keys = shared.keys if shared else []
        for _ in range(SHARED_RETRIES):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(*offset_keys, *shared_keys)
                    stored = [_offset(raw) for raw in await pipe.mget(offset_keys)]
                    ready = [at == batch[2] for at, batch in zip(stored, batches, strict=True)]
                    if not any(ready) or (shared is not None and not all(ready)):
                        return [CommitResult(False, at) for at in stored]
                    writes: Writes | None = None
                    shared_alerts: list[Alert] = []
                    if shared is not None:
                        writes, shared_alerts = await shared.decide_in(pipe, self.redis)
                        if shared_alerts:
                            await shared.publish(shared_alerts)
                    pipe.multi()
                    applied = [(batch, key) for batch, key, ok in zip(batches, offset_keys, ready, strict=True) if ok]
                    self._write(pipe, [(t, p, out, states) for (t, p, _, _, out, states), _ in applied], shared_alerts)
                    pipe.mset({key: batch[3] for batch, key in applied})
                    if writes is not None:
                        writes(pipe)
                    await pipe.execute()
                    return [
                        CommitResult(True, batch[3]) if ok else CommitResult(False, at)
                        for batch, ok, at in zip(batches, ready, stored, strict=True)
                    ]
                except WatchError:
                    now = [_offset(raw) for raw in await self.redis.mget(offset_keys)]
                    if shared is None or any(at != batch[2] for at, batch in zip(now, batches, strict=True)):
                        return [CommitResult(False, at) for at in now]
                    # Only a shared key moved: decide again on its new value.
        return [CommitResult(False, batch[2]) for batch in batches]

    def _write(
        self,
        pipe: Any,
        batches: Sequence[tuple[str, int, BatchOutcome, dict[str, dict[str, Any]]]],
        extra_alerts: Sequence[Alert] = (),
    ) -> None:
        """Add the writes of several partitions' batches to a transaction, merged into few commands.

        Each queued command costs a reply to parse and its own dispatch in Redis, and a live fetch brings a
        few records for each of 20-odd partitions: one command per partition for each kind of write made
        ~150 commands a fetch. The writes are merged per domain (one window script, one state HSET), per
        window size (one index ZADD) and per transaction (stats, watermarks), leaving what writing the
        batches one after the other leaves. `extra_alerts` (decided on shared keys) follow the first batch's.
        """
        keys = self.keys
        window_calls: dict[str, tuple[list[str], list[str | int]]] = {}
        member_calls: dict[str, tuple[list[str], list[str | int]]] = {}
        index: dict[tuple[str, int], dict[str, float]] = {}
        changed_domains: list[str] = []
        alerts: list[Alert] = []
        states_by_domain: dict[str, dict[str, bytes]] = {}
        stats: dict[str, int] = {}
        watermarks: dict[str, str] = {}
        silence: list[tuple[str, dict[str, int], list[str]]] = []
        wall_ms = int(time.time() * 1000)
        for n, (topic, partition, outcome, states) in enumerate(batches):
            outcome.settle()
            domain = outcome.domain.value
            windows = list(dict.fromkeys([*outcome.sums, *outcome.maxima]))
            if windows:
                window_keys, window_args = window_calls.setdefault(domain, ([], [self.window_ttl_s]))
                for window in windows:
                    window_s, zone_id, start_ms = window
                    window_keys.append(keys.window(domain, window_s, zone_id, start_ms))
                    for fields in (outcome.sums.get(window, {}), outcome.maxima.get(window, {})):
                        window_args.append(len(fields))
                        for field_name, value in fields.items():
                            window_args += [field_name, value]
                    index.setdefault((domain, window_s), {})[f"{zone_id}|{start_ms}"] = start_ms
            if outcome.members:
                set_keys, set_args = member_calls.setdefault(domain, ([], [self.window_ttl_s]))
                for (window_s, zone_id, start_ms), members in outcome.members.items():
                    set_keys.append(keys.window_members(domain, window_s, zone_id, start_ms))
                    set_args += [len(members), *sorted(members)]
            if (windows or outcome.members) and domain not in changed_domains:
                changed_domains.append(domain)
            alerts += outcome.alerts.values()
            if n == 0:
                alerts += extra_alerts
            watch = {sid: ms for sid, ms in outcome.silence_watch.items() if ms is not None}
            unwatch = [sid for sid, ms in outcome.silence_watch.items() if ms is None]
            if watch or unwatch:
                silence.append((keys.silence_index(topic, partition), watch, unwatch))
            if states:
                states_by_domain.setdefault(domain, {}).update({sid: orjson.dumps(st) for sid, st in states.items()})
            for name, count, always in (
                (f"events:{topic}", outcome.events, True),
                (f"deadletter:{topic}", len(outcome.deadletters), False),
                (f"late:{topic}", len(outcome.late), False),
            ):
                if always or count:
                    stats[name] = stats.get(name, 0) + count
            if outcome.max_event_ms >= 0:
                watermarks[f"{topic}:{partition}"] = f"{outcome.max_event_ms}:{wall_ms}"
        for window_keys, window_args in window_calls.values():
            pipe.eval(WINDOW_FIELDS, len(window_keys), *window_keys, *window_args)
        for set_keys, set_args in member_calls.values():
            pipe.eval(SET_ADD_MANY, len(set_keys), *set_keys, *set_args)
        for (domain, window_s), members_by_ref in index.items():
            pipe.zadd(keys.window_index(domain, window_s), members_by_ref)
        for domain in changed_domains:
            pipe.incr(keys.windows_version(domain))  # in the same transaction: a kept answer is never half-new
        if alerts:
            pipe.mset({keys.alert(alert.id): encode(alert) for alert in alerts})
            pipe.zadd(keys.alert_index, {alert.id: first_seen_ms(alert) for alert in alerts})
            for alert in alerts:
                pipe.xadd(
                    keys.alert_events, {"id": alert.id, "by": "processor"}, maxlen=ALERT_EVENTS_MAX, approximate=True
                )
            index_keys, index_args = index_alerts_args(keys, alerts)
            pipe.eval(INDEX_ALERTS, len(index_keys), *index_keys, *index_args)
        watched = [(key, watch) for key, watch, _ in silence if watch]
        if watched:
            watch_args: list[str | int] = []
            for _, watch in watched:
                watch_args.append(len(watch))
                for sid, ms in watch.items():
                    watch_args += [ms, sid]
            pipe.eval(ZADD_MANY, len(watched), *(key for key, _ in watched), *watch_args)
        for key, _, unwatch in silence:
            if unwatch:
                pipe.zrem(key, *unwatch)
        for domain, encoded in states_by_domain.items():
            pipe.hset(keys.state(domain), mapping=encoded)
        for name, count in stats.items():
            pipe.hincrby(keys.stats, name, count)
        if watermarks:
            pipe.hset(keys.watermarks, mapping=watermarks)
