"""Topic names (under a namespace, `citystream` by default) and their creation."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from streams.models import Domain
from streams.security import kafka_python_options
from streams.settings import KafkaSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    """The topics of one citystream deployment: `<namespace>.traffic`, `.drone`, `.energy`, `.alerts`, ..."""

    namespace: str = "citystream"

    @property
    def traffic(self) -> str:
        """Return the loop-detector readings topic."""
        return f"{self.namespace}.traffic"

    @property
    def drone(self) -> str:
        """Return the Remote ID telemetry topic."""
        return f"{self.namespace}.drone"

    @property
    def energy(self) -> str:
        """Return the smart-meter readings topic."""
        return f"{self.namespace}.energy"

    @property
    def alerts(self) -> str:
        """Return the topic every alert change is sent to."""
        return f"{self.namespace}.alerts"

    @property
    def aggregates(self) -> str:
        """Return the topic closed zone windows are sent to."""
        return f"{self.namespace}.aggregates"

    @property
    def deadletter(self) -> str:
        """Return the topic refused values go to, with the reason in headers."""
        return f"{self.namespace}.deadletter"

    def for_domain(self, domain: Domain) -> str:
        """Return the input topic of a sensor domain."""
        return f"{self.namespace}.{domain.value}"

    def domain_of(self, topic: str) -> Domain:
        """Return the sensor domain of an input topic."""
        return Domain(topic.removeprefix(self.namespace + "."))

    @property
    def late(self) -> str:
        """Return the topic events go to when their window had closed, with the reason in headers."""
        return f"{self.namespace}.late"

    @property
    def all(self) -> tuple[str, ...]:
        """Return every topic of the deployment."""
        return (self.traffic, self.drone, self.energy, self.alerts, self.aggregates, self.deadletter, self.late)


def ensure_topics(settings: KafkaSettings) -> list[str]:
    """Create any missing citystream topic; return the names created."""
    topics = Topics(settings.topic_namespace)
    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_list,
        client_id=f"{settings.client_id}-admin",
        request_timeout_ms=int(settings.request_timeout_s * 1000),
        **kafka_python_options(settings),
    )
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics.all if t not in existing]
        if missing:
            spec = {"num_partitions": settings.partitions, "replication_factor": settings.replication_factor}
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics({t: dict(spec) for t in missing}, wait_for_metadata=True)
            log.info('topics created topics="%s" partitions=%d', ",".join(missing), settings.partitions)
        return missing
    finally:
        admin.close()
