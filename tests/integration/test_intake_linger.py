"""The intake on real Kafka: a trickle of live records is gathered into few batches by the linger, the
applied offsets reach the group in background commits that never hold a fetch back, records fetched ahead
never outlive a seek or a new assignment, and a fetch that fails for good stops the worker."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import TopicPartition
from kafka import KafkaAdminClient, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition

from processors.intake import BatchIntake
from processors.runner import Record
from streams.settings import Settings
from streams.topics import Topics, ensure_topics
from tests.support.deployment import isolated_settings

pytestmark = pytest.mark.integration

RECORDS = 150
SPACING_S = 0.01  # one record every 10 ms: 1.5 s of live input


class _Sink:
    async def applied_offset(self, topic: str, partition: int) -> int:
        return -1


class RecordingRunner:
    """Stands in for the BatchRunner: keeps each batch the intake hands over, applies nothing."""

    def __init__(self) -> None:
        self.sink = _Sink()
        self.batches: list[list[Record]] = []
        self.fetches: list[int] = []
        self._applied: dict[tuple[str, int], int] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    def lock(self, topic: str, partition: int) -> asyncio.Lock:
        return self._locks.setdefault((topic, partition), asyncio.Lock())

    def forget(self, topic: str, partition: int) -> None:
        self._applied.pop((topic, partition), None)

    def applied(self, topic: str, partition: int) -> int | None:
        return self._applied.get((topic, partition))

    async def run_fetch(self, batches: dict[tuple[str, int], list[Record]]) -> None:
        for (topic, partition), records in batches.items():
            self.batches.append(records)
            self._applied[(topic, partition)] = records[-1].offset


def _trickle(settings: Settings, span: list[float]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_list, linger_ms=0)
    topic = Topics(settings.kafka.topic_namespace).traffic
    span.append(time.monotonic())
    for i in range(RECORDS):
        producer.send(topic, key=b"seg-1", value=b"%d" % i)
        producer.flush()
        time.sleep(SPACING_S)
    span.append(time.monotonic())
    producer.close()


async def _until(done: Callable[[], bool], timeout_s: float) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if done():
            return
        await asyncio.sleep(0.05)


class SlowCommitIntake(BatchIntake):
    """An intake whose offset commits take 0.3 s each, as on a broker under load."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.commits: list[dict[TopicPartition, int]] = []

    async def _commit(self, applied: Any) -> None:
        self.commits.append(dict(applied))
        await asyncio.sleep(0.3)
        await super()._commit(applied)


async def _consume(
    settings: Settings, span: list[float], intake_class: type[BatchIntake] = BatchIntake
) -> tuple[RecordingRunner, BatchIntake]:
    runner = RecordingRunner()
    topics = Topics(settings.kafka.topic_namespace)
    intake = intake_class(settings, runner, [topics.traffic])  # type: ignore[arg-type]
    await intake.start()
    try:
        await _until(lambda: bool(intake.assignment()), 60)
        feeder = threading.Thread(target=_trickle, args=(settings, span))
        feeder.start()
        await _until(lambda: sum(len(b) for b in runner.batches) >= RECORDS, 60)
        feeder.join()
    finally:
        with contextlib.suppress(Exception):
            await intake.stop()
    return runner, intake


@pytest.mark.parametrize(("linger_s", "fetch_wait_s"), [(0.0, 0.025), (0.5, 0.025), (0.0, 0.5)])
def test_live_records_come_in_batches_no_more_than_one_per_linger_or_fetch_wait(
    kafka_bootstrap: str, redis_url: str, linger_s: float, fetch_wait_s: float
) -> None:
    settings = isolated_settings(
        "linger",
        kafka_bootstrap,
        redis_url,
        kafka={"partitions": 1},
        worker={"batch_linger_s": linger_s, "fetch_wait_s": fetch_wait_s},
    )
    ensure_topics(settings.kafka)
    span: list[float] = []
    runner, _ = asyncio.run(_consume(settings, span))
    offsets: list[Any] = [r.offset for batch in runner.batches for r in batch]
    assert offsets == list(range(RECORDS))  # every record once, in order, whatever the batching
    span_s = span[1] - span[0]  # as long as the producer really took
    if linger_s or fetch_wait_s >= 0.5:
        # One batch per linger, or per fetch the broker held for more records, at most (plus the first and
        # the last), however slowly the machine runs.
        assert len(runner.batches) <= span_s / max(linger_s, fetch_wait_s) + 2, [len(b) for b in runner.batches]
    else:
        # Without a linger a fetch returns as soon as a record is there: many small batches.
        assert len(runner.batches) > span_s / 0.5 + 2, [len(b) for b in runner.batches]


def test_slow_offset_commits_hold_no_fetch_back_and_the_last_offset_reaches_kafka(
    kafka_bootstrap: str, redis_url: str
) -> None:
    settings = isolated_settings("commit", kafka_bootstrap, redis_url, kafka={"partitions": 1})
    ensure_topics(settings.kafka)
    span: list[float] = []
    runner, intake = asyncio.run(_consume(settings, span, SlowCommitIntake))
    assert isinstance(intake, SlowCommitIntake)
    commits = intake.commits
    offsets = [r.offset for batch in runner.batches for r in batch]
    assert offsets == list(range(RECORDS))
    # Fetches went on while a commit was in flight: far fewer commits than batches, each of the newest offset.
    assert len(commits) < len(runner.batches) / 2, (len(commits), len(runner.batches))
    applied = [max(c.values()) for c in commits if c]
    assert applied == sorted(applied)
    # Stopping the intake sent the last applied offset: the group's lag is zero.
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_list)
    try:
        group = settings.worker.group_id
        committed = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    tp = KafkaTopicPartition(Topics(settings.kafka.topic_namespace).traffic, 0)
    assert committed[tp].offset == RECORDS


BACKLOG = 200


class SeekingRunner(RecordingRunner):
    """A runner whose first batch takes a while (the intake fetches ahead meanwhile) and then moves the
    partition: the hole guard's seek, or a new assignment positioned from Redis."""

    def __init__(self, move: str, to: int) -> None:
        super().__init__()
        self.move, self.to = move, to
        self.intake: BatchIntake | None = None

    async def applied_offset(self, topic: str, partition: int) -> int:
        return self.to - 1

    async def run_fetch(self, batches: dict[tuple[str, int], list[Record]]) -> None:
        intake = self.intake
        assert intake is not None
        first = not self.batches
        await super().run_fetch(batches)
        if first:
            await asyncio.sleep(0.5)  # aiokafka fetches ahead from the old position meanwhile
            (topic, partition), _ = next(iter(batches.items()))
            if self.move == "seek":
                await intake.seek(topic, partition, self.to)
            else:
                self.sink = self  # type: ignore[assignment]
                await intake.assigned([TopicPartition(topic, partition)])


async def _consume_backlog(settings: Settings, runner: SeekingRunner, until: int) -> None:
    topics = Topics(settings.kafka.topic_namespace)
    intake = BatchIntake(settings, runner, [topics.traffic])  # type: ignore[arg-type]
    runner.intake = intake
    await intake.start()
    try:
        await _until(lambda: sum(len(b) for b in runner.batches) >= until, 60)
    finally:
        await intake.stop()


@pytest.mark.parametrize("move", ["seek", "reassigned"])
def test_records_fetched_ahead_of_a_seek_or_new_assignment_are_never_handed_over(
    kafka_bootstrap: str, redis_url: str, move: str
) -> None:
    batch_max = 50
    settings = isolated_settings(
        "fetched-ahead", kafka_bootstrap, redis_url, kafka={"partitions": 1}, worker={"batch_max": batch_max}
    )
    ensure_topics(settings.kafka)
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_list)
    for i in range(BACKLOG):
        producer.send(Topics(settings.kafka.topic_namespace).traffic, key=b"seg-1", value=b"%d" % i)
    producer.flush()
    producer.close()
    to = 10
    runner = SeekingRunner(move, to)
    asyncio.run(_consume_backlog(settings, runner, batch_max + BACKLOG - to))
    offsets = [r.offset for batch in runner.batches for r in batch]
    # The first batch, then from the new position on, each record once: nothing fetched before the move (the
    # runner's hole guard relies on it: records from the old position would look like a hole, again and again).
    assert offsets == list(range(batch_max)) + list(range(to, BACKLOG)), offsets


def test_an_intake_whose_fetching_fails_stops_and_says_why(kafka_bootstrap: str, redis_url: str) -> None:
    settings = isolated_settings("fetch-fails", kafka_bootstrap, redis_url, kafka={"partitions": 1})
    ensure_topics(settings.kafka)
    failures: list[BaseException] = []

    async def main() -> None:
        runner = RecordingRunner()
        intake = BatchIntake(settings, runner, [Topics(settings.kafka.topic_namespace).traffic])  # type: ignore[arg-type]
        await intake.start(on_failure=failures.append)
        try:
            await _until(lambda: bool(intake.assignment()), 60)
            assert intake.consumer is not None

            async def broken(*args: Any, **kwargs: Any) -> Any:
                raise RuntimeError("fetch decoder broke")

            intake.consumer.getmany = broken  # type: ignore[method-assign]
            await _until(lambda: bool(failures), 10)
        finally:
            with contextlib.suppress(Exception):
                await intake.stop()

    asyncio.run(main())
    assert [str(f) for f in failures] == ["fetch decoder broke"]
