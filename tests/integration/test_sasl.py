"""The pipeline against an Apache Kafka SASL_PLAINTEXT listener with SCRAM-SHA-256; secrets never logged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from citystream.servers import KafkaServer, RedisServer
from streams.gateway import GatewayProducer
from streams.models import Domain, TrafficReading
from streams.settings import KafkaSettings, Settings
from streams.topics import ensure_topics
from tests.support.deployment import isolated_settings
from tests.support.faults import Results
from tests.support.servers import serving
from tests.support.worker import WorkerProcess, wait_until

pytestmark = pytest.mark.integration

USER, PASSWORD = "city-gateway", "s3cret-Scram-pa55"


@pytest.fixture(scope="module")
def scram_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaServer]:
    """An Apache Kafka node with a SCRAM-SHA-256 user on a SASL_PLAINTEXT listener."""
    yield from serving(KafkaServer(workdir=tmp_path_factory.mktemp("scram-kafka"), scram_users={USER: PASSWORD}))


def sasl_settings(server: KafkaServer, redis_url: str, password: str = PASSWORD) -> Settings:
    kafka = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_username": USER,
        "sasl_password": password,
        "request_timeout_s": 10,
    }
    return isolated_settings("sasl", server.sasl_bootstrap_servers, redis_url, kafka=kafka)


def test_gateway_worker_and_api_work_over_scram_and_never_log_the_password(
    scram_kafka: KafkaServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = sasl_settings(scram_kafka, redis_server.url)
    ensure_topics(settings.kafka)
    t = datetime.now(UTC) - timedelta(minutes=3)
    readings = [
        TrafficReading(
            sensor_id=f"LD-S{i}",
            observed_at=t + timedelta(seconds=i),
            lat=22.85,
            lon=113.7,
            road_segment="G107",
            lane=1,
            vehicle_count=4,
            avg_speed_kmh=50,
            occupancy=0.1,
        )
        for i in range(20)
    ]
    producer = GatewayProducer(settings.kafka)
    assert producer.publish(Domain.traffic, readings) == 20
    producer.close()
    log = tmp_path / "worker.log"
    worker = WorkerProcess(settings, log).start()
    try:
        wait_until(lambda: Results(settings).progress() == 20, 90, "20 readings applied over SASL", worker)
    finally:
        worker.stop()
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json()["checks"]["kafka"] == "ok"
    assert PASSWORD not in log.read_text(errors="replace")


def test_a_wrong_password_is_refused(scram_kafka: KafkaServer, redis_server: RedisServer) -> None:
    settings = sasl_settings(scram_kafka, redis_server.url, password="wrong-password")
    with TestClient(create_app(settings)) as client:
        body = client.get("/health").json()
    assert body["checks"]["kafka"] == "down"


def test_sasl_without_credentials_is_a_clear_configuration_error() -> None:
    with pytest.raises(ValueError, match="CITY_KAFKA__SASL_USERNAME"):
        KafkaSettings(security_protocol="SASL_SSL")
