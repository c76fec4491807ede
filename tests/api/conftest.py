"""An API bound to the session's real Redis (and Kafka where a test asks for it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from citystream.servers import RedisServer, free_port
from streams.settings import ApiSettings, KafkaSettings, RedisSettings, Settings


def api_settings(redis_url: str, bootstrap: str | None = None) -> Settings:
    """Return settings of an isolated API: its own key prefix and topic namespace."""
    tag = uuid.uuid4().hex[:8]
    return Settings(
        environment="test",
        kafka=KafkaSettings(bootstrap_servers=bootstrap or f"127.0.0.1:{free_port()}", topic_namespace=f"api-{tag}"),
        redis=RedisSettings(url=redis_url, key_prefix=f"api-{tag}"),
        api=ApiSettings(health_timeout_s=1.0, ingest_max_items=100),
    )


@pytest.fixture
def settings(redis_server: RedisServer) -> Settings:
    """Settings whose Kafka is a closed port: for tests that need only Redis."""
    return api_settings(redis_server.url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A test client running the app's lifespan."""
    with TestClient(create_app(settings)) as c:
        yield c
