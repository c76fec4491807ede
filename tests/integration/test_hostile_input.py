"""Hostile input on real Kafka and Redis: every bad value ends in the dead-letter topic, nothing else is lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from citystream.servers import RedisServer
from streams.exceptions import PublishError
from streams.gateway import GatewayProducer
from streams.topics import Topics, ensure_topics
from tests.support.deployment import isolated_settings
from tests.support.faults import Results
from tests.support.worker import WorkerProcess, wait_until

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad"
FLOOD = 50


def corpus(now: datetime) -> dict[str, bytes]:
    """Return the bad values, with their timestamps filled in."""
    fills = {"{now}": now, "{future}": now + timedelta(days=3 * 365), "{past}": now - timedelta(days=3 * 365)}
    values = {}
    for path in sorted(CORPUS.glob("*.json")):
        text = path.read_text()
        for mark, t in fills.items():
            text = text.replace(mark, t.isoformat())
        values[path.stem] = text.encode()
    return values


def good(i: int, t: datetime) -> bytes:
    return orjson.dumps(
        {
            "sensor_id": f"LD-OK-{i % 7}",
            "observed_at": t.isoformat(),
            "lat": 22.85,
            "lon": 113.7,
            "road_segment": "G107",
            "lane": 1,
            "vehicle_count": 1,
            "avg_speed_kmh": 50.0,
            "occupancy": 0.1,
        }
    )


def test_every_hostile_value_is_dead_lettered_and_the_valid_ones_around_it_applied(
    kafka_bootstrap: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = isolated_settings("hostile", kafka_bootstrap, redis_server.url, kafka={"partitions": 2})
    ensure_topics(settings.kafka)
    topics = Topics(settings.kafka.topic_namespace)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    bad = corpus(now)
    producer = GatewayProducer(settings.kafka)
    valid = 0
    t = now
    for value in bad.values():
        for _ in range(3):  # valid readings before and after every bad one, on the same key
            t += timedelta(seconds=5)
            producer.publish_raw(topics.traffic, b"LD-BAD-01", good(valid, t))
            valid += 1
        producer.publish_raw(topics.traffic, b"LD-BAD-01", value)
    duplicate = good(valid, t + timedelta(seconds=5))
    producer.publish_raw(topics.traffic, b"LD-OK-dup", duplicate)
    producer.publish_raw(topics.traffic, b"LD-OK-dup", duplicate)
    valid += 1
    flood_start = t + timedelta(seconds=10)
    for i in range(FLOOD):
        value = orjson.loads(good(0, flood_start + timedelta(milliseconds=i)))
        producer.publish_raw(topics.traffic, b"LD-FLOOD", orjson.dumps({**value, "sensor_id": "LD-FLOOD"}))
    valid += 1
    with pytest.raises(PublishError, match=r"MessageSizeTooLarge|too large|size"):
        producer.publish_raw(topics.traffic, b"LD-BAD-01", b"{" + b" " * (10 * 1024 * 1024) + b"}")
    producer.close()

    results = Results(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        wait_until(lambda: results.progress() == valid, 90, f"all {valid} valid readings applied", worker)
        assert worker.proc is not None and worker.proc.poll() is None
    finally:
        worker.stop()

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_list, consumer_timeout_ms=4000)
    parts = [TopicPartition(topics.deadletter, p) for p in range(2)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    letters = list(consumer)
    consumer.close()
    by_value = {r.value: dict(r.headers) for r in letters}
    for name, value in bad.items():
        headers = by_value.get(value if value != b"null" else b"null")
        assert headers is not None, f"{name} is not in the dead-letter topic"
        assert headers["citystream.error.reason"], name
    stages = [dict(r.headers)["citystream.error.stage"].decode() for r in letters]
    assert stages.count("duplicate") == 1
    assert stages.count("flood") == FLOOD - 1
    assert len(letters) == len(bad) + 1 + FLOOD - 1
