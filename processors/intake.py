"""The worker's intake: many records per fetch straight from aiokafka, in place of Faust's per-message stream.

Faust hands an agent one message at a time (a task and an `asyncio.wait` per message in its consumer's
drain loop, then the conductor, codec, sensors and stream iterator), which holds a worker near 5,000
events/s whatever the agent then does with them. The intake is one aiokafka consumer in the worker's
consumer group, subscribed to the three sensor topics: each `getmany` brings up to `batch_max` records,
and the records that arrive while one fetch is processed make the next, so batches grow with the load. With
`batch_linger_s` (default 0: latency first) the intake keeps fetching that long once records come, like a
producer's linger, for fewer and larger batches when input trickles. Each partition's run is one batch,
partitions side by side, committed to Redis in at most two transactions (`BatchRunner.run_fetch`). Faust
stays the
frame: the app, its producer for alerts and dead letters, the timers, the worker's lifecycle and signals.

Offsets: Redis holds what is applied (the runner's compare-and-set on each partition's offset). When a
partition is assigned, the intake seeks it to the record after the one applied in Redis; it commits to
Kafka the offsets applied, in the background and at most once per `commit_interval_s`, for lag monitoring
and tools, never before Redis has them.
When partitions are revoked it waits for their batches in flight, so the next owner starts from a settled
position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from redis.exceptions import RedisError

from processors.runner import BatchRunner, Record
from streams.security import aiokafka_options
from streams.settings import Settings

log = logging.getLogger(__name__)

FETCH_MIN_BYTES = 64 << 10  # about 400 events: a live fetch waits for this much, or `fetch_wait_s`


def _record(tp: TopicPartition, r: Any) -> Record:
    return Record(tp.topic, tp.partition, r.offset, r.key, r.value)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, intake: BatchIntake) -> None:
        self.intake = intake

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.intake.revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self.intake.assigned(list(assigned))


class BatchIntake:
    """Fetch the sensor topics in batches and hand each partition's records to the runner."""

    def __init__(self, settings: Settings, runner: BatchRunner, topics: list[str]) -> None:
        self.settings = settings
        self.runner = runner
        self.topics = sorted(topics)
        self.consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle_since: float | None = None  # monotonic time since when fetches bring nothing
        self._positioned: dict[TopicPartition, int] = {}  # assigned partitions' Redis positions, not yet committed
        self._to_commit: dict[TopicPartition, int] = {}  # applied offsets waiting for the commit in flight
        self._committing: asyncio.Task[None] | None = None
        self._on_failure: Callable[[BaseException], None] | None = None
        self._flush = asyncio.Event()  # set on stop: send the offsets waiting now, without the interval
        self._committed_at = 0.0  # monotonic s of the last commit sent

    def assignment(self) -> set[TopicPartition]:
        """Return the partitions this worker holds now (empty before the first assignment)."""
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    def idle_for(self) -> float:
        """Return for how many seconds fetches have brought nothing (0 while records flow)."""
        return 0.0 if self._idle_since is None else time.monotonic() - self._idle_since

    def highwater(self, tp: TopicPartition) -> int | None:
        """Return the last end offset seen for a partition in fetch responses (None: not fetched yet)."""
        return self.consumer.highwater(tp) if self.consumer is not None else None

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Return the partitions' end offsets, asked of the broker."""
        if self.consumer is None or not tps:
            return {}
        return dict(await self.consumer.end_offsets(tps))

    async def seek(self, topic: str, partition: int, offset: int) -> None:
        """Make the next fetch of a partition start at an offset (the runner's hole guard and watchdog)."""
        if self.consumer is not None:
            with contextlib.suppress(IllegalStateError):  # no longer assigned: its next owner reads from Redis
                self.consumer.seek(TopicPartition(topic, partition), offset)

    async def start(self, on_failure: Callable[[BaseException], None] | None = None) -> None:
        """Join the group and start fetching; `on_failure` is told if fetching stops on an unexpected error."""
        kafka = self.settings.kafka
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_list,
            client_id=f"{kafka.client_id}-intake",
            group_id=self.settings.worker.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(kafka.session_timeout_s * 1000),
            heartbeat_interval_ms=int(kafka.heartbeat_interval_s * 1000),
            request_timeout_ms=int(max(kafka.request_timeout_s, kafka.session_timeout_s + 5) * 1000),
            max_partition_fetch_bytes=4 << 20,
            fetch_max_bytes=32 << 20,
            # The broker answers a fetch once it holds FETCH_MIN_BYTES for it or after fetch_wait_s. With
            # Kafka's default (1 byte, up to 500 ms) live input came in many tiny fetches, each paying for a
            # Redis transaction: at 100 events/s a worker was 37% busy.
            fetch_min_bytes=FETCH_MIN_BYTES,
            fetch_max_wait_ms=max(1, round(self.settings.worker.fetch_wait_s * 1000)),
            **aiokafka_options(kafka),
        )
        await self.consumer.start()
        self.consumer.subscribe(self.topics, listener=_Rebalance(self))
        self._on_failure = on_failure
        self._task = asyncio.create_task(self._run(), name="citystream-intake")
        self._task.add_done_callback(lambda task: self._ended(task, on_failure))
        log.info('intake started topics="%s" group="%s"', ",".join(self.topics), self.settings.worker.group_id)

    @staticmethod
    def _ended(task: asyncio.Task[None], on_failure: Callable[[BaseException], None] | None) -> None:
        """Log an intake that stopped on an error (a worker must not sit silent with its partitions)."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        log.error("intake stopped on an error, stopping the worker: %r", exc, exc_info=exc)
        if on_failure is not None:
            on_failure(exc)

    async def stop(self) -> None:
        """Stop fetching, let the batch in flight finish, send the offsets applied so far, and leave the group."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._committing is not None:
            self._flush.set()
            with contextlib.suppress(Exception):  # already logged and reported by `_ended`
                await self._committing
        if self.consumer is not None:
            await self.consumer.stop()

    async def assigned(self, tps: list[TopicPartition]) -> None:
        """Start each new partition at the record after the one applied in Redis."""
        consumer = self.consumer
        assert consumer is not None
        for tp in sorted(tps):
            self.runner.forget(tp.topic, tp.partition)
            applied = await self._applied(tp)
            consumer.seek(tp, applied + 1)
            if applied >= 0:
                self._positioned[tp] = applied
        log.info("partitions assigned count=%d", len(tps))

    async def revoked(self, tps: list[TopicPartition]) -> None:
        """Let the batches in flight on revoked partitions finish, then drop their cached state."""
        for tp in sorted(tps):
            async with self.runner.lock(tp.topic, tp.partition):
                self.runner.forget(tp.topic, tp.partition)

    async def _applied(self, tp: TopicPartition) -> int:
        delay = 0.1
        while True:
            try:
                return await self.runner.sink.applied_offset(tp.topic, tp.partition)
            except (RedisError, OSError) as exc:
                log.warning(
                    'redis unavailable, waiting to position partition topic="%s" partition=%d error="%s"',
                    tp.topic,
                    tp.partition,
                    exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.worker.redis_retry_max_s)

    async def _run(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        worker = self.settings.worker
        while True:
            if self._positioned:  # a new owner tells Kafka at once where Redis stands, so lag is right from the start
                positioned, self._positioned = self._positioned, {}
                self._commit_soon(positioned)
            try:
                fetched = await consumer.getmany(
                    timeout_ms=int(worker.batch_within_s * 1000), max_records=worker.batch_max
                )
            except KafkaError as exc:
                log.warning('kafka fetch failed, retrying error="%s"', exc)
                await asyncio.sleep(1)
                continue
            if not fetched:
                if self._idle_since is None:
                    self._idle_since = time.monotonic()
                continue
            self._idle_since = None
            await self._linger(fetched)
            await self.runner.run_fetch(
                {(tp.topic, tp.partition): [_record(tp, r) for r in records] for tp, records in fetched.items()}
            )
            self._commit_soon({tp: self.runner.applied(tp.topic, tp.partition) for tp in fetched})

    def _commit_soon(self, applied: Mapping[TopicPartition, int | None]) -> None:
        """Commit applied offsets to Kafka in the background: the newest per partition, one commit at a time, at
        most one per `commit_interval_s`.

        A commit is a broker round trip (about 9 ms a fetch on a busy two-core machine) and a write to the
        broker's offsets log that nothing in the next fetch needs: Redis holds what is applied, Kafka's copy is
        for lag figures (KEDA, tools). Committing after every fetch held each live alert back by that much and
        cost the broker CPU that the worker shares.
        """
        self._to_commit.update({tp: offset for tp, offset in applied.items() if offset is not None})
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_pending(), name="citystream-intake-commit")
            self._committing.add_done_callback(lambda task: self._ended(task, self._on_failure))

    async def _commit_pending(self) -> None:
        while self._to_commit:
            wait = self._committed_at + self.settings.worker.commit_interval_s - time.monotonic()
            if wait > 0 and not self._flush.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush.wait(), wait)
            applied, self._to_commit = self._to_commit, {}
            self._committed_at = time.monotonic()
            await self._commit(applied)

    async def _linger(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        """Keep fetching into `fetched` for `batch_linger_s` or until it holds `batch_max` records.

        A fetch returns as soon as any record is there, so live input would come one or two records per
        partition, each batch paying a Redis transaction. Waiting a little gathers them (a producer's linger).
        """
        worker = self.settings.worker
        consumer = self.consumer
        assert consumer is not None
        count = sum(len(records) for records in fetched.values())
        deadline = time.monotonic() + worker.batch_linger_s
        while count < worker.batch_max:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                more = await consumer.getmany(timeout_ms=max(1, int(left * 1000)), max_records=worker.batch_max - count)
            except KafkaError as exc:  # process what came; the next fetch retries
                log.warning('kafka fetch failed, processing the batch so far error="%s"', exc)
                return
            for tp, records in more.items():
                fetched.setdefault(tp, []).extend(records)
                count += len(records)

    async def _commit(self, applied: Mapping[TopicPartition, int]) -> None:
        """Commit to Kafka the offsets after those applied in Redis (for lag figures; Redis stays the truth)."""
        consumer = self.consumer
        assert consumer is not None
        mine = consumer.assignment()
        offsets = {
            tp: OffsetAndMetadata(offset + 1, "") for tp, offset in applied.items() if tp in mine and offset >= 0
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:  # a rebalance is under way
            log.info('offset commit skipped error="%s"', exc)
