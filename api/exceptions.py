"""Errors the API raises on purpose; api/errors.py maps each to a status code."""

from streams.exceptions import CitystreamError


class BadCursorError(CitystreamError):
    """A pagination cursor was not one this API issued."""


class UnknownMetricError(CitystreamError):
    """A query names a metric no domain produces."""


class NotFoundError(CitystreamError):
    """The requested resource does not exist."""


class PayloadTooLargeError(CitystreamError):
    """A request carries more items than the API accepts at once."""


class AllItemsRejectedError(CitystreamError):
    """Every item of an ingest request failed validation."""

    def __init__(self, rejected: list[dict[str, object]]) -> None:
        super().__init__("every item was rejected")
        self.rejected = rejected


class KafkaUnavailableError(CitystreamError):
    """Kafka could not be reached or did not acknowledge."""
