"""Traffic incidents on real Kafka and Redis: one alert per injected incident, exact across a worker crash.

Readings are keyed by road segment as every producer keys them, so each segment's detectors sit on one of
the four partitions and the incident rule reads the upstream detector's state from its own partition.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from citystream.servers import RedisServer
from citystream.simulator import CitySimulator, SimSize
from citystream.simulator.traffic import INCIDENT
from geo.zones import ZoneIndex
from processors.outcome import BatchOutcome
from processors.peers import Peers
from processors.traffic.processor import TrafficProcessor
from streams.gateway import GatewayProducer
from streams.models import Domain, TrafficReading
from streams.settings import Settings
from streams.topics import Topics, ensure_topics
from tests.support.deployment import isolated_settings
from tests.support.faults import Results
from tests.support.worker import WorkerProcess, wait_until

pytestmark = pytest.mark.integration

MINUTES = 40
PARTITIONS = 4


def test_each_injected_incident_raises_one_incident_alert_exactly_across_a_worker_crash(
    kafka_bootstrap: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = isolated_settings("incident", kafka_bootstrap, redis_server.url, kafka={"partitions": PARTITIONS})
    ensure_topics(settings.kafka)
    zones = ZoneIndex.from_file(settings.zones_file)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=MINUTES + 10)
    end = start + timedelta(minutes=MINUTES)
    sim = CitySimulator(zones, seed=11, start=start, sensors=SimSize(traffic_sensors=110, drones=0, meters=0))
    events = sim.events_between(start, end)
    injected = [i for i in sim.injected if i.kind == INCIDENT and i.start < end - timedelta(minutes=1)]
    assert len(injected) >= 2
    # The crash comes 90 s into the second incident: its episode is open, its detectors half way through it.
    crash_at = injected[1].start + timedelta(seconds=90)
    half = next(n for n, (_, _, value) in enumerate(events) if datetime.fromisoformat(value["observed_at"]) >= crash_at)
    results = Results(settings)
    producer = GatewayProducer(settings.kafka)
    try:
        _send(producer, events[:half])
        worker = WorkerProcess(settings, tmp_path / "worker.log").start()
        try:
            wait_until(lambda: results.progress() == half, 180, f"the first {half} readings applied", worker)
        finally:
            worker.kill()  # a crash: the restarted worker rebuilds every detector's and segment's state from Redis
        _send(producer, events[half:])
    finally:
        producer.close()
    worker = WorkerProcess(settings, tmp_path / "worker-after-crash.log").start()
    try:
        wait_until(lambda: results.progress() == len(events), 180, f"all {len(events)} readings applied", worker)
    finally:
        worker.stop()

    records = _records(settings)
    segments_by_partition = defaultdict(set)
    for partition, _, value in records:
        segments_by_partition[partition].add(value["road_segment"])
    partitions_of = Counter(seg for segs in segments_by_partition.values() for seg in segs)
    assert set(partitions_of.values()) == {1}, "every segment's detectors sit on one partition"
    assert len(segments_by_partition) >= 2, "segments spread over the partitions"

    alerts = {i: a for i, a in results.alerts().items() if a[0] != "sensor_offline"}
    assert Counter(source for kind, source, _, _ in alerts.values()) == Counter(i.source for i in injected)
    assert {kind for kind, _, _, _ in alerts.values()} == {"incident"}, "no congestion alert per blocked lane"
    ended = Counter(i.source for i in injected if i.end < end - timedelta(minutes=1))
    assert ended <= Counter(source for _, source, status, _ in alerts.values() if status == "resolved")
    assert alerts == _replayed(settings, records), "the same alerts, counts and statuses as one uninterrupted pass"
    spread = {p: sorted(segs) for p, segs in sorted(segments_by_partition.items())}
    print(f"\n{len(records)} readings; crash after {half}; segments by partition: {spread}")
    for alert_id, (kind, source, status, count) in sorted(alerts.items(), key=lambda a: a[1][1]):
        print(f"{kind} {source} {status} count={count} id={alert_id}")


def _send(producer: GatewayProducer, events: list[tuple[str, str, dict[str, Any]]]) -> None:
    for domain, key, value in events:
        producer.send(Domain(domain), key, orjson.dumps(value))
    producer.flush(30)


def _records(settings: Settings) -> list[tuple[int, int, dict[str, Any]]]:
    """Read the traffic topic back: (partition, offset, reading) of every record, as Kafka placed them."""
    topic = Topics(settings.kafka.topic_namespace).traffic
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_list, consumer_timeout_ms=5000)
    parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    records = [(r.partition, r.offset, orjson.loads(r.value)) for r in consumer]
    consumer.close()
    return records


def _replayed(settings: Settings, records: list[tuple[int, int, dict[str, Any]]]) -> dict[str, tuple[Any, ...]]:
    """Run the traffic rules in-process over each partition in offset order: {id: (kind, source, status, count)}."""
    processor = TrafficProcessor(settings)
    states: dict[str, dict[str, Any]] = {}
    alerts: dict[str, tuple[Any, ...]] = {}
    for partition, _, value in sorted(records, key=lambda r: (r[0], r[1])):
        reading = TrafficReading.model_validate(value)
        out = BatchOutcome(Domain.traffic, 60)
        processor.process(reading, "z", states.setdefault(reading.sensor_id, {}), out, True, Peers(states, partition))
        for a in out.alerts.values():
            if a.kind != "sensor_offline":
                alerts[a.id] = (a.kind, a.source_id, a.status.value, a.count)
    return alerts
