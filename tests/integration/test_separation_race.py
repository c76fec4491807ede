"""Separation decided by two partitions at once on real Redis: the commit that loses the race decides again."""

from __future__ import annotations

import asyncio
from typing import Any

import redis
from redis.asyncio import Redis

from processors.drone.separation import Position, SeparationCheck
from processors.outcome import BatchOutcome
from processors.sink import RedisSink
from streams.keys import Keys
from streams.models import Alert, Domain
from streams.settings import Settings

T0 = 1_790_000_000_000
TOPIC = "city.drone"


def _fix(drone: str, lon: float, t_ms: int = T0, height_m: float = 60.0) -> Position:
    return Position(drone, "OP-1", lon, 22.8, height_m, t_ms, True, "zone-a")


async def _commit_side_by_side(url: str, batches: list[list[Position]], prefix: str) -> list[Alert]:
    """Commit each batch of fixes as its own partition, all reading Redis before any of them writes."""
    client = Redis.from_url(url)
    sink = RedisSink(client, Keys(prefix))
    rules = Settings(environment="test").drone
    published: list[Alert] = []
    everyone_read = asyncio.Barrier(len(batches))
    first_reads: set[int] = set()

    async def publish(alerts: list[Alert]) -> None:
        published.extend(alerts)

    class HeldCheck(SeparationCheck):
        """Waits, on its first decision only, until every partition has read the neighbours."""

        def __init__(self, partition: int, positions: list[Position]) -> None:
            super().__init__(positions, sink.keys, rules, publish)
            self.partition = partition

        async def decide_in(self, pipe: Any, reader: Any) -> Any:
            decided = await super().decide_in(pipe, reader)
            if self.partition not in first_reads:
                first_reads.add(self.partition)
                await everyone_read.wait()
            return decided

    try:
        results = await asyncio.gather(
            *(
                sink.commit(TOPIC, i, -1, 0, BatchOutcome(Domain.drone, 60), {}, HeldCheck(i, fixes))
                for i, fixes in enumerate(batches)
            )
        )
        assert all(r.applied for r in results)
    finally:
        await client.aclose()
    return published


def test_two_partitions_committing_close_fixes_at_once_find_the_pair(redis_url: str, redis_client: redis.Redis) -> None:
    # 11 m apart in one tile, the same second: each partition alone sees nobody near.
    alerts = asyncio.run(_commit_side_by_side(redis_url, [[_fix("UAS-A", 113.75)], [_fix("UAS-B", 113.7501)]], "race"))
    separations = [a for a in alerts if a.kind == "separation"]
    assert len(separations) == 1, alerts
    assert separations[0].data["drones"] == ["UAS-A", "UAS-B"]
    assert redis_client.smembers("race:sep-open:UAS-A") == {b"UAS-B"}
    assert redis_client.smembers("race:sep-open:UAS-B") == {b"UAS-A"}
    assert redis_client.get("race:sep-pair:UAS-A|UAS-B") is not None


def test_a_pair_opened_by_another_partition_keeps_the_drones_other_episodes(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # First O and X meet; then P, on another partition, passes 43 m from O's last fix (53 m from X) while
    # O's own partition has nothing new: O's open episodes must then be both X and P.
    first = asyncio.run(_commit_side_by_side(redis_url, [[_fix("UAS-O", 113.75)], [_fix("UAS-X", 113.7501)]], "keep"))
    assert [a.data["drones"] for a in first if a.kind == "separation"] == [["UAS-O", "UAS-X"]]
    client = Redis.from_url(redis_url)
    sink = RedisSink(client, Keys("keep"))
    published: list[Alert] = []

    async def publish(alerts: list[Alert]) -> None:
        published.extend(alerts)

    async def p_flies_by() -> None:
        check = SeparationCheck([_fix("UAS-P", 113.74958, T0 + 1000)], sink.keys, Settings().drone, publish)
        result = await sink.commit(TOPIC, 2, -1, 0, BatchOutcome(Domain.drone, 60), {}, check)
        assert result.applied
        await client.aclose()

    asyncio.run(p_flies_by())
    assert [a.data["drones"] for a in published if a.kind == "separation"] == [["UAS-O", "UAS-P"]]
    assert redis_client.smembers("keep:sep-open:UAS-O") == {b"UAS-X", b"UAS-P"}
    assert redis_client.smembers("keep:sep-open:UAS-P") == {b"UAS-O"}
