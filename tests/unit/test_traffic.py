"""The congestion detector and traffic window aggregation, as tables of reading sequences."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors.outcome import BatchOutcome, window_start_ms
from processors.traffic.aggregations import MICRO, traffic_increments, traffic_metrics
from processors.traffic.detectors import CONGESTION, STUCK_SENSOR, congestion_detector, stuck_detector
from processors.traffic.processor import TrafficProcessor
from streams.models import Alert, AlertStatus, Domain, Severity, TrafficReading, alert_id
from streams.settings import Settings, TrafficRules

# At the start of an hour, so a sequence stays in one hour of the learned baselines.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
STEP = timedelta(seconds=30)
LON, LAT = 113.700, 22.850  # humen-town
ZONE = "humen-town"
# The tables judge a detector without history: onset below 25 km/h, recovery at 40 km/h, 3 readings.
RULES = TrafficRules(baseline_min_samples=10_000)


def reading(speed: float, i: int = 0, sensor_id: str = "TLD-0001", vehicles: int = 10) -> TrafficReading:
    return TrafficReading(
        sensor_id=sensor_id,
        observed_at=T0 + i * STEP,
        lat=LAT,
        lon=LON,
        road_segment="seg-7",
        lane=2,
        vehicle_count=vehicles,
        avg_speed_kmh=speed,
        occupancy=0.6,
    )


def run(speeds: list[float], state: dict[str, Any] | None = None, rules: TrafficRules = RULES) -> list[Alert | None]:
    state = {} if state is None else state
    return [congestion_detector(reading(s, i), state, rules, ZONE) for i, s in enumerate(speeds)]


def summary(alerts: list[Alert | None]) -> list[tuple[str, int] | None]:
    return [None if a is None else (a.status.value, a.count) for a in alerts]


OPEN, RESOLVED = "open", "resolved"


# --- the episode lifecycle, as tables ---------------------------------------------------------


@pytest.mark.parametrize(
    ("speeds", "expected"),
    [
        pytest.param(
            [60, 20, 20, 20, 20, 50],
            [None, None, None, (OPEN, 3), (OPEN, 4), (RESOLVED, 4)],
            id="opens-at-third-slow-resolves-at-recovery",
        ),
        pytest.param([20, 20, 20], [None, None, (OPEN, 3)], id="three-slow-from-the-start"),
        pytest.param([24.99, 24.99, 24.99], [None, None, (OPEN, 3)], id="just-below-onset"),
        pytest.param([25, 25, 25, 25], [None] * 4, id="onset-speed-is-not-slow"),
        pytest.param([20, 20, 60, 20, 20], [None] * 5, id="run-interrupted-by-fast-reading"),
        pytest.param([20, 20, 30, 20, 20], [None] * 5, id="run-interrupted-by-middle-speed"),
        pytest.param([20, 20, 30, 20, 20, 20], [None] * 5 + [(OPEN, 3)], id="new-run-after-interruption"),
        pytest.param(
            [20, 20, 20, 30, 35, 39.99, 20, 40],
            [None, None, (OPEN, 3), None, None, None, (OPEN, 4), (RESOLVED, 4)],
            id="middle-speeds-neither-count-nor-resolve",
        ),
        pytest.param([20, 20, 20, 25, 25], [None, None, (OPEN, 3), None, None], id="onset-speed-while-open"),
        pytest.param([20, 20, 20, 40], [None, None, (OPEN, 3), (RESOLVED, 3)], id="recovery-speed-resolves"),
        pytest.param([0, 0, 0, 0, 0, 0], [None, None, (OPEN, 3), (OPEN, 4), (OPEN, 5), (OPEN, 6)], id="standstill"),
        pytest.param(
            [20, 20, 20, 60, 60, 20, 20, 20, 60],
            [None, None, (OPEN, 3), (RESOLVED, 3), None, None, None, (OPEN, 3), (RESOLVED, 3)],
            id="two-episodes",
        ),
        pytest.param(
            [20, 20, 20, 60, 20, 20, 60], [None, None, (OPEN, 3), (RESOLVED, 3), None, None, None], id="short-rerun"
        ),
    ],
)
def test_congestion_sequence(speeds: list[float], expected: list[tuple[str, int] | None]) -> None:
    assert summary(run(speeds)) == expected


@pytest.mark.parametrize(
    ("rules", "speeds", "expected"),
    [
        (TrafficRules(congestion_min_readings=1), [20, 60], [(OPEN, 1), (RESOLVED, 1)]),
        (TrafficRules(congestion_min_readings=5), [20, 20, 20, 20, 20], [None] * 4 + [(OPEN, 5)]),
        (
            TrafficRules(congestion_speed_kmh=30, congestion_recover_kmh=30, baseline_min_samples=100),
            [29, 29, 29, 30],
            [None, None, (OPEN, 3), (RESOLVED, 3)],
        ),
        (
            TrafficRules(congestion_speed_kmh=10, congestion_recover_kmh=60, baseline_min_samples=100),
            [20, 20, 20, 5, 5, 5, 59, 60],
            [None] * 5 + [(OPEN, 3), None, (RESOLVED, 3)],
        ),
    ],
)
def test_congestion_follows_the_rules(
    rules: TrafficRules, speeds: list[float], expected: list[tuple[str, int] | None]
) -> None:
    assert summary(run(speeds, rules=rules)) == expected


def test_one_alert_id_across_the_episode() -> None:
    alerts = [a for a in run([60, 20, 20, 20, 20, 50]) if a is not None]
    assert len(alerts) == 3
    assert len({a.id for a in alerts}) == 1
    # The episode starts at the first slow reading (index 1), not at the reading that opened it.
    assert alerts[0].id == alert_id(CONGESTION, "TLD-0001", T0 + STEP)
    assert all(a.first_seen == T0 + STEP for a in alerts)
    assert [a.last_seen for a in alerts] == [T0 + 3 * STEP, T0 + 4 * STEP, T0 + 5 * STEP]


def test_open_alert_is_not_resolved() -> None:
    opened = run([20, 20, 20])[-1]
    assert opened is not None
    assert opened.status is AlertStatus.open
    assert opened.resolved_at is None


def test_resolution_sets_status_and_time_of_the_recovering_reading() -> None:
    resolved = run([20, 20, 20, 20, 45])[-1]
    assert resolved is not None
    assert resolved.status is AlertStatus.resolved
    assert resolved.resolved_at == T0 + 4 * STEP
    assert resolved.last_seen == T0 + 4 * STEP
    assert resolved.measured_value == 45


def test_two_slow_runs_separated_by_recovery_have_distinct_ids() -> None:
    alerts = run([20, 20, 20, 60, 20, 20, 20, 60])
    first, second = alerts[2], alerts[6]
    assert first is not None and second is not None
    assert first.id != second.id
    assert alerts[3] is not None and alerts[3].id == first.id
    assert alerts[7] is not None and alerts[7].id == second.id
    assert second.first_seen == T0 + 4 * STEP


def test_sensors_do_not_share_state_or_ids() -> None:
    state_a: dict[str, Any] = {}
    state_b: dict[str, Any] = {}
    ids = set()
    for i in range(3):
        for sensor, state in (("TLD-A", state_a), ("TLD-B", state_b)):
            alert = congestion_detector(reading(10, i, sensor_id=sensor), state, RULES, ZONE)
            if alert is not None:
                ids.add(alert.id)
    assert len(ids) == 2


def test_alert_carries_its_evidence() -> None:
    alert = run([20, 20, 12.5])[-1]
    assert alert is not None
    assert alert.kind == CONGESTION
    assert alert.domain is Domain.traffic
    assert alert.severity is Severity.medium
    assert alert.source_id == "TLD-0001"
    assert alert.measured_value == 12.5
    assert alert.threshold == 25
    assert alert.threshold_type == "LOWER"
    assert alert.unit == "km/h"
    assert alert.zone_id == ZONE
    assert alert.location is not None
    assert list(alert.location.coordinates) == [LON, LAT]
    assert alert.data == {"road_segment": "seg-7", "lane": 2, "occupancy": 0.6}  # no history: no normal to cite
    assert "seg-7 lane 2" in alert.description
    assert "12.5 km/h" in alert.description


def test_replay_from_the_same_state_yields_identical_alerts() -> None:
    speeds = [60, 20, 20, 20, 30, 20, 50, 20, 20, 20, 20]
    assert run(speeds) == run(speeds)
    midway: dict[str, Any] = {}
    run(speeds[:4], state=midway)
    assert run(speeds, state=copy.deepcopy(midway)) == run(speeds, state=copy.deepcopy(midway))


def test_resumed_state_continues_the_episode() -> None:
    speeds = [20, 20, 20, 20, 20, 60]
    whole = run(speeds)
    state: dict[str, Any] = {}
    first = [congestion_detector(reading(s, i), state, RULES, ZONE) for i, s in enumerate(speeds[:3])]
    state = json.loads(json.dumps(state))  # state survives a trip through Redis JSON
    rest = [congestion_detector(reading(s, i), state, RULES, ZONE) for i, s in enumerate(speeds[3:], start=3)]
    assert first + rest == whole


def test_state_stays_json_serialisable() -> None:
    state: dict[str, Any] = {}
    for i, speed in enumerate([60, 20, 20, 20, 30, 20, 50]):
        congestion_detector(reading(speed, i), state, RULES, ZONE)
        assert json.loads(json.dumps(state)) == state


# --- what is normal for the sensor at this hour -------------------------------------------------


def flowing(speed: float, occupancy: float, at: datetime, sensor_id: str = "TLD-0009") -> TrafficReading:
    return reading(speed, 0, sensor_id).model_copy(update={"observed_at": at, "occupancy": occupancy})


def test_slow_is_judged_against_the_sensors_normal_at_that_hour() -> None:
    """A sensor whose morning rush runs at 40 km/h (occupancy 0.3) and whose nights run at 90 km/h (0.05)."""
    rules = TrafficRules()
    state: dict[str, Any] = {}
    day0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC) - timedelta(hours=8)  # local midnight, China Standard Time
    for day in range(3):
        for minute in range(0, 60, 5):
            at_rush = day0 + timedelta(days=day, hours=8, minutes=minute)
            at_night = day0 + timedelta(days=day, hours=2, minutes=minute)
            assert congestion_detector(flowing(40, 0.3, at_rush), state, rules, ZONE) is None
            assert congestion_detector(flowing(90, 0.05, at_night), state, rules, ZONE) is None
    # 35 km/h with normal occupancy is a normal rush hour; at night it is a jam (below half of 90 and dense).
    rush = day0 + timedelta(days=3, hours=8)
    assert [congestion_detector(flowing(35, 0.32, rush + i * STEP), state, rules, ZONE) for i in range(4)] == [None] * 4
    night = day0 + timedelta(days=3, hours=2)
    alerts = [congestion_detector(flowing(35, 0.4, night + i * STEP), state, rules, ZONE) for i in range(3)]
    assert alerts[:2] == [None, None] and alerts[2] is not None
    # The jam's first reading teaches its hour once (a daily jam becomes normal), so normal moved a little.
    assert alerts[2].expected_value == pytest.approx(90, abs=3)
    assert alerts[2].threshold == pytest.approx(45, abs=1.5)
    assert alerts[2].data["normal"] == "this hour of the day"
    resolved = congestion_detector(flowing(70, 0.05, night + 3 * STEP), state, rules, ZONE)
    assert resolved is not None and resolved.status is AlertStatus.resolved  # 70 >= 0.75 x 90


def test_a_jam_that_comes_every_day_at_the_same_hour_becomes_normal() -> None:
    rules = TrafficRules()
    state: dict[str, Any] = {}
    day0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC) - timedelta(hours=8)
    opened_days = []
    for day in range(8):
        for minute in range(0, 60, 5):  # free flow at 07:00
            congestion_detector(
                flowing(80, 0.08, day0 + timedelta(days=day, hours=7, minutes=minute)), state, rules, ZONE
            )
        for minute in range(0, 60, 5):  # a jam every day at 17:00
            at = day0 + timedelta(days=day, hours=17, minutes=minute)
            alert = congestion_detector(flowing(15, 0.5, at), state, rules, ZONE)
            if alert is not None and alert.status is AlertStatus.open and alert.count == rules.congestion_min_readings:
                opened_days.append(day)
        congestion_detector(flowing(80, 0.08, day0 + timedelta(days=day, hours=18)), state, rules, ZONE)
    assert opened_days[0] == 0 and len(opened_days) < 8


# --- aggregation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("speed", "vehicles", "expected"),
    [
        (50.0, 12, {"n": 1, "speed_micro": 50_000_000, "vehicles": 12}),
        (0.1 + 0.2, 0, {"n": 1, "speed_micro": 300_000, "vehicles": 0}),
        (0.0, 0, {"n": 1, "speed_micro": 0, "vehicles": 0}),
        (299.9999994, 10_000, {"n": 1, "speed_micro": 299_999_999, "vehicles": 10_000}),
    ],
)
def test_traffic_increments_are_integers(speed: float, vehicles: int, expected: dict[str, int]) -> None:
    increments = traffic_increments(reading(speed, vehicles=vehicles))
    assert increments == expected | {"occ_micro": 600_000, "cong_ms": 0, "anom_n": 0}  # occupancy 0.6, calm
    assert all(type(v) is int for v in increments.values())


def sums_of(speeds: list[float], vehicles: int = 3) -> Counter[str]:
    sums: Counter[str] = Counter()
    for speed in speeds:
        sums.update(traffic_increments(reading(speed, vehicles=vehicles)))
    return sums


@pytest.mark.parametrize(
    ("speeds", "mean"),
    [
        ([0.1 + 0.2], 0.3),
        ([0.1, 0.2], 0.15),
        ([0.1] * 10, 0.1),
        ([10.0, 20.0, 30.0], 20.0),
        ([12.345, 12.355], 12.35),
        ([33.3, 33.4, 33.5, 33.6], 33.45),
    ],
)
def test_mean_speed_is_exact(speeds: list[float], mean: float) -> None:
    metrics = traffic_metrics(sums_of(speeds), 0)
    assert metrics["avg_speed_kmh"] == (mean, "km/h")
    assert metrics["vehicle_count"] == (3.0 * len(speeds), "vehicles")
    assert metrics["readings"] == (float(len(speeds)), "readings")


def test_window_sums_are_the_same_in_any_order() -> None:
    rng = random.Random(3)
    speeds = [round(rng.uniform(0, 120), 3) for _ in range(200)]
    shuffled = speeds[:]
    rng.shuffle(shuffled)
    assert sums_of(speeds) == sums_of(shuffled)
    assert traffic_metrics(sums_of(speeds), 0) == traffic_metrics(sums_of(shuffled), 0)


@pytest.mark.parametrize("sums", [{}, {"n": 0}, {"n": 0, "speed_micro": 5, "vehicles": 3}])
def test_empty_window_has_no_metrics(sums: dict[str, int]) -> None:
    assert traffic_metrics(sums, 0) == {}


def test_micro_is_a_million() -> None:
    assert MICRO == 1_000_000


# --- the processor ----------------------------------------------------------------------------


def test_processor_adds_the_reading_to_its_window_and_emits_alerts() -> None:
    processor = TrafficProcessor(Settings(environment="test", traffic=RULES))
    out = BatchOutcome(Domain.traffic, window_s=60)
    state: dict[str, Any] = {}
    speeds = [20, 20, 20, 20, 60]
    for i, speed in enumerate(speeds):
        processor.process(reading(speed, i), ZONE, state, out)
    # TLD-0001 is not in the site table: no incident state, and no travel time among its scored series
    assert set(state) == {"silence", "congestion", "stuck", "anomaly"}
    assert set(state["anomaly"]) == {"speed", "occupancy"}
    assert len(out.alerts) == 1
    (alert,) = out.alerts.values()
    assert (alert.status, alert.count) == (AlertStatus.resolved, 4)
    windows = {window_start_ms(reading(0, i).observed_ms, 60) for i in range(len(speeds))}
    assert set(out.sums) == {(60, ZONE, start) for start in windows}
    assert sum(c["n"] for c in out.sums.values()) == len(speeds)
    assert sum(c["speed_micro"] for c in out.sums.values()) == 140 * MICRO


def test_flow_occupancy_and_congestion_minutes_of_a_window() -> None:
    sums = Counter(traffic_increments(reading(20, vehicles=12), congested_ms=30_000))
    sums.update(traffic_increments(reading(60, vehicles=18)))
    metrics = traffic_metrics(sums, 0, 900)
    assert metrics["flow_veh_h"] == (30 * 3600 / 900, "vehicles/h")
    assert metrics["occupancy"] == (0.6, "fraction")
    assert metrics["congestion_minutes"] == (0.5, "min")


def test_the_processor_counts_congested_time_per_zone_and_per_detector() -> None:
    processor = TrafficProcessor(Settings(environment="test", traffic=RULES))
    out = BatchOutcome(Domain.traffic, 60, zone_sizes=(60,), source_sizes=(900,))
    state: dict[str, Any] = {}
    for i, speed in enumerate([60, 20, 20, 20, 20, 50]):
        processor.process(reading(speed, i), ZONE, state, out)
    congested = sum(c["cong_ms"] for (size, group, _), c in out.sums.items() if size == 60)
    assert congested == 2 * 30_000  # readings 3 and 4 find the episode open (it opens at the third slow one)
    per_sensor = sum(c["cong_ms"] for (size, group, _), c in out.sums.items() if group == "sensor:TLD-0001")
    assert per_sensor == congested


# --- stuck sensor ---------------------------------------------------------------------------------


def test_a_detector_repeating_one_reading_far_longer_than_its_history_is_stuck_once_per_episode() -> None:
    rules = TrafficRules(stuck_min_readings=5, stuck_factor=3)
    state: dict[str, Any] = {}
    speeds = [50, 50, 51, 52, 52, 52, 53]  # its own history: runs of at most 3
    alerts = [stuck_detector(reading(s, i), state, rules, ZONE) for i, s in enumerate(speeds)]
    assert alerts == [None] * len(speeds) and state["longest"] == 3
    stuck = [stuck_detector(reading(40, len(speeds) + i), state, rules, ZONE) for i in range(12)]
    # 40 km/h repeated: allowed is max(5, 3 x 3) = 9 readings; the 10th opens, the rest update it.
    assert stuck[:9] == [None] * 9
    opened = [a for a in stuck if a is not None]
    assert len({a.id for a in opened}) == 1 and opened[0].status is AlertStatus.open
    assert (opened[0].kind, opened[0].measured_value, opened[0].threshold) == (STUCK_SENSOR, 10, 9)
    assert opened[-1].count == 12
    resolved = stuck_detector(reading(41, len(speeds) + 12), state, rules, ZONE)
    assert resolved is not None and resolved.status is AlertStatus.resolved and resolved.id == opened[0].id
    assert state["longest"] == 3, "a stuck run does not teach the detector's history"


def test_a_run_of_repeats_the_detector_is_known_for_is_not_stuck() -> None:
    rules = TrafficRules(stuck_min_readings=5, stuck_factor=3)
    state: dict[str, Any] = {}
    values = [0.0] * 4 + [30.0] + [0.0] * 4 + [31.0] + [0.0] * 12  # a quiet road: runs of 4 empty readings, then 12
    alerts = [stuck_detector(reading(v, i, vehicles=0), state, rules, ZONE) for i, v in enumerate(values)]
    assert alerts == [None] * len(values)
