"""GET /aggregates, /zones and /health against real servers; Redis down is a 503 naming Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from api.app import create_app
from citystream.servers import RedisServer, free_port
from processors.outcome import BatchOutcome
from processors.sink import RedisSink
from processors.windows import WindowStore
from streams.keys import Keys
from streams.models import Domain
from streams.settings import Settings
from streams.topics import Topics
from tests.api.conftest import api_settings

START = int((datetime.now(UTC) - timedelta(hours=1)).timestamp()) // 60 * 60_000


def commit_windows(settings: Settings) -> None:
    """Write three traffic windows and one drone window through the real sink."""

    async def write() -> None:
        client = Redis.from_url(settings.redis.url.get_secret_value())
        sink = RedisSink(client, Keys(settings.redis.key_prefix))
        traffic = BatchOutcome(Domain.traffic, 60)
        for i, zone in enumerate(["changan", "changan", "shatian"]):
            traffic.add_sums(zone, START + (i % 2) * 60_000, {"n": 2, "speed_micro": 100_000_000, "vehicles": 7})
        assert (await sink.commit("t", 0, -1, 10, traffic, {})).applied
        drone = BatchOutcome(Domain.drone, 60)
        drone.add_sums("changan", START, {"n": 3})
        drone.add_member("changan", START, "CN-UAS-0001")
        drone.add_member("changan", START, "CN-UAS-0002")
        assert (await sink.commit("d", 0, -1, 3, drone, {})).applied
        await client.aclose()

    asyncio.run(write())


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def test_aggregates_by_domain_metric_zone_and_time(client: TestClient, settings: Settings) -> None:
    commit_windows(settings)
    everything = client.get("/aggregates").json()["items"]
    assert {(a["domain"], a["metric"]) for a in everything} >= {
        ("traffic", "avg_speed_kmh"),
        ("drone", "drones_airborne"),
    }
    speed = client.get(
        "/aggregates", params={"domain": "traffic", "metric": "avg_speed_kmh", "zone": "changan"}
    ).json()["items"]
    assert [(a["window_start"], a["value"]) for a in speed] == [
        (iso(START).replace("+00:00", "Z"), 50.0),
        (iso(START + 60_000).replace("+00:00", "Z"), 50.0),
    ]
    assert speed[0]["unit"] == "km/h" and speed[0]["samples"] == 2
    later = client.get(
        "/aggregates", params={"domain": "traffic", "from": iso(START + 60_000), "metric": "readings"}
    ).json()["items"]
    assert [a["zone_id"] for a in later] == ["changan"]
    before = client.get(
        "/aggregates", params={"domain": "traffic", "to": iso(START + 60_000), "metric": "readings"}
    ).json()["items"]
    assert sorted(a["zone_id"] for a in before) == ["changan", "shatian"]
    drones = client.get("/aggregates", params={"domain": "drone", "metric": "drones_airborne"}).json()["items"]
    assert [a["value"] for a in drones] == [2.0]


def test_zones_are_geojson_with_every_kind(client: TestClient) -> None:
    body = client.get("/zones").json()
    assert body["type"] == "FeatureCollection"
    kinds = {f["properties"]["kind"] for f in body["features"]}
    assert kinds == {"district", "nofly", "restricted"}
    nofly = client.get("/zones", params={"kind": "nofly"}).json()["features"]
    assert {f["properties"]["id"] for f in nofly} >= {"nofly-government-centre"}
    assert client.get("/zones", params={"kind": "lake"}).status_code == 422


@pytest.mark.integration
def test_health_is_ok_with_both_servers_up(redis_server: RedisServer, kafka_bootstrap: str) -> None:
    with TestClient(create_app(api_settings(redis_server.url, kafka_bootstrap))) as c:
        response = c.get("/health")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"kafka": "ok", "redis": "ok"}


def test_health_names_kafka_when_it_is_down(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["unavailable"] == ["kafka"]


def test_redis_down_is_503_naming_redis_not_500(redis_server: RedisServer) -> None:
    settings = api_settings(f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings), headers={"Authorization": "Bearer cs_any"}) as c:
        health = c.get("/health")
        alerts = c.get("/alerts")
        aggregates = c.get("/aggregates")
    assert health.status_code == 503 and "redis" in health.json()["unavailable"]
    for response in (alerts, aggregates):
        assert response.status_code == 503
        assert "Redis is unavailable" in response.json()["detail"]


def test_bodies_over_the_limit_are_refused_with_413_before_being_read_whole(client: TestClient) -> None:
    huge = b"[" + b"0," * (3 * 1024 * 1024) + b"0]"
    response = client.post("/ingest/traffic", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "bytes" in response.json()["detail"]

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(80):
            yield b" " * 65536

    streamed = client.post("/ingest/traffic", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_windows_expire_after_the_retention_and_leave_the_index(settings: Settings, client: TestClient) -> None:
    async def write_and_expire() -> int:
        redis_client = Redis.from_url(settings.redis.url.get_secret_value())
        keys = Keys(settings.redis.key_prefix)
        sink = RedisSink(redis_client, keys, window_ttl_s=1)
        outcome = BatchOutcome(Domain.traffic, 60)
        outcome.add_sums("changan", START, {"n": 1, "speed_micro": 1, "vehicles": 1})
        assert (await sink.commit("t", 0, -1, 0, outcome, {})).applied
        ttl = await redis_client.ttl(keys.window("traffic", 60, "changan", START))
        await asyncio.sleep(2.1)
        store = WindowStore(redis_client, keys, 60, Topics(settings.kafka.topic_namespace))
        removed = await store.forget_expired(Domain.traffic)
        remaining = await redis_client.zcard(keys.window_index("traffic", 60))
        await redis_client.aclose()
        assert ttl == 1 and remaining == 0
        return removed

    assert asyncio.run(write_and_expire()) == 1
    assert client.get("/aggregates", params={"domain": "traffic"}).json()["items"] == []


def test_an_unknown_metric_is_a_422_listing_the_known_ones(client: TestClient) -> None:
    response = client.get("/aggregates", params={"domain": "drone", "metric": "avg_speed_kmh"})
    assert response.status_code == 422
    assert "drones_airborne" in response.json()["detail"] and "avg_speed_kmh" in response.json()["detail"]
    assert client.get("/aggregates", params={"metric": "avg_speed_kmh"}).status_code == 200


def test_settlement_windows_of_meters_and_feeders_by_window_size(client: TestClient, settings: Settings) -> None:
    interval = START - START % 900_000

    async def write() -> None:
        client_ = Redis.from_url(settings.redis.url.get_secret_value())
        sink = RedisSink(client_, Keys(settings.redis.key_prefix))
        out = BatchOutcome(Domain.energy, 60, zone_sizes=(60, 900), source_sizes=(900,))
        for k, wh in enumerate((10, 20, 30)):
            sums = {"n": 1, "wh": wh, "mv": 220_000}
            out.add_reading(
                "changan", interval + k * 60_000, sums, {"max_w": 1000 * (k + 1)}, groups=("meter:M1", "feeder:F1")
            )
        assert (await sink.commit("e", 0, -1, 2, out, {})).applied
        await client_.aclose()

    asyncio.run(write())
    params = {"domain": "energy", "metric": "energy_kwh", "window": 900}
    settled = client.get("/aggregates", params=params | {"zone": "feeder:F1"}).json()["items"]
    assert [(a["zone_id"], a["value"], a["window_start"]) for a in settled] == [
        ("feeder:F1", 0.06, iso(interval).replace("+00:00", "Z"))
    ]
    zone = client.get("/aggregates", params=params | {"zone": "changan"}).json()["items"]
    assert [a["value"] for a in zone] == [0.06]
    minutes = client.get("/aggregates", params={"domain": "energy", "metric": "energy_kwh", "zone": "changan"}).json()
    assert [a["value"] for a in minutes["items"]] == [0.01, 0.02, 0.03]
    peak = client.get(
        "/aggregates", params={"domain": "energy", "metric": "peak_kw", "window": 900, "zone": "meter:M1"}
    )
    assert [a["value"] for a in peak.json()["items"]] == [3.0]
    refused = client.get("/aggregates", params={"domain": "drone", "window": 900})
    assert refused.status_code == 422 and "drone [60, 3600]" in refused.json()["detail"]
    assert client.get("/aggregates/windows").json()["energy"] == {"zone": [60, 900], "group": [900]}
