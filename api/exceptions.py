"""Errors the API raises on purpose; api/errors.py maps each to a status code."""

from streams.exceptions import CitystreamError


class BadCursorError(CitystreamError):
    """A pagination cursor was not one this API issued."""


class UnknownMetricError(CitystreamError):
    """A query names a metric no domain produces."""


class UnknownWindowError(CitystreamError):
    """A window size that is not kept."""


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


class UnauthorizedError(CitystreamError):
    """No API key, or one this API does not know (never issued or revoked)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"WWW-Authenticate": 'Bearer realm="citystream"'}


class ForbiddenError(CitystreamError):
    """The API key's role may not use this route."""


class ConflictError(CitystreamError):
    """The request contradicts the current state, e.g. acknowledging a resolved alert."""


class BadRequestError(CitystreamError):
    """A request parameter or header is malformed; the message says which."""


class RateLimitedError(CitystreamError):
    """An API key sent more requests than its role's rate allows."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}
