"""Silent sources on real Kafka and Redis: alerts fire while the topics are quiet, once, and resolve on return."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from citystream.servers import RedisServer
from streams.gateway import GatewayProducer
from streams.models import Domain
from streams.topics import ensure_topics
from tests.support.deployment import isolated_settings
from tests.support.events import valid_value
from tests.support.faults import Results
from tests.support.worker import WorkerProcess, wait_until

pytestmark = pytest.mark.integration

SILENCE_S = 4.0


def send(producer: GatewayProducer, domain: Domain, key: str, value: dict[str, Any]) -> None:
    producer.send(domain, key, orjson.dumps(value))


def test_silent_detector_meter_and_airborne_drone_alert_on_quiet_topics_and_resolve_on_return(
    kafka_bootstrap: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = isolated_settings(
        "silence",
        kafka_bootstrap,
        redis_server.url,
        kafka={"partitions": 2},
        worker={"silence_check_s": 0.5, "window_grace_s": 0},
        silence_s=SILENCE_S,
    )
    ensure_topics(settings.kafka)
    results = Results(settings)
    producer = GatewayProducer(settings.kafka)
    now = datetime.now(UTC).replace(microsecond=0)

    def at(seconds: float) -> str:
        return (now + timedelta(seconds=seconds)).isoformat()

    for k in range(3):
        send(producer, Domain.traffic, "LD-QUIET", valid_value(Domain.traffic, sensor_id="LD-QUIET", observed_at=at(k)))
        send(producer, Domain.energy, "MTR-QUIET", valid_value(Domain.energy, meter_id="MTR-QUIET", observed_at=at(k)))
        for drone, status in (("UAS-LOST", "airborne"), ("UAS-PARKED", "ground")):
            fix = valid_value(Domain.drone, drone_id=drone, status=status, observed_at=at(k))
            send(producer, Domain.drone, drone, fix)
    producer.flush(10)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:

        def silent_alerts() -> dict[str, tuple[str, str, str, int]]:
            kinds = {"sensor_offline", "meter_offline", "telemetry_loss"}
            return {i: a for i, a in results.alerts().items() if a[0] in kinds}

        # Nothing else is published: the alerts must come from the worker's own clock.
        wait_until(lambda: len(silent_alerts()) == 3, 90, "three silence alerts on quiet topics", worker)
        opened = silent_alerts()
        assert sorted((kind, source, status) for kind, source, status, _ in opened.values()) == [
            ("meter_offline", "MTR-QUIET", "open"),
            ("sensor_offline", "LD-QUIET", "open"),
            ("telemetry_loss", "UAS-LOST", "open"),
        ]
        time.sleep(3 * settings.worker.silence_check_s)
        assert silent_alerts() == opened, "a silence must be alerted once, not at every check"

        # The drone comes back: the same alert resolves; no new one.
        back = valid_value(
            Domain.drone, drone_id="UAS-LOST", status="airborne", observed_at=datetime.now(UTC).isoformat()
        )
        send(producer, Domain.drone, "UAS-LOST", back)
        producer.flush(10)
        lost_id = next(i for i, a in opened.items() if a[0] == "telemetry_loss")
        wait_until(lambda: silent_alerts()[lost_id][2] == "resolved", 60, "the telemetry-loss alert to resolve", worker)
        assert len(silent_alerts()) == 3
    finally:
        worker.stop()
        producer.close()
