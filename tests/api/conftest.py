"""An API bound to the session's real Redis (and Kafka where a test asks for it), with a key of each role."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_key
from api.roles import Role
from citystream.servers import RedisServer, free_port
from streams.keys import Keys
from streams.settings import ApiSettings, KafkaSettings, RedisSettings, Settings


def api_settings(redis_url: str, bootstrap: str | None = None, **api: object) -> Settings:
    """Return settings of an isolated API: its own key prefix and topic namespace."""
    tag = uuid.uuid4().hex[:8]
    return Settings(
        environment="test",
        kafka=KafkaSettings(bootstrap_servers=bootstrap or f"127.0.0.1:{free_port()}", topic_namespace=f"api-{tag}"),
        redis=RedisSettings(url=redis_url, key_prefix=f"api-{tag}"),
        api=ApiSettings(health_timeout_s=1.0, ingest_max_items=100, **api),
    )


def make_keys(settings: Settings) -> dict[Role, str]:
    """Create one API key per role (named after it) and return them."""
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    try:
        return {role: create_key(client, Keys(settings.redis.key_prefix), role, role.value) for role in Role}
    finally:
        client.close()


def bearer(key: str) -> dict[str, str]:
    """Return the Authorization header of a key."""
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def settings(redis_server: RedisServer) -> Settings:
    """Settings whose Kafka is a closed port: for tests that need only Redis."""
    return api_settings(redis_server.url)


@pytest.fixture
def api_keys(settings: Settings) -> dict[Role, str]:
    """One key per role: gateway, operator, planner, admin."""
    return make_keys(settings)


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    """A test client running the app's lifespan, sending no key."""
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def client(app_client: TestClient, api_keys: dict[Role, str]) -> TestClient:
    """The test client with an admin key, which may use every route."""
    app_client.headers.update(bearer(api_keys[Role.admin]))
    return app_client


@pytest.fixture
def operator(app_client: TestClient, api_keys: dict[Role, str]) -> TestClient:
    """The test client with the operator key (named `operator`)."""
    app_client.headers.update(bearer(api_keys[Role.operator]))
    return app_client


class LiveServer:
    """The app served by uvicorn on a free port in a thread: real sockets, for streaming."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start in 20 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
