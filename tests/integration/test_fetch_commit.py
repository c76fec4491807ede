"""Partitions of one fetch committed in one Redis transaction leave exactly what one commit each leaves."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import redis
from redis.asyncio import Redis

from processors.outcome import BatchOutcome
from processors.runner import BatchRunner, Record
from processors.sink import RedisSink
from streams.keys import Keys
from streams.models import Domain
from streams.settings import Settings
from tests.support.replay import city_batches, redis_contents, replay_runner


def _fetches(batches: list[list[Record]]) -> list[dict[tuple[str, int], list[Record]]]:
    """Deal each partition's batches out in order, one per fetch, as a consumer hands them over."""
    queues: dict[tuple[str, int], list[list[Record]]] = {}
    for batch in batches:
        queues.setdefault((batch[0].topic, batch[0].partition), []).append(batch)
    fetches = []
    while any(queues.values()):
        fetches.append({tp: q.pop(0) for tp, q in queues.items() if q})
    return fetches


def _in_any_order(contents: dict[bytes, object]) -> dict[bytes, object]:
    """Return contents with what only the order of commits arranges put in order (JSON keys, the event log),
    and the change counters as whether they moved: a transaction raises each once, however many batches."""
    out = dict(contents)
    for key, value in contents.items():
        if (key.startswith(b":aggver:") or key == b":alerts-version") and isinstance(value, bytes):
            out[key] = int(value) > 0
        elif key.startswith(b":feeder:") and isinstance(value, bytes):
            out[key] = orjson.loads(value)  # dicts compare without their key order
        elif key == b":alert-events" and isinstance(value, list):
            out[key] = sorted(sorted(fields.items()) for fields in value)
    return out


def _runner(client: Redis, prefix: str) -> BatchRunner:
    return replay_runner(client, prefix, Settings(environment="test"))


async def _one_by_one(url: str, batches: list[list[Record]]) -> None:
    client = Redis.from_url(url)
    runner = _runner(client, "single")
    for batch in batches:
        await runner.run(batch)
    await client.aclose()


async def _by_fetch(url: str, fetches: list[dict[tuple[str, int], list[Record]]]) -> int:
    client = Redis.from_url(url)
    runner = _runner(client, "fetched")
    transactions = 0
    commit_many = runner.sink.commit_many

    async def counting(batches: list, shared: Any = None) -> list:  # type: ignore[type-arg]
        nonlocal transactions
        transactions += len(batches) > 1
        return await commit_many(batches, shared)

    runner.sink.commit_many = counting  # type: ignore[method-assign]
    for fetch in fetches:
        await runner.run_fetch(fetch)
    await client.aclose()
    return transactions


def test_committing_a_fetch_together_leaves_what_one_commit_per_partition_leaves(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # Drone separation and feeder outages join partitions: what they decide depends on how partitions
    # interleave, in any deployment. Traffic and energy readings are each their partition's own.
    batches = [b for b in city_batches(Settings(environment="test")) if not b[0].topic.endswith(".drone")]
    fetches = _fetches(batches)
    asyncio.run(_one_by_one(redis_url, batches))
    grouped = asyncio.run(_by_fetch(redis_url, fetches))
    single, fetched = (_in_any_order(redis_contents(redis_client, p)) for p in ("single", "fetched"))
    assert len(single) > 100
    assert single == fetched
    assert grouped > 0  # some fetches' partitions did share a transaction


def test_a_partition_that_moved_on_is_left_out_of_the_shared_transaction(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def run() -> list[tuple[bool, int]]:
        client = Redis.from_url(redis_url)
        sink = RedisSink(client, Keys("moved"))
        await client.set(sink.keys.partition_offset("t.traffic", 0), 41)  # another worker applied up to 41
        await client.set(sink.keys.partition_offset("t.traffic", 1), 9)
        mine = BatchOutcome(Domain.traffic, 60, events=3)
        results = await sink.commit_many(
            [
                ("t.traffic", 0, 30, 40, BatchOutcome(Domain.traffic, 60, events=10), {}),
                ("t.traffic", 1, 9, 12, mine, {}),
            ]
        )
        await client.aclose()
        return [(r.applied, r.stored_offset) for r in results]

    assert asyncio.run(run()) == [(False, 41), (True, 12)]
    keys = Keys("moved")
    assert redis_client.get(keys.partition_offset("t.traffic", 0)) == b"41"
    assert redis_client.get(keys.partition_offset("t.traffic", 1)) == b"12"
    assert redis_client.hget(keys.stats, "events:t.traffic") == b"3"  # only the partition still at its base


def test_a_partition_dropped_by_a_rebalance_during_its_commit_does_not_stop_the_intake(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """The rebalance listener forgets newly assigned partitions without their lock; a fetch in flight goes on."""
    batches = [b for b in city_batches(Settings(environment="test")) if not b[0].topic.endswith(".drone")]
    fetch = _fetches(batches)[0]

    async def run() -> None:
        client = Redis.from_url(redis_url)
        runner = _runner(client, "dropped")
        commit_many = runner.sink.commit_many

        async def forgetting(items: list, shared: Any = None) -> list:  # type: ignore[type-arg]
            for topic, partition, *_ in items:
                runner.forget(topic, partition)
            return await commit_many(items, shared)

        runner.sink.commit_many = forgetting  # type: ignore[method-assign]
        await runner.run_fetch(fetch)
        await client.aclose()

    asyncio.run(run())
    keys = Keys("dropped")
    for (topic, partition), records in fetch.items():
        assert redis_client.get(keys.partition_offset(topic, partition)) == str(records[-1].offset).encode()
