"""The gateway client: validate sensor events and publish them to Kafka, acks=all.

Events are keyed by `partition_key`: the sensor id, except traffic readings, keyed by road segment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from streams.codec import decode_item, encode
from streams.exceptions import EventDecodeError, PublishError
from streams.models import Domain, SensorEvent
from streams.security import kafka_python_options
from streams.settings import KafkaSettings
from streams.topics import Topics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejected:
    """An item refused before publishing, with its position in the request and the reason."""

    index: int
    reason: str


@dataclass(frozen=True)
class FailedSend:
    """An event queued by `send` that Kafka refused for good (retries and delivery timeout spent)."""

    domain: Domain
    key: str
    value: bytes
    error: Exception


@dataclass(frozen=True)
class PublishReport:
    """How many items Kafka acknowledged and which were refused."""

    accepted: int
    rejected: list[Rejected]


def validate_items(domain: Domain, items: Sequence[Any]) -> tuple[list[SensorEvent], list[Rejected]]:
    """Split raw JSON items into valid events and refusals with reasons."""
    valid, rejected = [], []
    for index, item in enumerate(items):
        try:
            valid.append(decode_item(domain, item))
        except EventDecodeError as exc:
            rejected.append(Rejected(index, exc.reason))
    return valid, rejected


class GatewayProducer:
    """A kafka-python producer with the settings gateways need: batching, acks=all, idempotence.

    Retries are left unbounded, as kafka-python advises for idempotence: an event fails only when Kafka
    refuses it for good or the delivery timeout (120 s) passes, and flush() reports such events.
    """

    def __init__(self, settings: KafkaSettings, *, linger_ms: int = 5) -> None:
        self.settings = settings
        self.topics = Topics(settings.topic_namespace)
        self._producer = KafkaProducer(
            bootstrap_servers=settings.bootstrap_list,
            client_id=f"{settings.client_id}-gateway",
            acks="all",
            linger_ms=linger_ms,
            batch_size=256 * 1024,
            compression_type=None,
            request_timeout_ms=int(settings.request_timeout_s * 1000),
            max_block_ms=int(settings.request_timeout_s * 1000),
            **kafka_python_options(settings),
        )
        self._failed: list[FailedSend] = []  # appended by kafka-python's sender thread

    def publish(self, domain: Domain, events: Iterable[SensorEvent], timeout_s: float | None = None) -> int:
        """Send events to the domain's topic and wait until Kafka acknowledged every one; return the count."""
        topic = self.topics.for_domain(domain)
        try:
            futures = [self._producer.send(topic, key=e.partition_key.encode(), value=encode(e)) for e in events]
        except KafkaError as exc:
            raise PublishError(f"Kafka refused an event before sending it: {exc}") from exc
        return self._wait(futures, timeout_s)

    def send(self, domain: Domain, key: str, value: bytes) -> None:
        """Queue one already-encoded event without waiting; flush() says which ones Kafka refused."""
        future = self._producer.send(self.topics.for_domain(domain), key=key.encode(), value=value)
        future.add_errback(lambda exc: self._failed.append(FailedSend(domain, key, value, exc)))

    def refused_pending(self) -> int:
        """Return how many sent events Kafka refused that the next flush() will report."""
        return len(self._failed)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued event was acknowledged.

        Raises PublishError if the wait timed out (the events stay queued: flush again) or if Kafka refused
        events for good (`failed` lists them in send order, to send again). Refused events are reported once.
        """
        timeout = timeout_s or self.settings.request_timeout_s
        try:
            self._producer.flush(timeout=timeout)
        except KafkaError as exc:
            raise PublishError(
                f"Kafka did not acknowledge every event within {timeout:g} s ({exc}); still queued"
            ) from exc
        if self._failed:
            failed, self._failed = self._failed, []
            raise PublishError(
                f"Kafka refused {len(failed)} events ({failed[0].error!r}); check the brokers and send them again",
                failed,
            )

    def publish_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Send bytes as they are (tests and replays of dead letters), waiting for the ack."""
        try:
            future = self._producer.send(topic, key=key, value=value)
        except KafkaError as exc:
            raise PublishError(f"Kafka refused the value before sending it: {exc}") from exc
        self._wait([future], None)

    def _wait(self, futures: list[Any], timeout_s: float | None) -> int:
        timeout = timeout_s or self.settings.request_timeout_s
        self._producer.flush(timeout=timeout)
        try:
            for future in futures:
                future.get(timeout=timeout)
        except KafkaError as exc:
            raise PublishError(f"Kafka did not acknowledge the events: {exc}; check the brokers and retry") from exc
        return len(futures)

    def bootstrap_connected(self) -> bool:
        """Return whether the producer reaches a broker now."""
        return bool(self._producer.bootstrap_connected())

    def close(self) -> None:
        """Flush and close the producer."""
        self._producer.close(timeout=5)
