"""The airspace rules over geo/fences.py: no-fly enter and cross, restricted, operating area, height, speed, status."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from geo.fences import FenceError
from geo.grid import cell_bounds, cell_id, cell_of, cells_near, parse_cell_id
from geo.metric import haversine_m
from geo.zones import ZoneIndex
from processors.drone.airspace import Airspace, normalise_collection, validate_collection
from processors.drone.processor import DroneProcessor
from processors.outcome import BatchOutcome
from streams.models import Alert, AlertStatus, Domain, DroneTelemetry, alert_id
from streams.settings import DEFAULT_ZONES_FILE, DroneRules, Settings

T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
STEP = timedelta(seconds=2)


def square(fid: str, west: float, south: float, size: float = 0.004, **props: Any) -> dict[str, Any]:
    """Return a square fence feature (size in degrees, ~400 m)."""
    ring = [[west, south], [west + size, south], [west + size, south + size], [west, south + size], [west, south]]
    return {
        "type": "Feature",
        "properties": {"id": fid, **props},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


NOFLY = square("nofly-a", 113.700, 22.800)  # 113.700..113.704 x 22.800..22.804
RESTRICTED = square("restricted-b", 113.710, 22.800, permits=["OP-PERMIT"])
AREA = square("area-c", 113.720, 22.800, size=0.01, permits=["OP-AREA"])
LOW = square("low-d", 113.740, 22.800, max_height_agl_m=60)


@pytest.fixture
def airspace() -> Airspace:
    collections = {
        "nofly": normalise_collection("nofly", collection(NOFLY)),
        "restricted": normalise_collection("restricted", collection(RESTRICTED, LOW)),
        "operating_area": normalise_collection("operating_area", collection(AREA)),
    }
    return Airspace.build(collections, {}, 1)


@pytest.fixture(scope="module")
def zones() -> ZoneIndex:
    return ZoneIndex.from_file(DEFAULT_ZONES_FILE)


def fix(
    lon: float,
    lat: float,
    i: int,
    *,
    status: str = "airborne",
    height: float = 60.0,
    speed: float = 8.0,
    operator: str = "OP-1",
    drone: str = "UAS-1",
) -> DroneTelemetry:
    return DroneTelemetry(
        drone_id=drone,
        observed_at=T0 + i * STEP,
        lat=lat,
        lon=lon,
        altitude_m=height + 5,
        height_agl_m=height,
        speed_h_mps=speed,
        speed_v_mps=0.0,
        heading_deg=90.0,
        status=status,  # type: ignore[arg-type]
        operator_id=operator,
    )


def run(
    airspace: Airspace, zones: ZoneIndex, fixes: list[DroneTelemetry], rules: DroneRules | None = None
) -> tuple[list[Alert], BatchOutcome, dict[str, Any]]:
    """Process fixes of one drone in order; return every alert version in order, the outcome and the state."""
    processor = DroneProcessor(Settings(environment="test", drone=rules or DroneRules()), zones, airspace)
    out = BatchOutcome(Domain.drone, 60)
    state: dict[str, Any] = {}
    versions = []
    for f in fixes:
        before = dict(out.alerts)
        processor.process(f, "binhaiwan-core", state, out)
        versions += [a for a_id, a in out.alerts.items() if before.get(a_id) != a]
    return versions, out, state


def final(versions: list[Alert]) -> dict[str, tuple[str, str, int]]:
    """Return {id: (kind, status, count)} of the last version of each alert."""
    return {a.id: (a.kind, a.status.value, a.count) for a in versions}


LAT = 22.802


def test_flying_through_a_nofly_zone_is_one_breach_opened_then_resolved(airspace: Airspace, zones: ZoneIndex) -> None:
    lons = [113.6990, 113.6995, 113.7010, 113.7020, 113.7030, 113.7050]
    versions, out, state = run(airspace, zones, [fix(lon, LAT, i) for i, lon in enumerate(lons)])
    assert final(versions) == {
        alert_id("nofly_breach", "UAS-1", T0 + 2 * STEP, "nofly-a"): ("nofly_breach", "resolved", 3)
    }
    assert [a.status for a in versions] == [AlertStatus.open] * 3 + [AlertStatus.resolved]
    first = versions[0]
    assert first.data["fence_id"] == "nofly-a" and first.data["fence_kind"] == "no_fly"
    assert (first.measured_value, first.threshold, first.unit) == (60.0, 0.0, "m AGL")
    assert json.loads(json.dumps(state)) == state
    assert sum(c.get("violations", 0) for c in out.sums.values()) == 1


def test_a_fast_pass_between_two_fixes_is_one_resolved_cross(airspace: Airspace, zones: ZoneIndex) -> None:
    versions, out, _ = run(airspace, zones, [fix(113.699, LAT, 0), fix(113.705, LAT, 1)])
    assert final(versions) == {alert_id("nofly_cross", "UAS-1", T0, "nofly-a"): ("nofly_cross", "resolved", 1)}
    (cross,) = versions
    assert cross.first_seen == T0 and cross.last_seen == T0 + STEP
    assert cross.measured_value == pytest.approx(haversine_m(113.700, LAT, 113.704, LAT), rel=0.01)
    assert cross.data["previous_fix"][:2] == [113.699, LAT]
    assert sum(c.get("violations", 0) for c in out.sums.values()) == 1


def test_a_pass_on_the_ground_or_beside_the_zone_is_no_cross(airspace: Airspace, zones: ZoneIndex) -> None:
    assert run(airspace, zones, [fix(113.699, LAT, 0, status="ground"), fix(113.705, LAT, 1, status="ground")])[0] == []
    assert run(airspace, zones, [fix(113.699, 22.805, 0), fix(113.705, 22.805, 1)])[0] == []


@pytest.mark.parametrize(("operator", "alerted"), [("OP-1", True), ("OP-PERMIT", False)])
def test_restricted_zone_alerts_only_without_a_permit(
    airspace: Airspace, zones: ZoneIndex, operator: str, alerted: bool
) -> None:
    lons = [113.709, 113.711, 113.712, 113.715]
    versions, _, _ = run(airspace, zones, [fix(lon, LAT, i, operator=operator) for i, lon in enumerate(lons)])
    expected = {
        alert_id("restricted_no_permit", "UAS-1", T0 + STEP, "restricted-b"): ("restricted_no_permit", "resolved", 2)
    }
    assert final(versions) == (expected if alerted else {})


def test_permits_from_the_settings_file_count_too(zones: ZoneIndex) -> None:
    collections = {
        "restricted": normalise_collection("restricted", collection(square("restricted-x", 113.710, 22.800)))
    }
    airspace = Airspace.build(collections, {"restricted-x": {"OP-FILE"}}, 1)
    fixes = [fix(lon, LAT, i, operator="OP-FILE") for i, lon in enumerate([113.709, 113.711, 113.715])]
    assert run(airspace, zones, fixes)[0] == []


def test_leaving_the_declared_operating_area_alerts_until_back(airspace: Airspace, zones: ZoneIndex) -> None:
    path = [113.722, 113.725, 113.735, 113.740, 113.725, 113.726]  # inside, inside, out, out, back, inside
    versions, _, _ = run(airspace, zones, [fix(lon, 22.805, i, operator="OP-AREA") for i, lon in enumerate(path)])
    key = alert_id("left_operating_area", "UAS-1", T0 + 2 * STEP)
    assert final(versions) == {key: ("left_operating_area", "resolved", 2)}
    opened = versions[0]
    assert opened.data["declared_areas"] == ["area-c"]
    assert opened.measured_value == pytest.approx(haversine_m(113.730, 22.805, 113.735, 22.805), rel=0.02)
    # Another operator declared no area: nothing to leave.
    others = run(airspace, zones, [fix(lon, 22.805, i, operator="OP-1") for i, lon in enumerate(path)])[0]
    assert [a.kind for a in others] == []


def test_taking_off_outside_the_declared_area_alerts_and_landing_resolves(airspace: Airspace, zones: ZoneIndex) -> None:
    fixes = [
        fix(113.750, 22.805, 0, operator="OP-AREA", status="ground", height=0),
        fix(113.750, 22.805, 1, operator="OP-AREA"),
        fix(113.750, 22.805, 2, operator="OP-AREA", status="ground", height=0),
    ]
    assert final(run(airspace, zones, fixes)[0]) == {
        alert_id("left_operating_area", "UAS-1", T0 + STEP): ("left_operating_area", "resolved", 1)
    }


@pytest.mark.parametrize(
    ("lon", "heights", "expected"),
    [
        pytest.param(113.800, [100, 121, 130, 110], ("resolved", 2, 120.0, "default"), id="default-120"),
        pytest.param(113.800, [100, 120, 119], None, id="at-the-limit-is-fine"),
        pytest.param(113.742, [50, 61, 65, 65], ("open", 3, 60.0, "low-d"), id="fence-limit-60"),
        pytest.param(113.742, [50, 59], None, id="below-the-fence-limit"),
    ],
)
def test_height_limit(
    airspace: Airspace, zones: ZoneIndex, lon: float, heights: list[float], expected: tuple[str, int, float, str] | None
) -> None:
    rules = DroneRules()
    fixes = [fix(lon, LAT, i, height=h, operator="OP-PERMIT") for i, h in enumerate(heights)]
    versions = [a for a in run(airspace, zones, fixes, rules)[0] if a.kind == "height_limit"]
    if expected is None:
        assert versions == []
        return
    status, count, limit, source = expected
    assert final(versions) == {alert_id("height_limit", "UAS-1", T0 + STEP): ("height_limit", status, count)}
    assert versions[-1].threshold == limit and versions[-1].data["limit_from"] == source


def test_speed_limit_one_episode_and_unknown_speed_ignored(airspace: Airspace, zones: ZoneIndex) -> None:
    speeds = [10, 30, 35, 255, 20]
    versions, _, _ = run(airspace, zones, [fix(113.800, LAT, i, speed=s) for i, s in enumerate(speeds)])
    assert final(versions) == {alert_id("speed_limit", "UAS-1", T0 + STEP): ("speed_limit", "resolved", 2)}
    assert versions[1].data["fastest_mps"] == 35


@pytest.mark.parametrize(
    ("status", "kind"), [("emergency", "drone_emergency"), ("remote_id_failure", "remote_id_failure")]
)
def test_status_episodes_are_alerted_once_but_are_not_violations(
    airspace: Airspace, zones: ZoneIndex, status: str, kind: str
) -> None:
    statuses = ["airborne", status, status, status, "airborne"]
    versions, out, _ = run(airspace, zones, [fix(113.800, LAT, i, status=s) for i, s in enumerate(statuses)])
    assert final(versions) == {alert_id(kind, "UAS-1", T0 + STEP): (kind, "resolved", 3)}
    assert sum(c.get("violations", 0) for c in out.sums.values()) == 0


def test_a_removed_fence_resolves_the_open_breach_on_the_next_fix(airspace: Airspace, zones: ZoneIndex) -> None:
    processor = DroneProcessor(Settings(environment="test"), zones, airspace)
    out = BatchOutcome(Domain.drone, 60)
    state: dict[str, Any] = {}
    processor.process(fix(113.702, LAT, 0), "z", state, out)
    processor.use(Airspace.build({"nofly": normalise_collection("nofly", collection())}, {}, 2))
    processor.process(fix(113.702, LAT, 1), "z", state, out)
    assert [(a.kind, a.status.value, a.count) for a in out.alerts.values()] == [("nofly_breach", "resolved", 1)]


def test_the_fast_path_keeps_the_tracker_state(airspace: Airspace) -> None:
    fast: dict[str, Any] = {}
    slow: dict[str, Any] = {}
    path = [
        (113.690, LAT, 50.0),
        (113.691, LAT, -1000.0),
        (113.699, LAT, 40.0),
        (113.702, LAT, 40.0),
        (113.69, LAT, 1.0),
    ]
    for i, (lon, lat, h) in enumerate(path):
        a = airspace.track(fast, "UAS-1", "OP-1", lon, lat, h, i * 1000)
        b = airspace.tracker.track_one(slow, "UAS-1", "OP-1", lon, lat, h, i * 1000)
        assert a == b and fast == slow


# --- validation of fences set at run time ---------------------------------------------------------


def test_a_bow_tie_polygon_is_refused_with_the_reason() -> None:
    bow = {
        "type": "Polygon",
        "coordinates": [[[113.7, 22.8], [113.71, 22.81], [113.71, 22.8], [113.7, 22.81], [113.7, 22.8]]],
    }
    with pytest.raises(FenceError, match="Self-intersection"):
        validate_collection("nofly", collection({"type": "Feature", "properties": {"id": "bow"}, "geometry": bow}))


@pytest.mark.parametrize(
    ("kind", "feature", "reason"),
    [
        ("nofly", square("x", 113.7, 22.8, permits=["OP-1"]), "no-fly zones take no permits"),
        ("nofly", square("x", 113.7, 22.8, kind="restricted"), "kind 'restricted' in a nofly collection"),
        ("restricted", square("x", 113.7, 22.8, permits="OP-1"), "permits must be a list"),
        ("operating_area", square("x", 113.7, 22.8, max_height_agl_m=-5), "max_height_agl_m must be"),
    ],
)
def test_invalid_fences_are_refused(kind: str, feature: dict[str, Any], reason: str) -> None:
    with pytest.raises(FenceError, match=reason):
        validate_collection(kind, collection(feature))  # type: ignore[arg-type]


def test_the_engine_kind_name_is_accepted_and_normalised() -> None:
    got = validate_collection("nofly", collection(square("x", 113.7, 22.8, kind="no_fly")))
    assert got["features"][0]["properties"]["kind"] == "no_fly"


# --- the corridor grid ----------------------------------------------------------------------------


def test_grid_cells_are_about_the_size_asked_and_named_stably() -> None:
    ix, iy = cell_of(113.7, 22.8, 500)
    west, south, east, north = cell_bounds(ix, iy, 500)
    assert west <= 113.7 < east and south <= 22.8 < north
    assert haversine_m(west, south, east, south) == pytest.approx(500, rel=0.01)
    assert haversine_m(west, south, west, north) == pytest.approx(500, rel=0.001)
    assert parse_cell_id(cell_id(ix, iy, 500)) == (ix, iy, 500.0)
    assert parse_cell_id("binhaiwan-core") is None


def test_cells_near_hold_every_point_within_the_radius() -> None:
    lon, lat = 113.70001, 22.80001
    near = set(cells_near(lon, lat, 50, 1000))
    for dx in (-0.0005, 0, 0.0005):
        for dy in (-0.0004, 0, 0.0004):
            if haversine_m(lon, lat, lon + dx, lat + dy) < 50:
                assert cell_of(lon + dx, lat + dy, 1000) in near
    assert 1 <= len(near) <= 4


def test_skipping_the_tracker_off_a_fence_polygon_changes_no_event_and_no_state() -> None:
    # A triangle and an L fill half their boxes or less: fixes inside a box but off its polygon skip the tracker.
    triangle = [[113.760, 22.800], [113.770, 22.800], [113.760, 22.810], [113.760, 22.800]]
    ell = [
        [113.780, 22.800],
        [113.790, 22.800],
        [113.790, 22.802],
        [113.782, 22.802],
        [113.782, 22.810],
        [113.780, 22.810],
        [113.780, 22.800],
    ]
    features = [
        {"type": "Feature", "properties": {"id": fid, **props}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
        for fid, ring, props in (("tri", triangle, {}), ("ell", ell, {"max_height_agl_m": 80}))
    ]
    airspace = Airspace.build(
        {
            "nofly": normalise_collection("nofly", collection(features[0])),
            "restricted": normalise_collection("restricted", collection(features[1])),
        },
        {},
        1,
    )
    rng = random.Random(11)
    real = airspace.tracker.track_one
    tracked = 0

    def counted(*args: Any) -> Any:
        nonlocal tracked
        tracked += 1
        return real(*args)

    airspace.tracker.track_one = counted  # type: ignore[method-assign]
    in_a_box = 0
    for walk in range(150):
        fast: dict[str, Any] = {}
        slow: dict[str, Any] = {}
        lon, lat = rng.uniform(113.755, 113.795), rng.uniform(22.795, 22.815)
        for step in range(30):
            jump = 0.004 if rng.random() < 0.1 else 0.0008
            previous = (lon, lat)
            lon = min(113.8, max(113.75, lon + rng.uniform(-jump, jump)))
            lat = min(22.82, max(22.79, lat + rng.uniform(-jump, jump)))
            height = rng.choice([-1000.0, 10.0, 60.0, 120.0])
            in_a_box += airspace._boxes.meets(
                min(lon, previous[0]), min(lat, previous[1]), max(lon, previous[0]), max(lat, previous[1])
            )
            a = airspace.track(fast, f"UAS-{walk}", "OP-1", lon, lat, height, step * 1000)
            b = real(slow, f"UAS-{walk}", "OP-1", lon, lat, height, step * 1000)
            assert a == b and fast == slow, (walk, step)
    assert tracked < in_a_box - 300  # many fixes in a fence's box, off its polygon, skipped the tracker
