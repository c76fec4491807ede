"""The embedded servers start, carry data, restart in place and leave nothing behind."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from citystream.servers import KafkaServer, RedisServer, TansuServer, port_open

pytestmark = pytest.mark.integration


def _create_topic(bootstrap: str, partitions: int) -> str:
    topic = f"test-servers-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}}, wait_for_metadata=True)
    finally:
        admin.close()
    return topic


def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> dict[bytes, set[int]]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    partitions_by_key: dict[bytes, set[int]] = {}
    try:
        futures = [(key, producer.send(topic, key=key, value=value)) for key, value in messages]
        for key, future in futures:
            partitions_by_key.setdefault(key, set()).add(future.get(timeout=10).partition)
    finally:
        producer.close()
    return partitions_by_key


def _consume(consumer: KafkaConsumer, expected: int, timeout_s: float = 20.0) -> list[bytes]:
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(values) < expected and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            values.extend(record.value for record in records)
    return values


def test_kafka_round_trips_keyed_messages_through_a_group(kafka_bootstrap: str) -> None:
    topic = _create_topic(kafka_bootstrap, partitions=8)
    messages = [(f"sensor-{i % 10}".encode(), f"reading-{i}".encode()) for i in range(100)]

    partitions_by_key = _produce(kafka_bootstrap, topic, messages)

    assert all(len(partitions) == 1 for partitions in partitions_by_key.values())
    assert len(set().union(*partitions_by_key.values())) > 1
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"group-{topic}",
        auto_offset_reset="earliest",
    )
    try:
        values = _consume(consumer, expected=100)
    finally:
        consumer.close()
    assert sorted(values) == sorted(value for _, value in messages)


def test_kafka_restart_keeps_port_topics_and_records(kafka_server: KafkaServer) -> None:
    topic = _create_topic(kafka_server.bootstrap_servers, partitions=1)
    _produce(kafka_server.bootstrap_servers, topic, [(b"meter-1", f"kwh-{i}".encode()) for i in range(10)])
    bootstrap = kafka_server.bootstrap_servers

    kafka_server.restart()

    assert kafka_server.bootstrap_servers == bootstrap
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        values = _consume(consumer, expected=10)
    finally:
        consumer.close()
    assert values == [f"kwh-{i}".encode() for i in range(10)]


def test_redis_round_trips_a_value(redis_client: redis.Redis) -> None:
    redis_client.set("citystream:test", "ok", ex=60)

    assert redis_client.get("citystream:test") == b"ok"


def test_redis_restart_keeps_its_port(redis_server: RedisServer) -> None:
    port, pid = redis_server.port, redis_server.pid

    redis_server.restart()

    assert redis_server.port == port
    assert redis_server.pid not in (None, pid)
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.ping()
    finally:
        client.close()


def test_tansu_round_trips_a_message_and_stops_cleanly() -> None:
    with TansuServer() as tansu:
        topic = _create_topic(tansu.bootstrap_servers, partitions=1)
        _produce(tansu.bootstrap_servers, topic, [(b"drone-7", b"battery-low")])
        consumer = KafkaConsumer(bootstrap_servers=tansu.bootstrap_servers, enable_auto_commit=False)
        try:
            consumer.assign([TopicPartition(topic, 0)])
            consumer.seek_to_beginning()
            values = _consume(consumer, expected=1)
        finally:
            consumer.close()

    assert values == [b"battery-low"]
    assert not tansu.is_running()
    assert not port_open(tansu.port)
