"""Property-based run of schemathesis against the API's own OpenAPI document, on real sockets and a real Redis.

Every operation gets a bounded number of generated requests with an admin key; a 500 or an answer that
does not match the document fails. Left out: `GET /alerts/stream` (Server-Sent Events never end). Kafka
is a closed port here, so `/health` and `POST /ingest/{domain}` answer 503 naming Kafka: for them a 503
is the documented outage answer, and only a 500 fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.case import Case
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.roles import Role
from streams.settings import Settings
from tests.api.conftest import LiveServer, bearer, make_keys

EXAMPLES = 100  # per operation (about 2,000 requests in all): the run takes about a minute
KAFKA_ROUTES = {"/health", "/ingest/{domain}"}


@pytest.fixture(scope="module")
def live(redis_server: Any) -> Iterator[tuple[LiveServer, str]]:
    """The app on uvicorn with its own key prefix, and an admin key."""
    from tests.api.conftest import api_settings

    app_settings: Settings = api_settings(redis_server.url)
    admin = make_keys(app_settings)[Role.admin]
    with LiveServer(app_settings) as server:
        yield server, admin


# The document is the app's own (it needs no servers to build); the requests go to the live server.
schema = schemathesis.openapi.from_dict(create_app(Settings(environment="test")).openapi()).exclude(
    path="/alerts/stream"
)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_500_and_every_answer_matches_the_document(case: Case, live: tuple[LiveServer, str]) -> None:
    server, admin = live
    response = case.call(base_url=server.url, headers=bearer(admin), timeout=10)
    assert response.status_code != 500, f"{case.method} {case.formatted_path}: 500 {response.text[:500]}"
    checks = [response_schema_conformance, status_code_conformance, content_type_conformance]
    if case.operation.path not in KAFKA_ROUTES:
        checks.append(not_a_server_error)
    case.validate_response(response, checks=checks)
