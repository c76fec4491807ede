"""The load-spike detector and the energy counter aggregation, as tables of meter readings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors.energy.aggregations import energy_increments, energy_metrics
from processors.energy.detectors import LOAD_SPIKE, MIN_BASELINE_KW, load_spike_detector
from processors.energy.processor import EnergyProcessor
from processors.outcome import BatchOutcome
from streams.models import Alert, AlertStatus, Domain, EnergyReading, Severity, alert_id
from streams.settings import EnergyRules, Settings

T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
STEP = timedelta(seconds=15)
RULES = EnergyRules()  # factor 3, at least +2 kW, after 10 samples, alpha 0.1
ZONE = "changan"


def reading(power: float, i: int = 0, kwh: float = 100.0, meter_id: str = "MTR-00001") -> EnergyReading:
    return EnergyReading(
        meter_id=meter_id,
        observed_at=T0 + i * STEP,
        lat=22.850,
        lon=113.790,
        feeder_id="FDR-3",
        active_power_kw=power,
        energy_kwh=kwh,
        voltage_v=230.0,
        current_a=10.0,
        frequency_hz=50.0,
        power_factor=0.97,
    )


def run(powers: list[float], state: dict[str, Any] | None = None, rules: EnergyRules = RULES) -> list[Alert | None]:
    state = {} if state is None else state
    return [load_spike_detector(reading(p, i), state, rules, ZONE) for i, p in enumerate(powers)]


def summary(alerts: list[Alert | None]) -> list[tuple[str, int] | None]:
    return [None if a is None else (a.status.value, a.count) for a in alerts]


OPEN, RESOLVED = "open", "resolved"
STEADY = [1.0] * 10


# --- the spike lifecycle, as tables -----------------------------------------------------------


@pytest.mark.parametrize(
    ("powers", "expected"),
    [
        pytest.param([1.0] * 9 + [6.0], [None] * 10, id="too-few-samples"),
        pytest.param([*STEADY, 6.0], [None] * 10 + [(OPEN, 1)], id="spike-after-ten"),
        pytest.param(
            [*STEADY, 6.0, 6.0, 6.0, 1.0],
            [None] * 10 + [(OPEN, 1), (OPEN, 2), (OPEN, 3), (RESOLVED, 3)],
            id="sustained",
        ),
        pytest.param([*STEADY, 3.0], [None] * 11, id="at-the-limit-is-not-a-spike"),
        pytest.param([*STEADY, 3.0001], [None] * 10 + [(OPEN, 1)], id="just-above-the-limit"),
        pytest.param([*STEADY, 6.0, 2.9], [None] * 10 + [(OPEN, 1), (RESOLVED, 1)], id="below-limit-resolves"),
        pytest.param(
            [*STEADY, 6.0, 1.0, 6.0, 1.0],
            [None] * 10 + [(OPEN, 1), (RESOLVED, 1), (OPEN, 1), (RESOLVED, 1)],
            id="two-episodes",
        ),
        pytest.param([0.05] * 20 + [5.0], [None] * 21, id="tiny-baseline-never-spikes"),
        pytest.param([0.0] * 10 + [9.0], [None] * 11, id="zero-baseline-never-spikes"),
        pytest.param([-3.0] * 10 + [9.0], [None] * 11, id="exporting-meter-never-spikes"),
        pytest.param([0.1] * 10 + [2.2], [None] * 10 + [(OPEN, 1)], id="baseline-at-the-minimum-spikes"),
    ],
)
def test_spike_sequence(powers: list[float], expected: list[tuple[str, int] | None]) -> None:
    assert summary(run(powers)) == expected


@pytest.mark.parametrize(
    ("baseline", "threshold"),
    [
        (1.0, 3.0),  # max(1*3, 1+2) = 3
        (0.5, 2.5),  # the +2 kW floor wins for small loads
        (4.0, 12.0),  # the factor wins for large loads
        (10.0, 30.0),
    ],
)
def test_spike_of_six_times_the_baseline(baseline: float, threshold: float) -> None:
    state: dict[str, Any] = {}
    alerts = run([baseline] * 10 + [baseline * 6], state)
    alert = alerts[-1]
    assert alert is not None
    assert alert.expected_value == pytest.approx(baseline)
    assert alert.threshold == pytest.approx(max(baseline * 3, baseline + 2))
    assert alert.threshold == pytest.approx(threshold)
    assert alert.measured_value == baseline * 6


def test_six_times_a_small_baseline_is_under_the_two_kw_floor() -> None:
    assert summary(run([0.25] * 10 + [1.5])) == [None] * 11
    spike = run([0.25] * 10 + [2.26])[-1]
    assert spike is not None
    assert spike.threshold == 2.25


def test_spike_alert_carries_its_evidence() -> None:
    alert = run([*STEADY, 6.0])[-1]
    assert alert is not None
    assert alert.kind == LOAD_SPIKE
    assert alert.domain is Domain.energy
    assert alert.severity is Severity.medium
    assert alert.status is AlertStatus.open
    assert alert.source_id == "MTR-00001"
    assert alert.zone_id == ZONE
    assert alert.threshold_type == "UPPER"
    assert alert.unit == "kW"
    assert alert.data == {"feeder_id": "FDR-3"}
    assert alert.id == alert_id(LOAD_SPIKE, "MTR-00001", T0 + 10 * STEP)
    assert alert.first_seen == alert.last_seen == T0 + 10 * STEP
    assert alert.resolved_at is None


def test_spike_does_not_teach_the_baseline() -> None:
    state: dict[str, Any] = {}
    run(STEADY, state)
    before = dict(state)
    assert before == {"baseline_kw": 1.0, "samples": 10}
    for i in range(10, 30):
        load_spike_detector(reading(8.0, i), state, RULES, ZONE)
    assert state["baseline_kw"] == 1.0
    assert state["samples"] == 10
    assert state["open"]["count"] == 20


def test_resolves_with_the_same_id_when_power_returns() -> None:
    alerts = run([*STEADY, 6.0, 7.0, 1.2])
    opened, updated, resolved = alerts[10], alerts[11], alerts[12]
    assert opened is not None and updated is not None and resolved is not None
    assert opened.id == updated.id == resolved.id
    assert resolved.status is AlertStatus.resolved
    assert resolved.resolved_at == resolved.last_seen == T0 + 12 * STEP
    assert resolved.measured_value == 1.2
    assert resolved.count == 2


def test_normal_readings_teach_the_baseline_as_an_ewma() -> None:
    state: dict[str, Any] = {}
    run([1.0, 2.0, 2.0], state)
    assert state["baseline_kw"] == pytest.approx(1.0 + 0.1 * (2.0 - 1.0) + 0.1 * (2.0 - 1.1))
    assert state["samples"] == 3


def test_state_stays_json_serialisable() -> None:
    state: dict[str, Any] = {}
    for i, power in enumerate([*STEADY, 6.0, 1.0]):
        load_spike_detector(reading(power, i), state, RULES, ZONE)
        assert json.loads(json.dumps(state)) == state


def test_replay_from_the_same_state_yields_identical_alerts() -> None:
    powers = [*STEADY, 6.0, 6.0, 1.0, 9.0, 1.0]
    assert run(powers) == run(powers)


def test_min_baseline_is_a_tenth_of_a_kilowatt() -> None:
    assert MIN_BASELINE_KW == 0.1


# --- the counter aggregation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counters", "expected_wh"),
    [
        pytest.param([100.000], [0], id="first-reading-adds-nothing"),
        pytest.param([100.000, 100.250], [0, 250], id="steady"),
        pytest.param([100.000, 100.250, 100.250, 101.0], [0, 250, 0, 750], id="flat-then-up"),
        pytest.param([100.0, 100.25, 50.0, 50.5], [0, 250, 0, 500], id="reset-counts-from-the-new-value"),
        pytest.param([100.0, 0.0, 0.003], [0, 0, 3], id="reset-to-zero"),
        pytest.param([0.1, 0.1 + 0.2], [0, 200], id="float-artefact-0.1+0.2"),
        pytest.param([0.1 + 0.2, 0.3], [0, 0], id="equal-after-rounding"),
        pytest.param([1234.567, 1234.568, 1234.569], [0, 1, 1], id="one-wh-steps"),
        pytest.param([1e9 - 1000, 1e9], [0, 1_000_000], id="a-kwh-at-the-limit"),
        pytest.param([10.0004, 10.0008, 10.0012, 10.0016], [0, 1, 0, 1], id="sub-wh-steps-telescope"),
    ],
)
def test_energy_increments(counters: list[float], expected_wh: list[int]) -> None:
    state: dict[str, Any] = {}
    increments = [energy_increments(reading(1.0, i, kwh=kwh), state) for i, kwh in enumerate(counters)]
    assert [inc["wh"] for inc in increments] == expected_wh
    assert all(inc["n"] == 1 for inc in increments)
    assert all(type(inc["wh"]) is int for inc in increments)
    assert state == {"wh": round(counters[-1] * 1000)}


@pytest.mark.parametrize(
    ("sums", "expected"),
    [
        ({}, {}),
        ({"n": 0, "wh": 10}, {}),
        ({"n": 4, "wh": 1250}, {"energy_kwh": (1.25, "kWh"), "readings": (4.0, "readings")}),
        ({"n": 1}, {"energy_kwh": (0.0, "kWh"), "readings": (1.0, "readings")}),
        ({"n": 2, "wh": 300}, {"energy_kwh": (0.3, "kWh"), "readings": (2.0, "readings")}),
    ],
)
def test_energy_metrics(sums: dict[str, int], expected: dict[str, tuple[float, str]]) -> None:
    assert energy_metrics(sums, 0) == expected


# --- the processor ----------------------------------------------------------------------------


def test_processor_sums_energy_and_emits_the_spike() -> None:
    processor = EnergyProcessor(Settings(environment="test", energy=RULES))
    out = BatchOutcome(Domain.energy, window_s=3600)
    state: dict[str, Any] = {}
    powers = [*STEADY, 6.0, 1.0]
    for i, power in enumerate(powers):
        processor.process(reading(power, i, kwh=100.0 + 0.25 * i), ZONE, state, out)
    assert set(state) == {"counter", "load"}
    assert sum(c["n"] for c in out.sums.values()) == len(powers)
    assert sum(c["wh"] for c in out.sums.values()) == 250 * (len(powers) - 1)
    assert len(out.alerts) == 1
    (alert,) = out.alerts.values()
    assert alert.status is AlertStatus.resolved
