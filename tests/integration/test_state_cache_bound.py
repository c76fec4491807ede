"""A worker that keeps almost no detector state in memory commits exactly what one that keeps it all does."""

from __future__ import annotations

import asyncio

import redis
from redis.asyncio import Redis

from processors.runner import Record
from streams.settings import Settings
from tests.support.replay import BATCH, city_batches, redis_contents, replay_runner


async def _run(url: str, prefix: str, settings: Settings, batches: list[list[Record]]) -> int:
    client = Redis.from_url(url)
    runner = replay_runner(client, prefix, settings)
    most = 0
    for batch in batches:
        await runner.run(batch)
        most = max(most, *(len(c.states) for c in runner.caches.values()))
    await client.aclose()
    return most


def test_a_bounded_state_cache_commits_exactly_what_an_unbounded_one_does(
    redis_url: str, redis_client: redis.Redis
) -> None:
    base = Settings(environment="test")
    batches = city_batches(base)
    events = sum(len(b) for b in batches)
    tiny = base.model_copy(update={"worker": base.worker.model_copy(update={"state_cache_per_partition": 1})})
    most_full = asyncio.run(_run(redis_url, "full", base, batches))
    most_tiny = asyncio.run(_run(redis_url, "tiny", tiny, batches))
    print(f"\n{events} events in {len(batches)} batches; most states cached in a partition: {most_full} vs {most_tiny}")
    assert most_full > 50 and most_tiny <= BATCH  # the bound held between batches (a batch's own sources stay)
    full, tiny_contents = redis_contents(redis_client, "full"), redis_contents(redis_client, "tiny")
    assert len(full) > 100
    assert full == tiny_contents
