"""POST /ingest/{domain} on real Kafka: rejected items are named, valid ones reach the aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_key
from citystream.servers import RedisServer
from streams.keys import Keys
from streams.topics import ensure_topics
from tests.support.deployment import isolated_settings
from tests.support.worker import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


def reading(i: int, **overrides: object) -> dict[str, object]:
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    value: dict[str, object] = {
        "sensor_id": f"GW-{i:03d}",
        "observed_at": t.isoformat(),
        "lat": 22.85,
        "lon": 113.70,
        "road_segment": "G107-humen-n",
        "lane": 1,
        "vehicle_count": 10 + i,
        "avg_speed_kmh": 50.0 + i,
        "occupancy": 0.2,
    }
    value.update(overrides)
    return value


def test_mixed_batch_names_each_rejected_item_and_valid_ones_reach_aggregates(
    kafka_bootstrap: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = isolated_settings("ing", kafka_bootstrap, redis_server.url, api={"ingest_max_items": 100})
    ensure_topics(settings.kafka)
    items = [
        reading(0),
        reading(1, lat=200),
        reading(2),
        "not an object",
        reading(4, occupancy=1.7),
        reading(5),
    ]
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        admin = redis.Redis.from_url(settings.redis.url.get_secret_value())
        key = create_key(admin, Keys(settings.redis.key_prefix), "admin", "ingest-test")
        admin.close()
        with TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"}) as client:
            response = client.post("/ingest/traffic", json=items)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["accepted"] == 3
            assert [r["index"] for r in body["rejected"]] == [1, 3, 4]
            reasons = {r["index"]: r["reason"] for r in body["rejected"]}
            assert reasons[1].startswith("lat:") and "90" in reasons[1]
            assert reasons[4].startswith("occupancy:")

            all_bad = client.post("/ingest/traffic", json=[reading(9, lane=0), {"x": 1}])
            assert all_bad.status_code == 422
            assert [r["index"] for r in all_bad.json()["rejected"]] == [0, 1]
            assert client.post("/ingest/traffic", json={"not": "an array"}).status_code == 422
            assert client.post("/ingest/traffic", json=[reading(0)] * 101).status_code == 413

            def counted() -> bool:
                items = client.get(
                    "/aggregates",
                    params={"domain": "traffic", "metric": "vehicle_count"},
                ).json()["items"]
                return sum(a["value"] for a in items) == 10 + 12 + 15

            wait_until(counted, 60, "the three accepted readings in the aggregates", worker)
            assert client.get("/stats").json() == {
                "events": {f"{settings.kafka.topic_namespace}.traffic": 3},
                "deadletters": {},
            }
    finally:
        worker.stop()
