"""A small city's records as a worker meets them, and a Redis deployment's contents, to compare two runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis

from citystream.simulator import CitySimulator, size_for_rate
from geo.zones import ZoneIndex
from processors.outcome import BatchOutcome
from processors.runner import BatchRunner, Record
from processors.sink import RedisSink
from streams.keys import Keys
from streams.models import Domain
from streams.settings import DEFAULT_ZONES_FILE, Settings
from streams.topics import Topics

PARTITIONS = 4
BATCH = 300


def city_batches(settings: Settings) -> list[list[Record]]:
    """Return 8 minutes of a small city's events as per-partition batches, in the order a worker meets them."""
    zones = ZoneIndex.from_file(DEFAULT_ZONES_FILE)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    sim = CitySimulator(zones, 3, start, size_for_rate(100))
    topics = Topics(settings.kafka.topic_namespace)
    parts: dict[tuple[str, int], list[Record]] = {}
    for domain, key, value in sim.events_between(start, start + timedelta(minutes=8)):
        raw_key = key if isinstance(key, bytes) else str(key).encode()
        tp = (topics.for_domain(Domain(domain)), sum(raw_key) % PARTITIONS)
        recs = parts.setdefault(tp, [])
        recs.append(Record(tp[0], tp[1], len(recs), raw_key, orjson.dumps(value)))
    batches = [recs[i : i + BATCH] for recs in parts.values() for i in range(0, len(recs), BATCH)]
    return sorted(batches, key=lambda b: b[0].offset)


def redis_contents(client: redis.Redis, prefix: str) -> dict[bytes, object]:
    """Return every key under a prefix with its value (hashes, sets, sorted sets, strings), prefix removed."""
    out: dict[bytes, object] = {}
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        kind = client.type(key)
        name = key[len(prefix) :]
        if kind == b"hash":
            value: object = client.hgetall(key)
            if name.endswith(b":watermarks"):  # wall-clock ms of each commit differs between runs
                value = {f: v.split(b":")[0] for f, v in client.hgetall(key).items()}
        elif kind == b"set":
            value = client.smembers(key)
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"stream":
            value = [fields for _, fields in client.xrange(key)]
        else:
            value = client.get(key)
        out[name] = value
    return out


def replay_runner(client: Any, prefix: str, settings: Settings) -> BatchRunner:
    """Return a BatchRunner committing to Redis under `prefix`, sending nothing to Kafka."""

    async def publish(_: BatchOutcome) -> None:
        return None

    return BatchRunner(settings, ZoneIndex.from_file(DEFAULT_ZONES_FILE), RedisSink(client, Keys(prefix)), publish)
