"""Errors raised on the wire: one base class for the whole project, one-line subclasses."""

from collections.abc import Sequence
from typing import Any


class CitystreamError(Exception):
    """Base of every error citystream raises on purpose."""


class ConfigError(CitystreamError):
    """A setting is missing or unsafe; the message says which and what to set."""


class EventDecodeError(CitystreamError):
    """A Kafka value could not be decoded or validated; `reason` says why."""

    def __init__(self, reason: str, stage: str = "validate") -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage


class PublishError(CitystreamError):
    """Kafka did not acknowledge a publish; the message names the broker error.

    `failed` holds what Kafka refused for good, in send order, for a caller that can send it again; it is
    empty when the wait merely timed out and the events are still queued.
    """

    def __init__(self, message: str, failed: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.failed = list(failed)


class MissingExtraError(CitystreamError):
    """An optional integration is not installed; the message names the extra."""
