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
from processors.traffic.detectors import CONGESTION, congestion_detector
from processors.traffic.processor import TrafficProcessor
from streams.models import Alert, AlertStatus, Domain, Severity, TrafficReading, alert_id
from streams.settings import Settings, TrafficRules

T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
STEP = timedelta(seconds=30)
LON, LAT = 113.700, 22.850  # humen-town
ZONE = "humen-town"
RULES = TrafficRules()  # onset below 25 km/h, recovery at 40 km/h, 3 readings


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
            TrafficRules(congestion_speed_kmh=30, congestion_recover_kmh=30),
            [29, 29, 29, 30],
            [None, None, (OPEN, 3), (RESOLVED, 3)],
        ),
        (
            TrafficRules(congestion_speed_kmh=10, congestion_recover_kmh=60),
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
    assert alert.data == {"road_segment": "seg-7", "lane": 2, "occupancy": 0.6}
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
    assert increments == expected
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
    assert set(state) == {"silence", "congestion"}
    assert len(out.alerts) == 1
    (alert,) = out.alerts.values()
    assert (alert.status, alert.count) == (AlertStatus.resolved, 4)
    windows = {window_start_ms(reading(0, i).observed_ms, 60) for i in range(len(speeds))}
    assert set(out.sums) == {(60, ZONE, start) for start in windows}
    assert sum(c["n"] for c in out.sums.values()) == len(speeds)
    assert sum(c["speed_micro"] for c in out.sums.values()) == 140 * MICRO
