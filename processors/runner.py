"""The batch path: decode, zone, detect and aggregate a partition's records, then commit them in one go."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from aiokafka.errors import KafkaError as AIOKafkaError
from redis.exceptions import RedisError

from geo.zones import ZoneIndex
from processors.drone.fence_store import FenceSource
from processors.drone.processor import DroneProcessor
from processors.drone.separation import SeparationCheck
from processors.drone.separation_commit import SeparationCommit
from processors.energy.feeder import SupplyTransition, feeder_step
from processors.energy.processor import EnergyProcessor
from processors.outcome import UNZONED, BatchOutcome, DeadLetter
from processors.peers import Peers
from processors.silence import silent_alert
from processors.sink import CommitResult, RedisSink, Shared, SharedAll, SharedUpdate
from processors.timeliness import Timeliness, classify, remember
from processors.traffic.processor import TrafficProcessor
from streams.codec import decode_event
from streams.exceptions import EventDecodeError
from streams.models import Alert, Domain, SensorEvent
from streams.settings import Settings
from streams.topics import Topics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    """One Kafka record as the runner needs it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class DomainProcessor(Protocol):
    """What every domain's processor offers the runner."""

    domain: Domain

    def related_sources(self, event: Any, partition: int) -> tuple[str, ...]:
        """Return the other sources (or shared entities) whose state the event's rules read from `peers`."""

    def process(
        self, event: Any, zone_id: str, state: dict[str, Any], out: BatchOutcome, detect: bool, peers: Peers | None
    ) -> None:
        """Add one event to its window and, if it is in time order (detect), run the domain's detectors."""


@dataclass
class PartitionCache:
    """Per-source state of one partition, valid as of `base_offset` (None: reload from Redis)."""

    base_offset: int | None = None
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_event_ms: int = -1
    commit_wall_ms: int = -1  # wall clock of the partition's last batch commit
    stalled_at: tuple[int, float] | None = None  # (applied offset, monotonic s) when it was first seen behind
    gap: tuple[int, int] | None = None  # (expected offset, first offset delivered instead) of the last seek back
    gap_seeks: int = 0


@dataclass
class Prepared:
    """A partition's batch processed and published, waiting for its Redis commit."""

    topic: str
    partition: int
    base: int
    last: int
    outcome: BatchOutcome
    states: dict[str, dict[str, Any]]
    cache: PartitionCache  # the one the batch was processed against (a rebalance may drop it from the runner)

    @property
    def shares(self) -> bool:
        """Return whether the batch changes state other partitions write (feeders, the separation index)."""
        return bool(self.outcome.positions or self.outcome.supply_transitions)


Publish = Callable[[BatchOutcome], Awaitable[None]]
Seek = Callable[[str, int, int], Awaitable[None]]

# Seeking back this many times in a row to the same missing offsets and being given the same next record
# again means the offsets really do not exist (a transaction marker, compaction, retention).
GAP_SEEKS_BEFORE_ACCEPTING = 5


class BatchRunner:
    """Turn batches of Kafka records into committed Redis effects, exactly once per record."""

    def __init__(
        self,
        settings: Settings,
        zones: ZoneIndex,
        sink: RedisSink,
        publish: Publish,
        seek: Seek | None = None,
        fences: FenceSource | None = None,
    ) -> None:
        self.settings = settings
        self.zones = zones
        self.sink = sink
        self.publish = publish
        self.seek = seek
        self.fences = fences
        self.drones = DroneProcessor(settings, zones)
        self.processors: dict[Domain, DomainProcessor] = {
            Domain.traffic: TrafficProcessor(settings),
            Domain.drone: self.drones,
            Domain.energy: EnergyProcessor(settings),
        }
        self.caches: dict[tuple[str, int], PartitionCache] = {}
        self.locks: dict[tuple[str, int], asyncio.Lock] = {}
        self.topics = Topics(settings.kafka.topic_namespace)
        self.min_spacing_ms = {
            Domain.traffic: int(settings.traffic.min_interval_s * 1000),
            Domain.drone: int(settings.drone.min_interval_s * 1000),
            Domain.energy: int(settings.energy.min_interval_s * 1000),
        }

    def applied(self, topic: str, partition: int) -> int | None:
        """Return the last offset of a partition known applied in Redis by this worker (None: not loaded)."""
        cache = self.caches.get((topic, partition))
        return None if cache is None else cache.base_offset

    def forget(self, topic: str, partition: int) -> None:
        """Drop a partition's cached state (on rebalance or a failed commit)."""
        self.caches.pop((topic, partition), None)

    async def run(self, records: Sequence[Record]) -> None:
        """Process records of any partitions, each partition in order."""
        by_tp: dict[tuple[str, int], list[Record]] = {}
        for record in records:
            by_tp.setdefault((record.topic, record.partition), []).append(record)
        for (topic, partition), recs in by_tp.items():
            await self.run_partition(topic, partition, recs)

    def lock(self, topic: str, partition: int) -> asyncio.Lock:
        """Return the lock that keeps a partition's batches and silence checks one at a time."""
        return self.locks.setdefault((topic, partition), asyncio.Lock())

    async def run_partition(self, topic: str, partition: int, records: list[Record]) -> None:
        """Process one partition's records until their effects are in Redis, retrying Redis outages."""
        delay = 0.1
        while True:
            try:
                async with self.lock(topic, partition):
                    applied = await self._attempt(topic, partition, records)
                if applied:
                    return
            except (RedisError, OSError, AIOKafkaError) as exc:
                self.forget(topic, partition)
                server = "kafka" if isinstance(exc, AIOKafkaError) else "redis"
                log.warning(
                    '%s unavailable, retrying topic="%s" partition=%d offset=%d retry_in_s=%.1f error="%s"',
                    server,
                    topic,
                    partition,
                    records[0].offset,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.worker.redis_retry_max_s)

    async def _cache(self, topic: str, partition: int) -> tuple[PartitionCache, int]:
        """Return the partition's cache, (re)loaded from its Redis position if it was dropped, and that offset."""
        cache = self.caches.setdefault((topic, partition), PartitionCache())
        if cache.base_offset is None:
            cache.base_offset, cache.max_event_ms, cache.commit_wall_ms = await self.sink.applied_position(
                topic, partition
            )
            cache.states.clear()
        return cache, cache.base_offset

    async def _attempt(self, topic: str, partition: int, records: list[Record]) -> bool:
        prepared = await self._prepare(topic, partition, records)
        if prepared is None:
            return True
        (result,) = await self._commit_unit([prepared])
        return self._settle(prepared, result)

    async def _prepare(self, topic: str, partition: int, records: list[Record]) -> Prepared | None:
        """Process a partition's new records and publish their alerts; None if nothing is left to apply."""
        cache, base = await self._cache(topic, partition)
        todo = await self._contiguous(topic, partition, cache, [r for r in records if r.offset > base])
        if not todo:
            return None
        domain = self.topics.domain_of(topic)
        worker = self.settings.worker
        outcome = BatchOutcome(
            domain, worker.window_seconds, worker.zone_sizes(domain.value), worker.source_sizes(domain.value)
        )
        events = self._decode(domain, todo, outcome)
        if domain is Domain.drone and self.fences is not None:
            airspace = await self.fences.changed()
            if airspace is not None:
                self.drones.use(airspace)
        processor = self.processors[domain]
        wanted = {ev.source_id for _, ev in events}
        wanted.update(sid for _, ev in events for sid in processor.related_sources(ev, partition))
        cache.states.update(await self.sink.load_states(domain.value, list(wanted - cache.states.keys())))
        self._apply(domain, events, cache, outcome, Peers(cache.states, partition))
        outcome.max_event_ms = cache.max_event_ms
        await self.publish(outcome)
        states = {sid: cache.states[sid] for sid in outcome.dirty_sources}
        return Prepared(topic, partition, base, todo[-1].offset, outcome, states, cache)

    def _settle(self, p: Prepared, result: CommitResult) -> bool:
        """Move the partition's cache on after its commit, or drop it if Redis was elsewhere; return applied."""
        if not result.applied:
            log.info(
                'partition moved on elsewhere, reloading topic="%s" partition=%d expected_offset=%d stored_offset=%d',
                p.topic,
                p.partition,
                p.base,
                result.stored_offset,
            )
            self.forget(p.topic, p.partition)
            return False
        cache = p.cache
        cache.base_offset = p.last
        if p.outcome.max_event_ms >= 0:
            cache.commit_wall_ms = int(time.time() * 1000)
        self._trim(cache, p.outcome.dirty_sources)
        return True

    async def run_fetch(self, batches: dict[tuple[str, int], list[Record]]) -> None:
        """Process one fetch's partitions side by side, committing those that share no key in one transaction.

        Live input brings a few records per partition per fetch; a Redis transaction per partition then cost
        more than the records. Partitions whose batch touches no shared key (feeders, the separation index)
        are committed together: one WATCH on their offsets, one MULTI/EXEC, each still applied only if Redis
        holds its base offset. The others commit on their own. A partition whose commit fails, or whose
        processing met a Redis or Kafka outage, is run again alone by `run_partition` (reload, retry).
        """
        tps = sorted(batches)
        again: list[tuple[str, int]] = []
        async with contextlib.AsyncExitStack() as stack:
            for tp in tps:  # in one order, so two fetches never wait for each other
                await stack.enter_async_context(self.lock(*tp))
            try:
                again = await self._run_locked(tps, batches)
            except BaseException:  # caches may hold effects that never reached Redis: read them again
                for tp in tps:
                    self.forget(*tp)
                raise
        for tp in again:
            await self.run_partition(*tp, batches[tp])

    async def _run_locked(
        self, tps: list[tuple[str, int]], batches: dict[tuple[str, int], list[Record]]
    ) -> list[tuple[str, int]]:
        """Prepare and commit the partitions of a fetch; return those to run again alone."""
        outages = (RedisError, OSError, AIOKafkaError)
        again: list[tuple[str, int]] = []
        prepared = await asyncio.gather(
            *(self._prepare(topic, partition, batches[(topic, partition)]) for topic, partition in tps),
            return_exceptions=True,
        )
        ready: list[Prepared] = []
        for tp, item in zip(tps, prepared, strict=True):
            if isinstance(item, outages):
                self.forget(*tp)
                again.append(tp)
            elif isinstance(item, BaseException):
                raise item
            elif item is not None:
                ready.append(item)
        # Partitions that touch shared keys (feeders, the separation index) commit together, decided once on
        # all their readings, and all or none; the others together, each unless it moved on elsewhere.
        units = [unit for unit in ([p for p in ready if not p.shares], [p for p in ready if p.shares]) if unit]
        results = await asyncio.gather(*(self._commit_unit(unit) for unit in units), return_exceptions=True)
        for unit, outcome in zip(units, results, strict=True):
            if isinstance(outcome, outages):
                for p in unit:
                    self.forget(p.topic, p.partition)
                    again.append((p.topic, p.partition))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                for p, result in zip(unit, outcome, strict=True):
                    if not self._settle(p, result):
                        again.append((p.topic, p.partition))
        return sorted(again)

    async def _commit_unit(self, unit: list[Prepared]) -> list[CommitResult]:
        """Commit partitions in one transaction, with their shared keys decided together if they have any."""
        return await self.sink.commit_many(
            [(p.topic, p.partition, p.base, p.last, p.outcome, p.states) for p in unit], self._shared_of(unit)
        )

    def _shared_of(self, unit: list[Prepared]) -> Shared | None:
        """Return one decision over every batch's drone fixes and supply transitions, as if one batch (None:
        the batches touch no shared key)."""
        worker = self.settings.worker
        fixes = BatchOutcome(Domain.drone, worker.window_seconds)
        supply = BatchOutcome(Domain.energy, worker.window_seconds)
        for p in unit:
            fixes.positions += p.outcome.positions
            supply.supply_transitions += p.outcome.supply_transitions
        parts = [part for part in (self._separation(fixes), self._feeders(supply)) if part is not None]
        return None if not parts else parts[0] if len(parts) == 1 else SharedAll(parts)

    def _trim(self, cache: PartitionCache, dirty: set[str]) -> None:
        """Keep at most `state_cache_per_partition` sources' state, dropping those loaded longest ago.

        Only after a commit: Redis then holds every cached state as it is, so a dropped source is read back
        unchanged when its next reading comes, and memory stays bounded however many sensors a city has.
        """
        excess = len(cache.states) - self.settings.worker.state_cache_per_partition
        if excess > 0:
            for sid in dirty:  # just used: keep, as the most recent
                cache.states[sid] = cache.states.pop(sid)
            for sid in list(itertools.islice(cache.states, excess)):
                del cache.states[sid]

    def _separation(self, outcome: BatchOutcome) -> Shared | None:
        """Return the check of this batch's drone fixes against other drones' (None: no drone fixes)."""
        if not outcome.positions:
            return None

        async def publish(alerts: list[Alert]) -> None:
            await self.publish(
                BatchOutcome(Domain.drone, self.settings.worker.window_seconds, alerts={a.id: a for a in alerts})
            )

        return SeparationCommit(SeparationCheck(outcome.positions, self.sink.keys, self.settings.drone, publish))

    def _feeders(self, outcome: BatchOutcome) -> SharedUpdate | None:
        """Return how this batch's supply transitions change their feeders' shared state (None: none do)."""
        if not outcome.supply_transitions:
            return None
        by_feeder: dict[str, list[SupplyTransition]] = {}
        for t in outcome.supply_transitions:
            by_feeder.setdefault(t.feeder_id, []).append(t)
        feeders = sorted(by_feeder)
        keys = [self.sink.keys.feeder(f) for f in feeders]
        rules = self.settings.energy

        def decide(raws: list[bytes | str | None]) -> tuple[dict[str, bytes], list[Alert]]:
            writes: dict[str, bytes] = {}
            alerts: list[Alert] = []
            for feeder_id, key, raw in zip(feeders, keys, raws, strict=True):
                state, made = feeder_step(feeder_id, orjson.loads(raw) if raw else None, by_feeder[feeder_id], rules)
                writes[key] = orjson.dumps(state)
                alerts += made
            return writes, alerts

        async def publish(alerts: list[Alert]) -> None:
            await self.publish(
                BatchOutcome(Domain.energy, self.settings.worker.window_seconds, alerts={a.id: a for a in alerts})
            )

        return SharedUpdate(keys, decide, publish)

    async def unstall(
        self, topic: str, partition: int, end_offset: int | None, stall_s: float, busy: bool = False
    ) -> bool:
        """Seek a partition back to its applied offset if records wait and none was applied for `stall_s`.

        A watchdog for consumer defects after rebalances (a partition the consumer stopped fetching or whose
        read offset jumped ahead, faust-streaming issues 221 and 629): the position in Redis is the truth, so
        reading again from it loses nothing and repeats nothing. While the intake is `busy` (fetches bring
        records), a partition behind is queued, not stalled, and its clock starts again. Returns whether it
        sought.
        """
        async with self.lock(topic, partition):
            cache, applied = await self._cache(topic, partition)
            if end_offset is None or applied >= end_offset - 1 or self.seek is None:
                cache.stalled_at = None
                return False
            now = time.monotonic()
            if busy or cache.stalled_at is None or cache.stalled_at[0] != applied:
                cache.stalled_at = (applied, now)
                return False
            if now - cache.stalled_at[1] < stall_s:
                return False
            log.warning(
                'partition stalled, reading again from redis position topic="%s" partition=%d applied_offset=%d '
                "end_offset=%d stalled_s=%.0f",
                topic,
                partition,
                applied,
                end_offset,
                now - cache.stalled_at[1],
            )
            cache.stalled_at = (applied, now)
            await self.seek(topic, partition, applied + 1)
            return True

    async def check_silence(self, topic: str, partition: int, now_ms: int, end_offset: int | None) -> int:
        """Raise the alerts of sources silent past their domain's timeout in one partition; return how many.

        Only a partition read up to its end (`end_offset`: the next offset Kafka will write) is checked:
        a worker catching up on a backlog would take old readings for silence. Time for the check is the
        partition's event-time watermark moved on by the wall time since its last commit, so a quiet topic
        still ages, while a replay at full speed is judged on its own event time.
        """
        domain = self.topics.domain_of(topic)
        processor = self.processors[domain]
        rule = getattr(processor, "silence", None)
        if rule is None:
            return 0
        async with self.lock(topic, partition):
            cache, base = await self._cache(topic, partition)
            if end_offset is None or base < end_offset - 1 or cache.max_event_ms < 0:
                return 0
            ref_ms = cache.max_event_ms + max(0, now_ms - cache.commit_wall_ms)
            silent = await self.sink.silent_sources(topic, partition, ref_ms - rule.timeout_ms)
            if not silent:
                return 0
            missing = [sid for sid in silent if sid not in cache.states]
            cache.states.update(await self.sink.load_states(domain.value, missing))
            worker = self.settings.worker
            outcome = BatchOutcome(domain, worker.window_seconds, worker.zone_sizes(domain.value))
            raised = sum(silent_alert(rule, sid, cache.states.setdefault(sid, {}), ref_ms, outcome) for sid in silent)
            for sid in silent:  # a source no longer armed (landed, already alerted) leaves the watch list
                outcome.silence_watch.setdefault(sid, None)
            await self.publish(outcome)
            states = {sid: cache.states[sid] for sid in outcome.dirty_sources}
            result = await self.sink.commit(topic, partition, base, base, outcome, states)
            if not result.applied:
                self.forget(topic, partition)
                return 0
            return raised

    async def _contiguous(self, topic: str, partition: int, cache: PartitionCache, todo: list[Record]) -> list[Record]:
        """Return the records that follow the applied offset without a hole; seek back to the first missing one.

        Redis, not Kafka's committed offset, says what is applied. Faust can hand over records past a hole
        after a rebalance (a prefetched record from before it, faust-streaming issues 216 and 221) and then
        commit past the hole; applying them would lose the records in between for good. So the runner applies
        only the run of records that starts right after the applied offset, and seeks the consumer back to
        the first missing offset; the records after the hole come again.
        """
        if self.seek is None or not todo:
            return todo
        expected = cache.base_offset + 1 if cache.base_offset is not None else 0
        run = 0
        while run < len(todo) and todo[run].offset == expected + run:
            run += 1
        if run == len(todo):
            cache.gap, cache.gap_seeks = None, 0
            return todo
        if run > 0:
            # Apply the run now; the records after the hole come again after the seek.
            await self.seek(topic, partition, expected + run)
            return todo[:run]
        gap = (expected, todo[0].offset)
        cache.gap_seeks = cache.gap_seeks + 1 if cache.gap == gap else 1
        cache.gap = gap
        if cache.gap_seeks > GAP_SEEKS_BEFORE_ACCEPTING:
            log.warning(
                'offsets missing in kafka, going on topic="%s" partition=%d missing_from=%d missing_to=%d',
                topic,
                partition,
                expected,
                todo[0].offset - 1,
            )
            cache.gap, cache.gap_seeks = None, 0
            return todo
        log.info(
            'records past a hole, seeking back topic="%s" partition=%d expected_offset=%d got_offset=%d',
            topic,
            partition,
            expected,
            todo[0].offset,
        )
        await self.seek(topic, partition, expected)
        return []

    def _decode(self, domain: Domain, records: list[Record], outcome: BatchOutcome) -> list[tuple[Record, SensorEvent]]:
        events = []
        for r in records:
            try:
                events.append((r, decode_event(domain, r.value)))
            except EventDecodeError as exc:
                outcome.deadletters.append(
                    DeadLetter(r.topic, r.partition, r.offset, r.key, r.value, exc.reason, exc.stage)
                )
        return events

    def _apply(
        self,
        domain: Domain,
        events: list[tuple[Record, SensorEvent]],
        cache: PartitionCache,
        outcome: BatchOutcome,
        peers: Peers,
    ) -> None:
        processor = self.processors[domain]
        window_s = self.settings.worker.window_seconds
        grace_ms = int(self.settings.worker.window_grace_s * 1000)
        spacing_ms = self.min_spacing_ms[domain]
        zone_ids = self.zones.district_ids([ev.lon for _, ev in events], [ev.lat for _, ev in events])
        for (record, event), zone_id in zip(events, zone_ids, strict=True):
            state = cache.states.setdefault(event.source_id, {})
            seen = state.setdefault("seen", {})
            verdict, reason = classify(event.observed_ms, seen, cache.max_event_ms, window_s, grace_ms, spacing_ms)
            if verdict in (Timeliness.late, Timeliness.duplicate, Timeliness.flood):
                refused = DeadLetter(
                    record.topic, record.partition, record.offset, record.key, record.value, reason, verdict.value
                )
                (outcome.late if verdict is Timeliness.late else outcome.deadletters).append(refused)
                continue
            try:
                processor.process(event, zone_id or UNZONED, state, outcome, verdict is Timeliness.on_time, peers)
            except Exception as exc:  # a rule bug on one odd event must not stop the partition
                log.exception(
                    'processing failed topic="%s" partition=%d offset=%d', record.topic, record.partition, record.offset
                )
                outcome.deadletters.append(
                    DeadLetter(
                        record.topic,
                        record.partition,
                        record.offset,
                        record.key,
                        record.value,
                        f"processing error: {type(exc).__name__}: {exc}",
                        "process",
                    )
                )
                continue
            remember(seen, event.observed_ms)
            cache.max_event_ms = max(cache.max_event_ms, event.observed_ms)
            outcome.events += 1
            outcome.dirty_sources.add(event.source_id)
