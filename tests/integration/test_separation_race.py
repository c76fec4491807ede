"""Separation decided by two partitions at once on real Redis: the commit that loses the race decides again."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
import redis
from redis.asyncio import Redis

from processors.alerts import ms_to_dt
from processors.drone.separation import Position, SeparationCheck
from processors.drone.separation_commit import SeparationCommit
from processors.outcome import BatchOutcome
from processors.runner import Record
from processors.sink import RedisSink
from streams.keys import Keys
from streams.models import Alert, Domain
from streams.settings import Settings
from streams.topics import Topics
from tests.support.replay import replay_runner

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

    class HeldCheck(SeparationCommit):
        """Waits, on its first decision only, until every partition has read the neighbours."""

        def __init__(self, partition: int, positions: list[Position]) -> None:
            super().__init__(SeparationCheck(positions, sink.keys, rules, publish))
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
        check = SeparationCommit(
            SeparationCheck([_fix("UAS-P", 113.74958, T0 + 1000)], sink.keys, Settings().drone, publish)
        )
        result = await sink.commit(TOPIC, 2, -1, 0, BatchOutcome(Domain.drone, 60), {}, check)
        assert result.applied
        await client.aclose()

    asyncio.run(p_flies_by())
    assert [a.data["drones"] for a in published if a.kind == "separation"] == [["UAS-O", "UAS-P"]]
    assert redis_client.smembers("keep:sep-open:UAS-O") == {b"UAS-X", b"UAS-P"}
    assert redis_client.smembers("keep:sep-open:UAS-P") == {b"UAS-O"}


def _crowd(drones: int, seconds: int, partitions: int) -> dict[int, list[Record]]:
    """Drones wandering in a 600 m square, a fix a second each, keyed to partitions by drone; a quarter go
    quiet half way."""
    rng = random.Random(5)
    topic = Topics(Settings(environment="test").kafka.topic_namespace).for_domain(Domain.drone)
    state = [[f"UAS-{i:03d}", 113.70 + rng.random() * 0.006, 22.80 + rng.random() * 0.006] for i in range(drones)]
    parts: dict[int, list[Record]] = {p: [] for p in range(partitions)}
    for s in range(seconds):
        for i, d in enumerate(state):
            if i % 4 == 0 and s > seconds // 2:
                continue  # gone quiet: its episodes end by its partners' fixes, in fetches without its own
            d[1] += (rng.random() - 0.5) * 0.0002
            d[2] += (rng.random() - 0.5) * 0.0002
            fix = {
                "observed_at": ms_to_dt(T0 + s * 1000).isoformat(),
                "lon": round(d[1], 7),
                "lat": round(d[2], 7),
                "drone_id": d[0],
                "altitude_m": 64.0,
                "height_agl_m": 60.0,
                "speed_h_mps": 5.0,
                "speed_v_mps": 0.0,
                "heading_deg": 90.0,
                "status": "landed" if s % 47 == 0 and rng.random() < 0.3 else "airborne",
                "operator_id": "OP-1",
            }
            p = int(str(d[0])[-3:]) % partitions
            parts[p].append(Record(topic, p, len(parts[p]), str(d[0]).encode(), orjson.dumps(fix)))
    return parts


def test_open_episode_sets_agree_with_the_pair_states_after_a_crowded_replay(
    redis_url: str, redis_client: redis.Redis
) -> None:
    parts = _crowd(drones=40, seconds=240, partitions=4)

    async def replay() -> None:
        client = Redis.from_url(redis_url)
        runner = replay_runner(client, "crowd", Settings(environment="test"))
        step = 60  # records per partition per fetch
        for start in range(0, max(len(r) for r in parts.values()), step):
            await runner.run_fetch({(r[0].topic, p): r[start : start + step] for p, r in parts.items() if r[start:]})
        await client.aclose()

    asyncio.run(replay())
    opened = closed = 0
    for key in redis_client.scan_iter("crowd:sep-pair:*"):
        a, b = key.decode().removeprefix("crowd:sep-pair:").split("|")
        is_open = bool(orjson.loads(redis_client.get(key) or b"{}").get("open"))
        opened, closed = opened + is_open, closed + (not is_open)
        assert redis_client.sismember(f"crowd:sep-open:{a}", b) == is_open, (a, b, is_open)
        assert redis_client.sismember(f"crowd:sep-open:{b}", a) == is_open, (a, b, is_open)
    assert opened > 0 and closed > 20, (opened, closed)  # the replay did open and end episodes
