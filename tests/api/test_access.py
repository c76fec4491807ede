"""Who may do what: each role on each route, missing/bad/revoked keys, the keys command and the ingest rate limit."""

from __future__ import annotations

import time

import pytest
import redis
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import digest, revoke_key
from api.roles import Role
from citystream.cli import main
from citystream.servers import RedisServer
from streams.keys import Keys
from streams.settings import RateLimit, Settings
from tests.api.conftest import api_settings, bearer, make_keys

ROUTES = [
    ("GET", "/alerts", {Role.operator}),
    ("GET", "/alerts/counts", {Role.operator}),
    ("GET", "/alerts/some-id", {Role.operator}),
    ("POST", "/alerts/some-id/ack", {Role.operator}),
    ("GET", "/snoozes", {Role.operator}),
    ("GET", "/aggregates", {Role.operator, Role.planner}),
    ("GET", "/zones", {Role.operator, Role.planner}),
    ("GET", "/drones", {Role.operator, Role.planner}),
    ("GET", "/stats", {Role.operator, Role.planner}),
    ("POST", "/ingest/traffic", {Role.gateway}),
]


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(("method", "path", "roles"), ROUTES)
def test_each_role_on_each_route(
    app_client: TestClient, api_keys: dict[Role, str], role: Role, method: str, path: str, roles: set[Role]
) -> None:
    body = [{"not": "a reading"}] if method == "POST" else None
    response = app_client.request(method, path, json=body, headers=bearer(api_keys[role]))
    if role in roles or role == Role.admin:
        assert response.status_code not in (401, 403, 500), response.text
    else:
        assert response.status_code == 403, response.text
        assert next(iter(roles)).value in response.json()["detail"] and role.value in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "_"), ROUTES)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer cs_wrong"}, {"Authorization": "Basic dXNlcjpwdw=="}, {"X-API-Key": ""}],
)
def test_a_missing_or_bad_key_is_401_with_www_authenticate(
    app_client: TestClient, method: str, path: str, _: object, headers: dict[str, str]
) -> None:
    response = app_client.request(method, path, json=[] if method == "POST" else None, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "API key" in response.json()["detail"]


def test_health_and_metrics_need_no_key(app_client: TestClient) -> None:
    assert app_client.get("/health").status_code in (200, 503)
    assert app_client.get("/metrics").status_code == 200


def test_x_api_key_works_too(app_client: TestClient, api_keys: dict[Role, str]) -> None:
    assert app_client.get("/zones", headers={"X-API-Key": api_keys[Role.planner]}).status_code == 200


def test_the_keys_command_creates_lists_and_revokes(
    app_client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITY_REDIS__URL", settings.redis.url.get_secret_value())
    monkeypatch.setenv("CITY_REDIS__KEY_PREFIX", settings.redis.key_prefix)
    assert main(["keys", "create", "--role", "planner", "--name", "city-planning"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("cs_") and len(key) > 40
    assert app_client.get("/zones", headers=bearer(key)).status_code == 200
    assert main(["keys", "create", "--role", "planner", "--name", "city-planning"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert "city-planning\tplanner" in listed and key not in listed
    assert main(["keys", "revoke", "city-planning"]) == 0
    time.sleep(settings.api.key_cache_s + 0.1)  # the API trusts a key it checked for key_cache_s (documented)
    assert app_client.get("/zones", headers=bearer(key)).status_code == 401
    assert main(["keys", "revoke", "nobody"]) == 2
    assert main(["keys", "create", "--role", "planner", "--name", "bad name!"]) == 2


def test_a_revoked_key_is_refused_at_once_without_the_key_cache(redis_server: RedisServer) -> None:
    settings = api_settings(redis_server.url, key_cache_s=0)
    keys = make_keys(settings)
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    with TestClient(create_app(settings)) as api:
        assert api.get("/zones", headers=bearer(keys[Role.planner])).status_code == 200
        revoke_key(client, Keys(settings.redis.key_prefix), Role.planner.value)
        assert api.get("/zones", headers=bearer(keys[Role.planner])).status_code == 401
    client.close()


def test_the_key_cache_trusts_a_key_for_its_time_and_forgets_it(redis_server: RedisServer) -> None:
    settings = api_settings(redis_server.url, key_cache_s=0.5)
    keys = make_keys(settings)
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    with TestClient(create_app(settings)) as api:
        assert api.get("/zones", headers=bearer(keys[Role.planner])).status_code == 200
        revoke_key(client, Keys(settings.redis.key_prefix), Role.planner.value)
        assert api.get("/zones", headers=bearer(keys[Role.planner])).status_code == 200  # still trusted
        time.sleep(0.6)
        assert api.get("/zones", headers=bearer(keys[Role.planner])).status_code == 401
        # A wrong key is asked about every time: it never enters the cache.
        assert api.get("/zones", headers=bearer("cs_nope")).status_code == 401
        assert not any(k == digest("cs_nope") for k in api.app.state.key_cache._entries)  # type: ignore[attr-defined]
    client.close()


def test_ingest_over_the_rate_is_429_with_retry_after(redis_server: RedisServer) -> None:
    settings = api_settings(redis_server.url, ingest_rate={Role.gateway: RateLimit(per_s=0.2, burst=2)})
    keys = make_keys(settings)
    with TestClient(create_app(settings)) as client:
        statuses = [
            client.post("/ingest/traffic", json=[{"x": 1}], headers=bearer(keys[Role.gateway])) for _ in range(3)
        ]
        assert [r.status_code for r in statuses] == [422, 422, 429]
        assert 1 <= int(statuses[2].headers["retry-after"]) <= 5
        assert "gateway" in statuses[2].json()["detail"]
        # Each key has its own bucket.
        assert client.post("/ingest/traffic", json=[{"x": 1}], headers=bearer(keys[Role.admin])).status_code == 422


def test_auth_can_be_switched_off(redis_server: RedisServer) -> None:
    with TestClient(create_app(api_settings(redis_server.url, auth_enabled=False))) as client:
        assert client.get("/alerts").status_code == 200
