"""Session fixtures that run real Kafka and Redis servers for the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from citystream.servers import KafkaServer, RedisServer
from tests.support.servers import serving


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaServer]:
    """Run one Apache Kafka 4.1 KRaft node for the whole session."""
    yield from serving(KafkaServer(workdir=tmp_path_factory.mktemp("kafka")))


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_server: KafkaServer) -> str:
    """Return the bootstrap servers of the session Kafka node."""
    return kafka_server.bootstrap_servers


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Run one redis-server for the whole session."""
    yield from serving(RedisServer(workdir=tmp_path_factory.mktemp("redis")))


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """Return the URL of the session Redis."""
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """Yield a client to an emptied session Redis, closed after the test."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    yield client
    client.close()
