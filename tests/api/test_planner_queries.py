"""Planners' queries on a real Redis: areas, group_by=zone, top-N, CSV and GeoJSON, and a zone's summary."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from processors.outcome import BatchOutcome
from processors.sink import RedisSink
from streams.keys import Keys
from streams.models import Domain
from streams.settings import Settings

START = int((datetime.now(UTC) - timedelta(hours=2)).timestamp()) // 3600 * 3_600_000
MINUTE = 60_000

# Shapes drawn round the synthetic districts of geo/data/binhaiwan_zones.geojson.
CHANGAN_POINT = (113.79, 22.8165)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def commit(settings: Settings) -> None:
    """Write two minutes of traffic in changan and shatian, drones in changan, energy with a meter group."""

    async def write() -> None:
        client = Redis.from_url(settings.redis.url.get_secret_value())
        sink = RedisSink(client, Keys(settings.redis.key_prefix))
        traffic = BatchOutcome(Domain.traffic, 60)
        # changan: 2 readings at 50 km/h, then 1 at 20 km/h -> 120 km/h / 3 readings = 40 km/h over the range
        traffic.add_sums("changan", START, {"n": 2, "speed_micro": 100_000_000, "vehicles": 7})
        traffic.add_sums("changan", START + MINUTE, {"n": 1, "speed_micro": 20_000_000, "vehicles": 3})
        traffic.add_sums("shatian", START, {"n": 4, "speed_micro": 240_000_000, "vehicles": 40})
        assert (await sink.commit("t", 0, -1, 10, traffic, {})).applied
        drone = BatchOutcome(Domain.drone, 60)
        for minute, drones in ((0, ["D1", "D2"]), (1, ["D1", "D2", "D3"])):
            drone.add_sums("changan", START + minute * MINUTE, {"n": len(drones)})
            for d in drones:
                drone.add_member("changan", START + minute * MINUTE, d)
        assert (await sink.commit("d", 0, -1, 3, drone, {})).applied
        energy = BatchOutcome(Domain.energy, 60, zone_sizes=(60,), source_sizes=(900,))
        for minute, (wh, w) in enumerate(((100, 5000), (300, 2000))):
            energy.add_reading(
                "changan",
                START + minute * MINUTE,
                {"n": 1, "wh": wh, "mv": 220_000},
                {"max_w": w},
                groups=("meter:M1",),
            )
        assert (await sink.commit("e", 0, -1, 2, energy, {})).applied
        await client.aclose()

    asyncio.run(write())


@pytest.fixture
def planner_data(client: TestClient, settings: Settings) -> TestClient:
    commit(settings)
    return client


def test_group_by_zone_combines_the_integer_sums_of_the_range(planner_data: TestClient) -> None:
    body = planner_data.get("/aggregates", params={"group_by": "zone", "from": iso(START)}).json()
    rows = {(r["zone_id"], r["domain"], r["metric"]): r for r in body["items"]}
    speed = rows[("changan", "traffic", "avg_speed_kmh")]
    assert speed["value"] == 40.0 and speed["windows"] == 2 and speed["samples"] == 3
    assert speed["window_start"] == iso(START) and speed["window_end"] == iso(START + 2 * MINUTE)
    assert rows[("changan", "traffic", "vehicle_count")]["value"] == 10.0
    assert rows[("changan", "drone", "drones_airborne")]["value"] == 3.0  # most in one window
    assert rows[("changan", "drone", "fixes")]["value"] == 5.0
    assert rows[("changan", "energy", "energy_kwh")]["value"] == 0.4
    assert rows[("changan", "energy", "peak_kw")]["value"] == 5.0
    assert rows[("changan", "energy", "mean_voltage_v")]["value"] == 220.0
    assert rows[("shatian", "traffic", "avg_speed_kmh")]["value"] == 60.0


def test_top_zones_by_a_metric_descending_and_top_needs_a_metric(planner_data: TestClient) -> None:
    params = {"domain": "traffic", "metric": "vehicle_count", "top": 1}
    items = planner_data.get("/aggregates", params=params).json()["items"]
    assert [(r["zone_id"], r["value"]) for r in items] == [("shatian", 40.0)]
    both = planner_data.get("/aggregates", params=params | {"top": 5}).json()["items"]
    assert [r["zone_id"] for r in both] == ["shatian", "changan"]
    refused = planner_data.get("/aggregates", params={"top": 3})
    assert refused.status_code == 400 and "metric" in refused.json()["detail"]


def test_bbox_and_polygon_select_the_districts_they_touch(planner_data: TestClient) -> None:
    lon, lat = CHANGAN_POINT
    tiny = f"{lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}"
    in_box = planner_data.get("/aggregates", params={"domain": "traffic", "bbox": tiny}).json()["items"]
    assert {a["zone_id"] for a in in_box} == {"changan"}
    ring = [[lon - 0.001, lat - 0.001], [lon + 0.001, lat - 0.001], [lon, lat + 0.001], [lon - 0.001, lat - 0.001]]
    shape = json.dumps({"type": "Polygon", "coordinates": [ring]})
    in_polygon = planner_data.get("/aggregates", params={"domain": "traffic", "polygon": shape}).json()["items"]
    assert {a["zone_id"] for a in in_polygon} == {"changan"}
    everything = planner_data.get("/aggregates", params={"domain": "traffic", "bbox": "113,22,115,24"}).json()
    assert {a["zone_id"] for a in everything["items"]} == {"changan", "shatian"}
    nowhere = planner_data.get("/aggregates", params={"bbox": "0,0,1,1"}).json()
    assert nowhere["items"] == []


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"bbox": "1,2,3"}, 400, "4 numbers"),
        ({"bbox": "a,b,c,d"}, 400, "4 numbers"),
        ({"bbox": "3,2,1,4"}, 400, "min must not exceed max"),
        ({"bbox": "0,95,1,96"}, 400, "latitude"),
        ({"polygon": "{not json"}, 400, "not JSON"),
        ({"polygon": '{"type": "Point", "coordinates": [1, 2]}'}, 400, "Polygon"),
        ({"polygon": '{"type": "Polygon", "coordinates": [[[0,0],[1,1],[1,0]]]}'}, 400, "4 positions"),
        (
            {"polygon": '{"type": "Polygon", "coordinates": [[[0,0],[1,1],[1,0],[0,1],[0,0]]]}'},
            400,
            "Self-intersection",
        ),
        ({"polygon": '{"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,2]]]}'}, 400, "not closed"),
        ({"bbox": "0,0,1,1", "polygon": "{}"}, 400, "not both"),
        ({"zone": "atlantis"}, 400, "no district 'atlantis'"),
        ({"format": "xml"}, 422, "json"),
        ({"group_by": "meter"}, 422, "zone"),
        ({"top": 0, "metric": "fixes"}, 422, "greater"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, 400, "after"),
    ],
)
def test_bad_parameters_are_4xx_saying_what_is_wrong(
    client: TestClient, params: dict[str, object], status: int, words: str
) -> None:
    response = client.get("/aggregates", params=params)
    assert response.status_code == status, response.text
    assert words in json.dumps(response.json()["detail"])


def test_csv_has_a_header_and_one_row_per_item(planner_data: TestClient) -> None:
    response = planner_data.get("/aggregates", params={"domain": "traffic", "metric": "vehicle_count", "format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == ["domain", "metric", "zone_id", "window_start", "window_end", "value", "unit", "samples"]
    assert [(r["zone_id"], r["window_start"], float(r["value"])) for r in rows] == [
        ("changan", iso(START), 7.0),
        ("shatian", iso(START), 40.0),
        ("changan", iso(START + MINUTE), 3.0),
    ]
    grouped = planner_data.get("/aggregates", params={"group_by": "zone", "metric": "fixes", "format": "csv"})
    lines = grouped.text.splitlines()
    assert lines[0] == "domain,metric,zone_id,window_start,window_end,windows,value,unit,samples"
    assert lines[1:] == [f"drone,fixes,changan,{iso(START)},{iso(START + 2 * MINUTE)},2,5.0,fixes,5"]


def test_geojson_is_zone_polygons_with_metrics_and_leaves_groups_out(planner_data: TestClient) -> None:
    response = planner_data.get("/aggregates", params={"group_by": "zone", "format": "geojson"})
    assert response.headers["content-type"] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection"
    by_zone = {f["properties"]["zone_id"]: f for f in body["features"]}
    assert set(by_zone) == {"changan", "shatian"}
    changan = by_zone["changan"]
    assert changan["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert changan["properties"]["traffic.avg_speed_kmh"] == 40.0
    assert changan["properties"]["drone.drones_airborne"] == 3.0
    assert "energy.energy_kwh" in changan["properties"]
    flat = planner_data.get("/aggregates", params={"domain": "energy", "window": 900, "format": "geojson"}).json()
    assert flat["features"] == [] and flat["omitted"] == ["meter:M1"] and "meter:" in flat["note"]


def test_zone_summary_is_the_latest_window_of_each_domain(planner_data: TestClient) -> None:
    body = planner_data.get("/zones/changan/summary").json()
    assert body["zone_id"] == "changan" and body["window_s"] == 60
    latest = {(a["domain"], a["metric"]): (a["window_start"], a["value"]) for a in body["items"]}
    assert latest[("traffic", "avg_speed_kmh")] == (iso(START + MINUTE), 20.0)
    assert latest[("drone", "drones_airborne")] == (iso(START + MINUTE), 3.0)
    assert latest[("energy", "energy_kwh")] == (iso(START + MINUTE), 0.3)
    quiet = planner_data.get("/zones/humen-port/summary").json()
    assert quiet["items"] == []
    missing = planner_data.get("/zones/atlantis/summary")
    assert missing.status_code == 404 and "atlantis" in missing.json()["detail"]
