"""`citystream publish FILE.jsonl --domain traffic` on real Kafka: valid lines land, bad ones are named."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from streams.settings import KafkaSettings
from streams.topics import Topics, ensure_topics
from tests.support.worker import child_env

pytestmark = pytest.mark.integration


def test_publish_file_sends_valid_lines_keyed_by_road_segment_and_names_bad_lines(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    namespace = f"pub-{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_namespace=namespace)
    ensure_topics(kafka)
    t = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    good = {
        "observed_at": t,
        "lat": 22.85,
        "lon": 113.7,
        "road_segment": "G107",
        "lane": 1,
        "vehicle_count": 3,
        "avg_speed_kmh": 42.5,
        "occupancy": 0.1,
    }
    lines = [orjson.dumps({**good, "sensor_id": f"LD-{i}", "road_segment": f"G107-{i % 2}"}) for i in range(5)]
    lines.insert(2, b'{"sensor_id": "LD-x", ')
    lines.insert(4, orjson.dumps({**good, "sensor_id": "LD-y", "avg_speed_kmh": -3}))
    path = tmp_path / "readings.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    env = {**child_env(), "CITY_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap, "CITY_KAFKA__TOPIC_NAMESPACE": namespace}
    run = subprocess.run(
        [sys.executable, "-m", "citystream", "publish", str(path), "--domain", "traffic"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1, run.stderr
    assert "accepted=5 rejected=2" in run.stdout
    assert f"{path}:3: rejected: invalid JSON" in run.stderr
    assert f"{path}:5: rejected: avg_speed_kmh:" in run.stderr
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, consumer_timeout_ms=3000)
    parts = [TopicPartition(Topics(namespace).traffic, p) for p in range(kafka.partitions)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    records = list(consumer)
    consumer.close()
    # Traffic is keyed by road segment, so a segment's detectors share a partition (the incident rule needs it).
    assert sorted(orjson.loads(r.value)["sensor_id"] for r in records) == [f"LD-{i}" for i in range(5)]
    assert all(orjson.loads(r.value)["road_segment"] == r.key.decode() for r in records)
    assert len({(r.key, r.partition) for r in records}) == len({r.key for r in records}) == 2
