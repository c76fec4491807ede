"""The gateway producer on real Kafka: events the broker refuses for good are reported, never silently lost."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from streams.exceptions import PublishError
from streams.gateway import GatewayProducer
from streams.models import Domain
from streams.settings import KafkaSettings
from streams.topics import Topics

pytestmark = pytest.mark.integration


def test_flush_names_the_events_kafka_refused_and_the_others_land(kafka_bootstrap: str) -> None:
    namespace = f"refuse-{uuid.uuid4().hex[:8]}"
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_namespace=namespace, partitions=1)
    topic = Topics(namespace).traffic
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    # The broker refuses any record batch over 2,000 bytes: a non-retriable error, after the send was queued.
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "2000"})])
    admin.close()
    producer = GatewayProducer(settings, linger_ms=0)
    producer.send(Domain.traffic, "LD-1", b'{"n": 1}')
    producer.flush(30)
    producer.send(Domain.traffic, "LD-big", b"x" * 5000)
    with pytest.raises(PublishError) as caught:
        producer.flush(30)
    producer.close()

    assert [(f.domain, f.key, f.value) for f in caught.value.failed] == [(Domain.traffic, "LD-big", b"x" * 5000)]
    assert "refused 1 events" in str(caught.value)
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, consumer_timeout_ms=3000)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    keys = [r.key.decode() for r in consumer]
    consumer.close()
    assert keys == ["LD-1"]
