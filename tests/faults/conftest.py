"""Servers of their own for the fault scenarios, which stop and restart them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from citystream.servers import KafkaServer, RedisServer
from tests.support.servers import serving


@pytest.fixture(scope="module")
def fault_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaServer]:
    """An Apache Kafka 4.1 node the scenarios may stop and restart."""
    yield from serving(KafkaServer(workdir=tmp_path_factory.mktemp("fault-kafka")))


@pytest.fixture(scope="module")
def fault_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server with an fsync-always append-only file, so a stop and start keeps every write."""
    yield from serving(RedisServer(workdir=tmp_path_factory.mktemp("fault-redis"), persistent=True))


@pytest.fixture
def say(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Print a line of what the scenario did straight to the terminal, even under `pytest -q`."""

    def emit(line: str) -> None:
        with capsys.disabled():
            print(f"\n{line}", flush=True)

    return emit
