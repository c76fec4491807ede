"""Drones on real Apache Kafka and Redis: breach, cross, separation, and fences replaced while a worker runs."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from citystream.servers import RedisServer
from streams.gateway import GatewayProducer
from streams.models import Domain
from streams.topics import ensure_topics
from tests.support.api import api_process, get
from tests.support.deployment import isolated_settings
from tests.support.faults import Results
from tests.support.worker import WorkerProcess, wait_until

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
NEW_ZONE = "nofly-test-square"  # set at run time around (113.640, 22.900)


def fix(
    drone: str, i: float, lon: float, lat: float, height: float, speed: float = 10.0, **extra: Any
) -> dict[str, Any]:
    return {
        "drone_id": drone,
        "observed_at": (T0 + timedelta(seconds=i)).isoformat(),
        "lat": lat,
        "lon": lon,
        "altitude_m": height + 5,
        "height_agl_m": height,
        "speed_h_mps": speed,
        "speed_v_mps": 0.0,
        "heading_deg": 90.0,
        "status": "airborne",
        "operator_id": "OP-DG-001",
    } | extra


def first_phase() -> list[dict[str, Any]]:
    """A breach of the government centre, a fast pass over it, and two drones flying 20 m apart."""
    fixes = []
    # West to east at 40 m through the octagon around (113.700, 22.755): three fixes inside.
    for k, lon in enumerate((113.694, 113.696, 113.698, 113.700, 113.702, 113.704, 113.706)):
        fixes.append(fix("UAS-BREACH", 10 * k, lon, 22.755, 40.0))
    # 80 m up (clear of the breaching drone), one fix either side of it: the path crosses the zone.
    for k, lon in enumerate((113.690, 113.696, 113.704, 113.710)):
        fixes.append(fix("UAS-FAST", 10 * k + 3, lon, 22.755, 80.0, speed=20.0))
    # Two drones 20 m apart and 5 m apart in height for 16 s, then B turns 600 m away.
    for k in range(14):
        lat = 22.850 + k * 0.0002
        fixes.append(fix("UAS-SEP-A", 2 * k, 113.7000, lat, 60.0))
        fixes.append(fix("UAS-SEP-B", 2 * k + 0.5, 113.7002 if k < 8 else 113.706, lat, 65.0))
    return sorted(fixes, key=lambda f: f["observed_at"])


def second_phase() -> list[dict[str, Any]]:
    """A drone flying through the zone set at run time (and, now, through no other)."""
    return [
        fix("UAS-NEW", 300 + 10 * k, lon, 22.900, 50.0)
        for k, lon in enumerate((113.634, 113.636, 113.639, 113.641, 113.644, 113.646))
    ]


def square(fid: str, lon: float, lat: float, half: float) -> dict[str, Any]:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half], [lon - half, lat + half]]
    ring.append(ring[0])
    return {
        "type": "Feature",
        "properties": {"id": fid, "name": "Test square"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def put(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="PUT", headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return r.status, json.load(r)


def test_breach_cross_separation_and_a_fence_set_at_run_time(
    kafka_bootstrap: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = isolated_settings(
        "drones", kafka_bootstrap, redis_server.url, kafka={"partitions": 4}, worker={"window_grace_s": 0}
    )
    ensure_topics(settings.kafka)
    results = Results(settings)
    producer = GatewayProducer(settings.kafka)
    one, two = first_phase(), second_phase()

    def publish(fixes: list[dict[str, Any]]) -> None:
        for value in fixes:
            producer.send(Domain.drone, value["drone_id"], orjson.dumps(value))
        producer.flush(10)

    def by_kind() -> dict[tuple[str, str], list[tuple[str, int]]]:
        out: dict[tuple[str, str], list[tuple[str, int]]] = {}
        for kind, source, status, count in results.alerts().values():
            out.setdefault((kind, source), []).append((status, count))
        return out

    publish(one)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        with api_process(settings, tmp_path / "api.log") as api:
            wait_until(lambda: results.progress() == len(one), 90, "the first flights applied", worker)
            wait_until(lambda: ("separation", "UAS-SEP-A") in by_kind(), 10, "the separation alert", worker)
            wait_until(
                lambda: by_kind()[("separation", "UAS-SEP-A")][0][0] == "resolved", 10, "separation resolved", worker
            )
            found = by_kind()
            # How many close pairs of fixes each side saw depends on how the partitions interleaved: at least
            # B's eight fixes beside A, or A's, and at most both.
            (separation,) = found.pop(("separation", "UAS-SEP-A"))
            assert separation[0] == "resolved" and 8 <= separation[1] <= 16
            assert found == {
                ("nofly_breach", "UAS-BREACH"): [("resolved", 3)],
                ("nofly_cross", "UAS-FAST"): [("resolved", 1)],
            }

            # An admin replaces the no-fly zones; the running worker judges the next fixes against them.
            status, answer = put(
                f"{api}/zones/nofly",
                {"type": "FeatureCollection", "features": [square(NEW_ZONE, 113.640, 22.900, 0.002)]},
            )
            assert (status, answer) == (200, {"kind": "nofly", "fences": 1, "version": 1})
            _, zones = get(f"{api}/zones?kind=nofly")
            assert [f["properties"]["id"] for f in zones["features"]] == [NEW_ZONE]
            # A batch starting CITY_DRONE__FENCE_REFRESH_S (1 s) after the change is judged against the new fences.
            time.sleep(settings.drone.fence_refresh_s + 0.5)
            publish(two)
            wait_until(lambda: results.progress() == len(one) + len(two), 60, "the second flight applied", worker)
            assert by_kind()[("nofly_breach", "UAS-NEW")] == [("resolved", 2)]
            _, alerts = get(f"{api}/alerts?kind=nofly_breach&status=resolved&q=UAS-NEW")
            (breach,) = alerts["items"]
            assert breach["data"]["fence_id"] == NEW_ZONE and breach["data"]["fence_name"] == "Test square"
    finally:
        worker.stop()
        producer.close()
    assert len(results.alerts()) == 4
