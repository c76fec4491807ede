"""Event time on real Kafka and Redis: last week's data, out-of-order events, late events, duplicates, floods."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from citystream.servers import RedisServer
from geo.zones import ZoneIndex
from streams.gateway import GatewayProducer
from streams.models import Domain
from streams.settings import Settings
from streams.topics import Topics, ensure_topics
from tests.support.citydata import Event, batch_truth
from tests.support.deployment import isolated_settings
from tests.support.faults import Results
from tests.support.worker import WorkerProcess, wait_until

pytestmark = pytest.mark.integration

WEEK_AGO = (datetime.now(UTC) - timedelta(days=7)).replace(second=0, microsecond=0)


def reading(sensor: str, t: datetime, speed: float, vehicles: int = 5) -> Event:
    value = {
        "sensor_id": sensor,
        "observed_at": t.isoformat(),
        "lat": 22.85,
        "lon": 113.70,
        "road_segment": "G107",
        "lane": 1,
        "vehicle_count": vehicles,
        "avg_speed_kmh": speed,
        "occupancy": 0.1,
    }
    return ("traffic", sensor, value)


def build_input() -> tuple[list[Event], list[Event], dict[str, int]]:
    """Return (published in this order, the events that must be applied, expected refusals by stage)."""
    applied: list[Event] = []
    published: list[Event] = []
    for k in range(20):  # ten minutes of one reading per 30 s for three sensors, a week ago
        for s in ("LD-A", "LD-B", "LD-C"):
            e = reading(s, WEEK_AGO + timedelta(seconds=30 * k), 40.0 + k, vehicles=k)
            published.append(e)
            applied.append(e)
    out_of_order = reading("LD-A", WEEK_AGO + timedelta(seconds=30 * 19 - 45), 11.0, vehicles=100)
    late = reading("LD-A", WEEK_AGO + timedelta(seconds=10), 99.0, vehicles=1000)
    duplicate = published[-3]
    flood = [
        reading("LD-C", WEEK_AGO + timedelta(seconds=600, milliseconds=10 * i), 50.0, vehicles=7) for i in range(5)
    ]
    published += [out_of_order, late, duplicate, *flood]
    applied += [out_of_order, flood[0]]
    return published, applied, {"late": 1, "duplicate": 1, "flood": 4}


def settings_for(bootstrap: str, redis_url: str, namespace: str) -> Settings:
    return isolated_settings(
        "et", bootstrap, redis_url, kafka={"partitions": 1, "topic_namespace": namespace}, worker={"window_grace_s": 60}
    )


def refusals(settings: Settings, topic: str) -> dict[str, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_list, consumer_timeout_ms=3000)
    part = TopicPartition(topic, 0)
    consumer.assign([part])
    consumer.seek_to_beginning(part)
    stages: dict[str, int] = {}
    for record in consumer:
        stage = dict(record.headers)["citystream.error.stage"].decode()
        stages[stage] = stages.get(stage, 0) + 1
    consumer.close()
    return stages


def run_worker(settings: Settings, expected_events: int, log: Path) -> None:
    results = Results(settings)
    worker = WorkerProcess(settings, log).start()
    try:
        wait_until(lambda: results.progress() == expected_events, 90, "every applied event", worker)
        wait_until(
            lambda: sum(refusals(settings, Topics(settings.kafka.topic_namespace).late).values()) >= 1,
            30,
            "the late event on the late topic",
            worker,
        )
    finally:
        worker.stop()


def test_week_old_replay_out_of_order_late_duplicate_and_flood(
    kafka_bootstrap: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    namespace = f"et-{uuid.uuid4().hex[:6]}"
    live = settings_for(kafka_bootstrap, redis_server.url, namespace)
    ensure_topics(live.kafka)
    published, applied, refused = build_input()
    producer = GatewayProducer(live.kafka)
    topics = Topics(namespace)
    for _, key, value in published:
        producer.publish_raw(topics.traffic, key.encode(), orjson.dumps(value))
    producer.close()

    run_worker(live, len(applied), tmp_path / "live.log")
    live_aggregates = Results(live).aggregates()
    truth = batch_truth(applied, ZoneIndex.from_file(live.zones_file))
    assert live_aggregates == truth
    assert refusals(live, topics.late) == {"late": refused["late"]}
    assert refusals(live, topics.deadletter) == {"duplicate": refused["duplicate"], "flood": refused["flood"]}

    replay = settings_for(kafka_bootstrap, redis_server.url, namespace)  # a new group and key prefix, same topics
    run_worker(replay, len(applied), tmp_path / "replay.log")
    assert Results(replay).aggregates() == live_aggregates
    assert Domain.traffic.value in {k[0] for k in live_aggregates}
