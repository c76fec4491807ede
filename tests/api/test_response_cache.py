"""Kept answers of GET /alerts and /aggregates: reused while nothing changed, never after a write or for a wrong key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from api import response_cache
from api.app import create_app
from api.auth import revoke_key
from api.models import Snooze
from api.response_cache import ResponseCache
from api.roles import Role
from citystream.servers import RedisServer
from streams.keys import Keys
from streams.settings import Settings
from tests.api.alerts_data import make_alert, write_alerts
from tests.api.conftest import api_settings, bearer, make_keys
from tests.api.test_planner_queries import commit

ALERTS = "/alerts?domain=traffic&limit=50"


@pytest.fixture
def cache_settings(redis_server: RedisServer) -> Settings:
    return api_settings(redis_server.url, key_cache_s=0.3, response_cache_s=30)


@pytest.fixture
def api(cache_settings: Settings) -> Iterator[tuple[TestClient, dict[Role, str]]]:
    keys = make_keys(cache_settings)
    with TestClient(create_app(cache_settings)) as c:
        yield c, keys


def _counts(client: TestClient) -> dict[str, int]:
    return dict(client.app.state.response_cache)  # type: ignore[attr-defined]


def _ids(client: TestClient, key: str) -> list[str]:
    response = client.get(ALERTS, headers=bearer(key))
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()["items"]]


def test_an_unchanged_answer_is_reused_and_a_worker_write_is_seen_by_the_next_request(
    api: tuple[TestClient, dict[Role, str]], cache_settings: Settings
) -> None:
    client, keys = api
    write_alerts(cache_settings, make_alert("k1", minutes_ago=20))
    assert _ids(client, keys[Role.operator]) == ["k1"]
    before = _counts(client)
    first = client.get(ALERTS, headers=bearer(keys[Role.operator]))
    assert _counts(client)["hit"] == before["hit"] + 1
    assert first.headers["content-type"] == "application/json"
    for round_ in range(20):  # each write is seen by the very next request, with no pause
        write_alerts(cache_settings, make_alert(f"n{round_}", minutes_ago=10 - round_ * 0.1))
        assert _ids(client, keys[Role.operator])[0] == f"n{round_}"
    client.post("/alerts/k1/ack", headers=bearer(keys[Role.operator]))
    row = next(a for a in client.get(ALERTS, headers=bearer(keys[Role.operator])).json()["items"] if a["id"] == "k1")
    assert row["status"] == "acknowledged"


def test_a_kept_answer_is_only_for_keys_of_its_role_and_never_for_an_unknown_or_revoked_key(
    api: tuple[TestClient, dict[Role, str]], cache_settings: Settings
) -> None:
    client, keys = api
    write_alerts(cache_settings, make_alert("r1"))
    assert _ids(client, keys[Role.operator]) == ["r1"]
    assert client.get(ALERTS, headers=bearer(keys[Role.planner])).status_code == 403
    assert client.get(ALERTS, headers=bearer(keys[Role.gateway])).status_code == 403
    assert client.get(ALERTS, headers=bearer("cs_not-a-key")).status_code == 401
    assert client.get(ALERTS).status_code == 401
    assert _ids(client, keys[Role.admin]) == ["r1"]
    admin = redis.Redis.from_url(cache_settings.redis.url.get_secret_value())
    revoke_key(admin, Keys(cache_settings.redis.key_prefix), "operator")
    admin.close()
    time.sleep(0.4)  # past key_cache_s: the API asks Redis again
    assert client.get(ALERTS, headers=bearer(keys[Role.operator])).status_code == 401


def test_aggregates_are_reused_until_the_sink_writes_windows(
    api: tuple[TestClient, dict[Role, str]], cache_settings: Settings
) -> None:
    client, keys = api
    planner = bearer(keys[Role.planner])
    query = "/aggregates?zone=changan&domain=traffic&metric=avg_speed_kmh"
    assert client.get(query, headers=planner).json()["items"] == []
    assert client.get(query, headers=planner).json()["items"] == []
    assert _counts(client)["hit"] >= 1
    commit(cache_settings)
    assert len(client.get(query, headers=planner).json()["items"]) == 2
    csv = client.get(query + "&format=csv", headers=planner)
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.count("\n") == 3


def test_no_cache_requests_and_a_lost_feed_are_answered_from_redis(
    api: tuple[TestClient, dict[Role, str]], cache_settings: Settings
) -> None:
    client, keys = api
    operator = bearer(keys[Role.operator])
    write_alerts(cache_settings, make_alert("f1"))
    assert _ids(client, keys[Role.operator]) == ["f1"]
    hits = _counts(client)["hit"]
    client.get(ALERTS, headers={**operator, "Cache-Control": "no-cache"})
    assert _counts(client)["hit"] == hits
    client.app.state.change_feed._drop()  # type: ignore[attr-defined]  # as if Redis closed the connection
    client.get(ALERTS, headers=operator)
    assert _counts(client)["hit"] == hits and _counts(client)["bypass"] >= 1
    metrics = client.get("/metrics").text
    assert 'citystream_api_answers_total{result="hit"}' in metrics


def test_a_kept_answer_ends_when_a_snooze_in_it_ends(
    api: tuple[TestClient, dict[Role, str]], cache_settings: Settings
) -> None:
    client, keys = api
    write_alerts(cache_settings, make_alert("s1", source_id="loop-9"))
    now = datetime.now(UTC)
    snooze = Snooze(
        id="s" * 16, kind="congestion", source_id="loop-9", until=now + timedelta(seconds=1.5), by="t", created_at=now
    )
    writer = redis.Redis.from_url(cache_settings.redis.url.get_secret_value())
    store = Keys(cache_settings.redis.key_prefix)
    writer.hset(store.snoozes, snooze.id, snooze.model_dump_json())
    writer.incr(store.alerts_version)
    writer.close()
    assert _ids(client, keys[Role.operator]) == []
    hits = _counts(client)["hit"]
    assert _ids(client, keys[Role.operator]) == []
    assert _counts(client)["hit"] == hits + 1
    time.sleep(max(0.0, (snooze.until - datetime.now(UTC)).total_seconds()) + 0.1)
    assert _ids(client, keys[Role.operator]) == ["s1"]  # well before response_cache_s (30 s)


def test_concurrent_requests_after_a_write_compute_the_answer_once(
    api: tuple[TestClient, dict[Role, str]], cache_settings: Settings
) -> None:
    client, keys = api
    write_alerts(cache_settings, make_alert("c1"))
    operator = bearer(keys[Role.operator])
    assert _ids(client, keys[Role.operator]) == ["c1"]
    write_alerts(cache_settings, make_alert("c2", minutes_ago=5))
    before = _counts(client)

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=operator) as http:
            return await asyncio.gather(*(http.get(ALERTS) for _ in range(20)))

    answers = client.portal.call(burst)  # type: ignore[union-attr]  # in the app's own event loop
    assert {tuple(a["id"] for a in r.json()["items"]) for r in answers} == {("c2", "c1")}
    after = _counts(client)
    assert after["miss"] - before["miss"] == 1
    assert after["joined"] - before["joined"] == 19


def test_a_key_checked_again_after_key_cache_s_still_gets_the_kept_answer(
    api: tuple[TestClient, dict[Role, str]], cache_settings: Settings
) -> None:
    client, keys = api
    write_alerts(cache_settings, make_alert("t1"))
    assert _ids(client, keys[Role.operator]) == ["t1"]
    time.sleep(0.4)  # past key_cache_s (0.3): the key is asked about in Redis again, the answer is not computed
    before = _counts(client)
    assert _ids(client, keys[Role.operator]) == ["t1"]
    assert _counts(client)["hit"] == before["hit"] + 1
    assert _counts(client)["miss"] == before["miss"]


def _middleware(client: TestClient) -> ResponseCache:
    layer = client.app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(layer, ResponseCache):
        layer = layer.app
    return layer


def test_kept_answers_stay_within_their_byte_budget_and_large_ones_are_not_kept(
    api: tuple[TestClient, dict[Role, str]], cache_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, keys = api
    write_alerts(cache_settings, *(make_alert(f"b{i}", minutes_ago=30 - i, source_id=f"loop-{i}") for i in range(5)))
    operator = bearer(keys[Role.operator])
    one = len(client.get("/alerts?limit=1", headers=operator).content)
    monkeypatch.setattr(response_cache, "MAX_BYTES", 2 * one + 10)
    monkeypatch.setattr(response_cache, "MAX_ANSWER_BYTES", 2 * one)
    cache = _middleware(client)
    for sort in ("first_seen", "last_seen", "severity"):
        assert client.get(f"/alerts?limit=1&sort={sort}", headers=operator).status_code == 200
        assert cache.kept_bytes <= 2 * one + 10
    assert len(cache.entries) == 2  # the oldest went to make room
    before = _counts(client)
    big = client.get("/alerts?limit=5", headers=operator)  # larger than MAX_ANSWER_BYTES: answered, not kept
    assert len(big.json()["items"]) == 5
    client.get("/alerts?limit=5", headers=operator)
    assert _counts(client)["miss"] == before["miss"] + 2
