"""HTTP ingest for gateways that cannot speak Kafka: validate each item, publish the valid ones, wait for acks."""

from __future__ import annotations

import threading
from typing import Any

from kafka.errors import KafkaError
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.exceptions import AllItemsRejectedError, KafkaUnavailableError, PayloadTooLargeError
from streams.exceptions import PublishError
from streams.gateway import GatewayProducer, validate_items
from streams.models import Domain
from streams.settings import Settings


class RejectedItem(BaseModel):
    """One refused item: its index in the request and why."""

    index: int
    reason: str


class IngestReport(BaseModel):
    """How many items Kafka acknowledged, and each refused item."""

    accepted: int
    rejected: list[RejectedItem]


class Ingestor:
    """Owns the API's gateway producer, created on first use so the API starts while Kafka is down."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: GatewayProducer | None = None
        self._lock = threading.Lock()

    def _get_producer(self) -> GatewayProducer:
        with self._lock:
            if self._producer is None:
                try:
                    self._producer = GatewayProducer(self.settings.kafka)
                except KafkaError as exc:
                    raise KafkaUnavailableError(
                        f"Kafka is unavailable at {self.settings.kafka.bootstrap_servers} ({exc}); nothing was "
                        "accepted, retry later"
                    ) from exc
            return self._producer

    async def ingest(self, domain: Domain, items: list[Any]) -> IngestReport:
        """Validate items, publish the valid ones and return the report once Kafka acknowledged them."""
        if len(items) > self.settings.api.ingest_max_items:
            raise PayloadTooLargeError(
                f"{len(items)} items in one request; send at most {self.settings.api.ingest_max_items} per request"
            )
        valid, rejected = validate_items(domain, items)
        refused = [RejectedItem(index=r.index, reason=r.reason) for r in rejected]
        if not valid:
            raise AllItemsRejectedError([r.model_dump() for r in refused])

        def send() -> int:
            return self._get_producer().publish(domain, valid, timeout_s=self.settings.api.ingest_timeout_s)

        try:
            accepted = await run_in_threadpool(send)
        except PublishError as exc:
            raise KafkaUnavailableError(f"{exc}; the request was not fully accepted, retry it") from exc
        return IngestReport(accepted=accepted, rejected=refused)

    def close(self) -> None:
        """Close the producer if one was made."""
        if self._producer is not None:
            self._producer.close()
