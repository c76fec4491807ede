"""Run a real server for the length of a fixture, failing (never skipping) the tests if it cannot start."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from citystream.servers import ServerProcess
from streams.exceptions import CitystreamError

S = TypeVar("S", bound=ServerProcess)


def serving(server: S) -> Iterator[S]:
    """Start the server, yield it, and stop it; a missing Java or redis-server fails the run loudly."""
    try:
        server.start()
    except CitystreamError as exc:
        pytest.fail(f"could not start {server.name} for the integration tests: {exc}", pytrace=False)
    yield server
    server.stop()
