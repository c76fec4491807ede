"""The runner applies only records that follow the applied offset, and seeks back over a hole."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from geo.zones import ZoneIndex
from processors.runner import GAP_SEEKS_BEFORE_ACCEPTING, BatchRunner, PartitionCache, Record
from processors.sink import RedisSink
from streams.settings import DEFAULT_ZONES_FILE, Settings


class Seeks:
    """Record the seeks a runner asks for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    async def __call__(self, topic: str, partition: int, offset: int) -> None:
        self.calls.append((topic, partition, offset))


@pytest.fixture
def runner() -> tuple[BatchRunner, Seeks]:
    seeks = Seeks()
    sink = cast(RedisSink, None)  # _contiguous never touches Redis

    async def publish(_: object) -> None:
        return None

    return BatchRunner(
        Settings(environment="test"), ZoneIndex.from_file(DEFAULT_ZONES_FILE), sink, publish, seeks
    ), seeks


def records(*offsets: int) -> list[Record]:
    return [Record("t", 3, o, b"k", b"{}") for o in offsets]


def contiguous(runner: BatchRunner, cache: PartitionCache, offsets: list[int]) -> list[int]:
    todo = asyncio.run(runner._contiguous("t", 3, cache, records(*offsets)))
    return [r.offset for r in todo]


def test_records_right_after_the_applied_offset_are_applied_without_seeking(runner: tuple[BatchRunner, Seeks]) -> None:
    r, seeks = runner
    assert contiguous(r, PartitionCache(base_offset=9), [10, 11, 12]) == [10, 11, 12]
    assert seeks.calls == []


def test_records_past_a_hole_are_not_applied_and_the_consumer_seeks_back(runner: tuple[BatchRunner, Seeks]) -> None:
    r, seeks = runner
    assert contiguous(r, PartitionCache(base_offset=9), [15, 16]) == []
    assert seeks.calls == [("t", 3, 10)]


def test_a_hole_inside_a_batch_applies_the_run_before_it_and_seeks_to_the_hole(
    runner: tuple[BatchRunner, Seeks],
) -> None:
    r, seeks = runner
    assert contiguous(r, PartitionCache(base_offset=9), [10, 11, 14, 15]) == [10, 11]
    assert seeks.calls == [("t", 3, 12)]


def test_a_fresh_partition_expects_offset_zero(runner: tuple[BatchRunner, Seeks]) -> None:
    r, seeks = runner
    assert contiguous(r, PartitionCache(base_offset=-1), [4, 5]) == []
    assert seeks.calls == [("t", 3, 0)]


def test_a_hole_that_stays_after_repeated_seeks_is_accepted_as_missing_offsets(
    runner: tuple[BatchRunner, Seeks],
) -> None:
    r, seeks = runner
    cache = PartitionCache(base_offset=9)
    for _ in range(GAP_SEEKS_BEFORE_ACCEPTING):
        assert contiguous(r, cache, [13, 14]) == []
    assert contiguous(r, cache, [13, 14]) == [13, 14]
    assert len(seeks.calls) == GAP_SEEKS_BEFORE_ACCEPTING
    # A different hole later starts counting afresh.
    cache.base_offset = 14
    assert contiguous(r, cache, [20]) == []


def test_stale_records_draining_after_a_seek_do_not_count_as_the_same_hole(runner: tuple[BatchRunner, Seeks]) -> None:
    r, _ = runner
    cache = PartitionCache(base_offset=9)
    for first in (13, 17, 21, 25, 29, 33, 37):
        assert contiguous(r, cache, [first, first + 1]) == []
    assert contiguous(r, cache, [10, 11]) == [10, 11]


class StoredPosition:
    """A sink stand-in that only answers where a partition stands in Redis."""

    def __init__(self, applied: int) -> None:
        self.applied = applied

    async def applied_position(self, topic: str, partition: int) -> tuple[int, int, int]:
        return self.applied, -1, -1


def _watched_runner(applied: int, seeks: Seeks) -> BatchRunner:
    """Return a runner whose Redis says `applied` for every partition, recording its seeks."""

    async def publish(_: object) -> None:
        return None

    return BatchRunner(
        Settings(environment="test"),
        ZoneIndex.from_file(DEFAULT_ZONES_FILE),
        cast(RedisSink, StoredPosition(applied)),
        publish,
        seeks,
    )


def test_a_partition_with_waiting_records_and_no_progress_is_read_again_from_its_redis_position() -> None:
    seeks = Seeks()

    async def publish(_: object) -> None:
        return None

    position = StoredPosition(41)
    sink = cast(RedisSink, position)
    r = BatchRunner(Settings(environment="test"), ZoneIndex.from_file(DEFAULT_ZONES_FILE), sink, publish, seeks)

    async def scenario() -> list[bool]:
        first = await r.unstall("t", 3, 100, stall_s=0.05)  # behind: the clock starts
        await asyncio.sleep(0.06)
        second = await r.unstall("t", 3, 100, stall_s=0.05)  # still at 41 after the stall time: seek
        caught_up = await r.unstall("t", 3, 42, stall_s=0.05)  # the end is right after what is applied
        return [first, second, caught_up]

    assert asyncio.run(scenario()) == [False, True, False]
    assert seeks.calls == [("t", 3, 42)]


def test_a_partition_that_moves_is_never_sought() -> None:
    seeks = Seeks()
    r = _watched_runner(10, seeks)

    async def scenario() -> None:
        await r.unstall("t", 1, 50, stall_s=0.01)
        r.caches[("t", 1)].base_offset = 20  # a batch was applied meanwhile
        await asyncio.sleep(0.02)
        assert not await r.unstall("t", 1, 50, stall_s=0.01)

    asyncio.run(scenario())
    assert seeks.calls == []


def test_a_partition_queued_behind_others_while_records_flow_is_not_sought() -> None:
    seeks = Seeks()
    r = _watched_runner(41, seeks)

    async def scenario() -> list[bool]:
        first = await r.unstall("t", 2, 100, stall_s=0.05, busy=True)
        await asyncio.sleep(0.06)
        busy = await r.unstall("t", 2, 100, stall_s=0.05, busy=True)  # the intake still brings records
        idle_at_once = await r.unstall("t", 2, 100, stall_s=0.05)  # idle now: the clock starts from here
        await asyncio.sleep(0.06)
        idle_long = await r.unstall("t", 2, 100, stall_s=0.05)
        return [first, busy, idle_at_once, idle_long]

    assert asyncio.run(scenario()) == [False, False, False, True]
    assert seeks.calls == [("t", 2, 42)]
