"""PUT /zones/{kind} (fences at run time, validated, admin only), GET /zones, and GET /aggregates/corridors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from redis.asyncio import Redis

from api.roles import Role
from processors.outcome import BatchOutcome
from processors.sink import RedisSink
from streams.keys import Keys
from streams.models import Domain
from streams.settings import Settings
from tests.api.conftest import bearer

HOUR = int((datetime.now(UTC) - timedelta(hours=2)).timestamp()) // 3600 * 3_600_000


def fence(fid: str, ring: list[list[float]], **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"id": fid, **props},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


SQUARE = [[113.70, 22.80], [113.71, 22.80], [113.71, 22.81], [113.70, 22.81], [113.70, 22.80]]
BOW_TIE = [[113.70, 22.80], [113.71, 22.81], [113.71, 22.80], [113.70, 22.81], [113.70, 22.80]]


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def test_put_nofly_replaces_the_set_and_get_serves_it(client: TestClient) -> None:
    before = client.get("/zones").json()
    assert before["version"] == 0
    assert {f["properties"]["source"] for f in before["features"] if f["properties"]["kind"] != "district"} == {"file"}
    response = client.put("/zones/nofly", json=collection(fence("nofly-stadium", SQUARE, name="Stadium")))
    assert response.status_code == 200, response.text
    assert response.json() == {"kind": "nofly", "fences": 1, "version": 1}
    nofly = client.get("/zones", params={"kind": "nofly"}).json()
    assert [f["properties"]["id"] for f in nofly["features"]] == ["nofly-stadium"]
    assert {"kind": "nofly", "source": "runtime", "name": "Stadium"}.items() <= nofly["features"][0][
        "properties"
    ].items()
    assert nofly["version"] == 1
    everything = client.get("/zones").json()
    kinds = {f["properties"]["kind"] for f in everything["features"]}
    assert kinds == {"district", "nofly", "restricted"}  # restricted zones still come from the zones file
    area = collection(fence("area-ops", SQUARE, permits=["OP-DG-001"]))
    assert client.put("/zones/operating_area", json=area).json()["version"] == 2
    assert client.get("/zones", params={"kind": "operating_area"}).json()["features"][0]["properties"]["permits"] == [
        "OP-DG-001"
    ]


def test_invalid_fences_are_422_with_the_reason_and_store_nothing(client: TestClient) -> None:
    bow = client.put("/zones/nofly", json=collection(fence("bow", BOW_TIE)))
    assert bow.status_code == 422 and "Self-intersection" in bow.json()["detail"]
    permits = client.put("/zones/nofly", json=collection(fence("x", SQUARE, permits=["OP-1"])))
    assert permits.status_code == 422 and "no-fly zones take no permits" in permits.json()["detail"]
    clash = client.put("/zones/restricted", json=collection(fence("nofly-government-centre", SQUARE)))
    assert clash.status_code == 422 and "used by two kinds" in clash.json()["detail"]
    assert client.put("/zones/nofly", json={"type": "Feature"}).status_code == 422
    assert (
        client.put("/zones/nofly", content=b"not json", headers={"content-type": "application/json"}).status_code == 422
    )
    assert client.put("/zones/lake", json=collection()).status_code == 422
    assert client.get("/zones").json()["version"] == 0


def test_only_an_admin_may_put_fences(app_client: TestClient, api_keys: dict[Role, str]) -> None:
    body = collection(fence("nofly-stadium", SQUARE))
    planner = app_client.put("/zones/nofly", json=body, headers=bearer(api_keys[Role.planner]))
    assert planner.status_code == 403 and "admin" in planner.json()["detail"]
    assert app_client.get("/zones", headers=bearer(api_keys[Role.planner])).status_code == 200


def commit_cells(settings: Settings) -> None:
    """Write drone corridor windows of two hours through the real sink."""

    async def write() -> None:
        client = Redis.from_url(settings.redis.url.get_secret_value())
        sink = RedisSink(client, Keys(settings.redis.key_prefix))
        out = BatchOutcome(Domain.drone, 60, source_sizes=(3600,))
        for hour, cells in (
            (HOUR, {"cell500:5073:25270": 9, "cell500:5073:25271": 3, "cell500:5074:25270": 5}),
            (HOUR + 3_600_000, {"cell500:5073:25271": 4}),
        ):
            for cell, fixes in cells.items():
                out.add_sums(cell, hour, {"n": fixes, "violations": 1}, 3600)
                out.add_member(cell, hour, "CN-UAS-0001", 3600)
        assert (await sink.commit("d", 0, -1, 3, out, {})).applied
        await client.aclose()

    asyncio.run(write())


def test_corridors_are_the_busiest_cells_of_each_hour(client: TestClient, settings: Settings) -> None:
    commit_cells(settings)
    items = client.get("/aggregates/corridors", params={"top": 2}).json()["items"]
    assert [(i["cell_id"], i["fixes"]) for i in items] == [
        ("cell500:5073:25270", 9),
        ("cell500:5074:25270", 5),
        ("cell500:5073:25271", 4),
    ]
    first = items[0]
    assert first["drones_airborne"] == 1 and first["violations"] == 1
    west, south, east, north = first["bounds"]
    assert west < east and south < north
    by_metric = client.get("/aggregates", params={"domain": "drone", "window": 3600, "zone": "cell500:5073:25270"})
    assert {a["metric"]: a["value"] for a in by_metric.json()["items"]} == {
        "fixes": 9.0,
        "drones_airborne": 1.0,
        "violations": 1.0,
    }
    assert client.get("/aggregates/corridors", params={"window": 60}).status_code == 422
