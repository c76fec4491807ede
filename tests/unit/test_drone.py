"""The no-fly detector, drone window aggregation and the drone processor over the shipped zones."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shapely.geometry import box

from geo.zones import Zone, ZoneIndex
from processors.drone.aggregations import drone_increments, drone_metrics, is_airborne
from processors.drone.detectors import NOFLY_BREACH, nofly_detector
from processors.drone.processor import DroneProcessor
from processors.outcome import BatchOutcome, window_start_ms
from streams.models import Alert, AlertStatus, Domain, DroneStatus, DroneTelemetry, Severity, alert_id
from streams.settings import DEFAULT_ZONES_FILE, DroneRules, Settings

T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
STEP = timedelta(seconds=10)
RULES = DroneRules()
GOV = "nofly-government-centre"  # octagon of 300 m radius around (113.700, 22.755)

INSIDE = (113.700, 22.755)
INSIDE_EDGE = (113.7025, 22.755)  # ~257 m east of the centre
OUTSIDE_NEAR = (113.7040, 22.755)  # ~411 m east of the centre
OUTSIDE = (113.640, 22.900)  # shatian


@pytest.fixture(scope="module")
def index() -> ZoneIndex:
    return ZoneIndex.from_file(DEFAULT_ZONES_FILE)


def fix(
    position: tuple[float, float],
    i: int = 0,
    status: str = "airborne",
    height: float = 60.0,
    drone_id: str = "CN-UAS-0001",
) -> DroneTelemetry:
    lon, lat = position
    return DroneTelemetry(
        drone_id=drone_id,
        observed_at=T0 + i * STEP,
        lat=lat,
        lon=lon,
        altitude_m=height + 5,
        height_agl_m=height,
        speed_h_mps=8.0,
        speed_v_mps=0.0,
        heading_deg=90.0,
        status=DroneStatus(status),
        operator_id="OP-DG-001",
    )


def run(
    index: ZoneIndex, path: list[tuple[tuple[float, float], str]], state: dict[str, Any] | None = None
) -> list[list[Alert]]:
    state = {} if state is None else state
    steps = []
    for i, (position, status) in enumerate(path):
        f = fix(position, i, status)
        steps.append(nofly_detector(f, state, index.zones_at(*position, "nofly"), RULES, "binhaiwan-core"))
    return steps


def summary(steps: list[list[Alert]]) -> list[list[tuple[str, int]]]:
    return [[(a.status.value, a.count) for a in alerts] for alerts in steps]


OPEN, RESOLVED = "open", "resolved"
AIR, GROUND = "airborne", "ground"


# --- the breach lifecycle, as tables ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param([(INSIDE, GROUND)] * 3, [[], [], []], id="ground-inside"),
        pytest.param([(OUTSIDE, AIR), (OUTSIDE_NEAR, AIR)], [[], []], id="airborne-outside"),
        pytest.param(
            [(OUTSIDE_NEAR, AIR), (INSIDE_EDGE, AIR), (INSIDE, AIR), (INSIDE, AIR), (OUTSIDE_NEAR, AIR)],
            [[], [(OPEN, 1)], [(OPEN, 2)], [(OPEN, 3)], [(RESOLVED, 3)]],
            id="enter-stay-exit",
        ),
        pytest.param(
            [(INSIDE, AIR), (OUTSIDE, AIR), (OUTSIDE, AIR)], [[(OPEN, 1)], [(RESOLVED, 1)], []], id="resolve-once"
        ),
        pytest.param([(INSIDE, "emergency")], [[(OPEN, 1)]], id="emergency-counts-as-flying"),
        pytest.param([(INSIDE, "remote_id_failure")], [[(OPEN, 1)]], id="remote-id-failure-counts-as-flying"),
        pytest.param(
            [(INSIDE, GROUND), (INSIDE, AIR), (INSIDE, AIR)], [[], [(OPEN, 1)], [(OPEN, 2)]], id="takeoff-inside"
        ),
        pytest.param(
            [(INSIDE, AIR), (INSIDE, GROUND)], [[(OPEN, 1)], [(RESOLVED, 1)]], id="landing-inside-ends-the-breach"
        ),
        pytest.param(
            [(INSIDE, AIR), (OUTSIDE_NEAR, AIR), (INSIDE, AIR), (OUTSIDE_NEAR, AIR)],
            [[(OPEN, 1)], [(RESOLVED, 1)], [(OPEN, 1)], [(RESOLVED, 1)]],
            id="re-entry",
        ),
    ],
)
def test_nofly_sequence(
    index: ZoneIndex, path: list[tuple[tuple[float, float], str]], expected: list[list[tuple[str, int]]]
) -> None:
    assert summary(run(index, path)) == expected


def test_one_id_while_inside_and_a_new_id_on_re_entry(index: ZoneIndex) -> None:
    path = [(INSIDE, AIR), (INSIDE, AIR), (OUTSIDE_NEAR, AIR), (OUTSIDE_NEAR, AIR), (INSIDE, AIR), (OUTSIDE, AIR)]
    steps = run(index, path)
    first = {a.id for step in steps[:3] for a in step}
    second = {a.id for step in steps[4:] for a in step}
    assert len(first) == 1
    assert len(second) == 1
    assert first != second
    assert first == {alert_id(NOFLY_BREACH, "CN-UAS-0001", T0, GOV)}
    assert second == {alert_id(NOFLY_BREACH, "CN-UAS-0001", T0 + 4 * STEP, GOV)}


def test_breach_alert_carries_its_evidence(index: ZoneIndex) -> None:
    (alert,) = run(index, [(INSIDE, AIR)])[0]
    assert alert.kind == NOFLY_BREACH
    assert alert.domain is Domain.drone
    assert alert.severity is Severity.critical
    assert alert.status is AlertStatus.open
    assert alert.source_id == "CN-UAS-0001"
    assert alert.zone_id == "binhaiwan-core"
    assert alert.data == {
        "nofly_zone_id": GOV,
        "operator_id": "OP-DG-001",
        "status": "airborne",
        "fence_id": GOV,
        "fence_kind": "no_fly",
        "fence_name": "Binhaiwan New Area Administrative Centre",
    }
    assert alert.measured_value == 60.0
    assert alert.threshold == 0.0
    assert alert.threshold_type == "UPPER"
    assert alert.unit == "m AGL"
    assert alert.location is not None
    assert list(alert.location.coordinates) == list(INSIDE)
    assert alert.first_seen == alert.last_seen == T0
    assert alert.resolved_at is None


def test_exit_resolves_with_the_time_of_the_exit_fix(index: ZoneIndex) -> None:
    steps = run(index, [(INSIDE, AIR), (INSIDE, AIR), (OUTSIDE_NEAR, AIR)])
    (resolved,) = steps[2]
    assert resolved.status is AlertStatus.resolved
    assert resolved.resolved_at == resolved.last_seen == T0 + 2 * STEP
    assert resolved.first_seen == T0
    assert resolved.data["nofly_zone_id"] == GOV


def test_state_is_empty_after_exit_and_json_serialisable(index: ZoneIndex) -> None:
    state: dict[str, Any] = {}
    run(index, [(INSIDE, AIR)], state)
    assert json.loads(json.dumps(state)) == state
    assert list(state["open"]) == [GOV]
    run(index, [(OUTSIDE, AIR)], state)
    assert state == {"open": {}}


def test_replay_from_the_same_state_yields_identical_alerts(index: ZoneIndex) -> None:
    path = [(OUTSIDE_NEAR, AIR), (INSIDE, AIR), (INSIDE_EDGE, AIR), (OUTSIDE_NEAR, AIR), (INSIDE, AIR)]
    assert run(index, path) == run(index, path)


# --- floor and ceiling ------------------------------------------------------------------------

SQUARE = box(113.70, 22.80, 113.71, 22.81)
IN_SQUARE = (113.705, 22.805)


@pytest.mark.parametrize(
    ("floor_m", "ceiling_m", "height", "breach"),
    [
        (50.0, None, 30.0, False),
        (50.0, None, 49.9, False),
        (50.0, None, 50.0, True),
        (50.0, None, 80.0, True),
        (None, 120.0, 150.0, False),
        (None, 120.0, 120.0, True),
        (50.0, 120.0, 100.0, True),
        (50.0, 120.0, 10.0, False),
        (None, None, 0.0, True),
    ],
)
def test_breach_only_between_floor_and_ceiling(
    floor_m: float | None, ceiling_m: float | None, height: float, breach: bool
) -> None:
    zone = Zone("nofly-tower", "Tower", "nofly", SQUARE, floor_m=floor_m, ceiling_m=ceiling_m)
    alerts = nofly_detector(fix(IN_SQUARE, height=height), {}, [zone], RULES, None)
    assert len(alerts) == int(breach)
    if breach:
        assert alerts[0].threshold == (floor_m or 0.0)
        assert alerts[0].measured_value == height
        assert alerts[0].data["nofly_zone_id"] == "nofly-tower"


def test_climbing_above_the_ceiling_resolves() -> None:
    zone = Zone("nofly-tower", "Tower", "nofly", SQUARE, floor_m=50.0, ceiling_m=120.0)
    state: dict[str, Any] = {}
    heights = [30.0, 60.0, 100.0, 130.0]
    statuses = [
        [(a.status.value, a.count) for a in nofly_detector(fix(IN_SQUARE, i, height=h), state, [zone], RULES, None)]
        for i, h in enumerate(heights)
    ]
    assert statuses == [[], [(OPEN, 1)], [(OPEN, 2)], [(RESOLVED, 2)]]


def test_two_overlapping_zones_raise_two_alerts() -> None:
    zones = [
        Zone("nofly-a", "A", "nofly", SQUARE),
        Zone("nofly-b", "B", "nofly", SQUARE.buffer(0.001), floor_m=20.0),
    ]
    alerts = nofly_detector(fix(IN_SQUARE), {}, zones, RULES, None)
    assert [a.data["nofly_zone_id"] for a in alerts] == ["nofly-a", "nofly-b"]
    assert len({a.id for a in alerts}) == 2
    assert [a.threshold for a in alerts] == [0.0, 20.0]


def test_statuses_come_from_the_rules() -> None:
    zone = Zone("nofly-a", "A", "nofly", SQUARE)
    only_emergency = DroneRules(nofly_statuses=["emergency"])
    assert nofly_detector(fix(IN_SQUARE, status="airborne"), {}, [zone], only_emergency, None) == []
    assert len(nofly_detector(fix(IN_SQUARE, status="emergency"), {}, [zone], only_emergency, None)) == 1


# --- aggregation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "airborne"),
    [("ground", False), ("airborne", True), ("emergency", True), ("remote_id_failure", True)],
)
def test_is_airborne(status: str, airborne: bool) -> None:
    assert is_airborne(fix(OUTSIDE, status=status)) is airborne
    assert drone_increments(fix(OUTSIDE, status=status)) == {"n": 1}


@pytest.mark.parametrize(
    ("sums", "distinct", "expected"),
    [
        ({}, 0, {}),
        ({"n": 0}, 3, {}),
        (
            {"n": 7},
            2,
            {"drones_airborne": (2.0, "drones"), "fixes": (7.0, "fixes"), "violations": (0.0, "alerts")},
        ),
        (
            {"n": 4, "violations": 3},
            0,
            {"drones_airborne": (0.0, "drones"), "fixes": (4.0, "fixes"), "violations": (3.0, "alerts")},
        ),
    ],
)
def test_drone_metrics(sums: dict[str, int], distinct: int, expected: dict[str, tuple[float, str]]) -> None:
    assert drone_metrics(sums, distinct) == expected


# --- the processor over the shipped zones -----------------------------------------------------

# West to east along lat 22.755: outside, outside, three fixes inside the octagon, outside, outside.
CROSSING = [(lon, 22.755) for lon in (113.690, 113.695, 113.699, 113.700, 113.701, 113.705, 113.710)]


def test_processor_over_a_crossing(index: ZoneIndex) -> None:
    processor = DroneProcessor(Settings(environment="test", drone=RULES), index)
    out = BatchOutcome(Domain.drone, window_s=60)
    state: dict[str, Any] = {}
    inside = []
    for i, position in enumerate(CROSSING):
        district = index.district_at(*position)
        assert district is not None
        inside.append(bool(index.zones_at(*position, "nofly")))
        processor.process(fix(position, i), district.id, state, out)
    assert inside == [False, False, True, True, True, False, False]
    assert len(out.alerts) == 1
    (alert,) = out.alerts.values()
    assert alert.id == alert_id(NOFLY_BREACH, "CN-UAS-0001", T0 + 2 * STEP, GOV)
    assert (alert.status, alert.count) == (AlertStatus.resolved, 3)
    assert alert.data["nofly_zone_id"] == GOV
    assert out.members
    assert all(members == {"CN-UAS-0001"} for members in out.members.values())
    assert {(size, zone) for size, zone, _ in out.members} == {(60, "binhaiwan-core")}
    assert sum(c["n"] for c in out.sums.values()) == len(CROSSING)
    windows = {window_start_ms(fix(p, i).observed_ms, 60) for i, p in enumerate(CROSSING)}
    assert set(out.sums) == {(60, "binhaiwan-core", start) for start in windows}


def test_processor_counts_a_ground_drone_as_a_fix_not_a_member(index: ZoneIndex) -> None:
    processor = DroneProcessor(Settings(environment="test", drone=RULES), index)
    out = BatchOutcome(Domain.drone, window_s=60)
    processor.process(fix(INSIDE, status="ground"), "binhaiwan-core", {}, out)
    assert out.alerts == {}
    assert out.members == {}
    assert list(out.sums.values()) == [{"n": 1}]
