"""The load-spike detector and the energy counter aggregation, as tables of meter readings."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from processors.baselines import hour_of_week
from processors.energy.aggregations import counter_step, energy_increments, energy_metrics
from processors.energy.detectors import (
    COUNTER_FAULT,
    FREQUENCY_DEVIATION,
    LOAD_SPIKE,
    LOW_POWER_FACTOR,
    MIN_BASELINE_KW,
    VOLTAGE_SAG,
    VOLTAGE_SWELL,
    frequency_detector,
    load_spike_detector,
    power_factor_detector,
    voltage_detector,
)
from processors.energy.processor import EnergyProcessor
from processors.outcome import BatchOutcome
from streams.models import Alert, AlertStatus, Domain, EnergyReading, Severity, alert_id
from streams.settings import EnergyRules, Settings
from tests.support.events import valid_value

# At the start of an hour, so a sequence stays in one hour of the learned baselines.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
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
    assert alert.data["feeder_id"] == "FDR-3"
    assert alert.data["baseline"] in ("this hour of the week", "this hour of the day", "its readings so far")
    assert alert.id == alert_id(LOAD_SPIKE, "MTR-00001", T0 + 10 * STEP)
    assert alert.first_seen == alert.last_seen == T0 + 10 * STEP
    assert alert.resolved_at is None


def test_spike_does_not_teach_the_overall_baseline() -> None:
    state: dict[str, Any] = {}
    run(STEADY, state)
    assert (state["baseline_kw"], state["samples"]) == (1.0, 10)
    for i in range(10, 30):
        load_spike_detector(reading(8.0, i), state, RULES, ZONE)
    assert (state["baseline_kw"], state["samples"]) == (1.0, 10)
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
    assert state["wh"] == round(counters[-1] * 1000)


def _kwh(kwh: float, n: int) -> dict[str, tuple[float, str]]:
    return {"energy_kwh": (kwh, "kWh"), "readings": (float(n), "readings")}


@pytest.mark.parametrize(
    ("sums", "expected"),
    [
        ({}, {}),
        ({"n": 0, "wh": 10}, {}),
        (
            {"n": 4, "wh": 1250, "mv": 880_400, "max_w": 3250},
            {**_kwh(1.25, 4), "peak_kw": (3.25, "kW"), "mean_voltage_v": (220.1, "V")},
        ),
        ({"n": 1, "mv": 219_900, "max_w": 0}, {**_kwh(0.0, 1), "peak_kw": (0.0, "kW"), "mean_voltage_v": (219.9, "V")}),
        (
            {"n": 2, "wh": 300, "mv": 460_001, "max_w": -1500},
            {**_kwh(0.3, 2), "peak_kw": (-1.5, "kW"), "mean_voltage_v": (230.0005, "V")},
        ),
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
        processor.process(reading(power, i, kwh=100.0 + 0.004 * i), ZONE, state, out)
    assert set(state) == {"silence", "supply", "counter", "load", "voltage", "frequency", "power_factor"}
    assert sum(c["n"] for c in out.sums.values()) == len(powers)
    assert sum(c["wh"] for c in out.sums.values()) == 4 * (len(powers) - 1)
    assert len(out.alerts) == 1
    (alert,) = out.alerts.values()
    assert alert.status is AlertStatus.resolved


# --- power quality: voltage, frequency, power factor ------------------------------------------


def meter_reading(
    i: int,
    volts: float = 220.0,
    hz: float = 50.0,
    pf: float = 0.97,
    kw: float = 1.0,
    kwh: float = 100.0,
    step: timedelta = STEP,
) -> EnergyReading:
    return EnergyReading(
        meter_id="MTR-00002",
        observed_at=T0 + i * step,
        lat=22.850,
        lon=113.790,
        feeder_id="FDR-3",
        active_power_kw=kw,
        energy_kwh=kwh,
        voltage_v=volts,
        current_a=5.0,
        frequency_hz=hz,
        power_factor=pf,
    )


Detector = Callable[[EnergyReading, dict[str, Any], EnergyRules, str | None], list[Alert]]
Step = list[tuple[str, str, int]]


def run_quality(detector: Detector, readings: list[EnergyReading], rules: EnergyRules = RULES) -> list[Step]:
    state: dict[str, Any] = {}
    out = []
    for r in readings:
        out.append([(a.kind, a.status.value, a.count) for a in detector(r, state, rules, ZONE)])
        assert json.loads(json.dumps(state)) == state
    return out


def volts(values: list[float], rules: EnergyRules = RULES) -> list[Step]:
    return run_quality(voltage_detector, [meter_reading(i, volts=v) for i, v in enumerate(values)], rules)


SAG, SWELL = VOLTAGE_SAG, VOLTAGE_SWELL


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param([220, 190, 190, 220], [[]] * 4, id="20s-dip-shorter-than-the-minimum"),
        pytest.param([220] + [190] * 4 + [220], [[]] * 6, id="45s-sag-is-still-too-short"),
        pytest.param(
            [220] + [190] * 8 + [220],
            [[]] * 5 + [[(SAG, OPEN, 5)], [(SAG, OPEN, 6)], [(SAG, OPEN, 7)], [(SAG, OPEN, 8)], [(SAG, RESOLVED, 8)]],
            id="2-minute-sag-opens-at-60s-and-resolves",
        ),
        pytest.param([240] * 5 + [230], [[]] * 4 + [[(SWELL, OPEN, 5)], [(SWELL, RESOLVED, 5)]], id="swell"),
        pytest.param([198.0] * 6 + [235.4] * 6, [[]] * 12, id="band-edges-are-inside"),
        pytest.param([197.9] * 5, [[]] * 4 + [[(SAG, OPEN, 5)]], id="just-below-the-band"),
        pytest.param([235.5] * 5, [[]] * 4 + [[(SWELL, OPEN, 5)]], id="just-above-the-band"),
        pytest.param([0.0] * 10, [[]] * 10, id="interruption-is-no-sag"),
        pytest.param([10.9] * 10, [[]] * 10, id="below-5pct-is-an-interruption"),
        pytest.param([11.1] * 5, [[]] * 4 + [[(SAG, OPEN, 5)]], id="above-5pct-is-a-deep-sag"),
        pytest.param(
            [190] * 5 + [0.0] + [190] * 2,
            [[]] * 4 + [[(SAG, OPEN, 5)], [(SAG, RESOLVED, 5)], [], []],
            id="interruption-ends-a-sag",
        ),
        pytest.param([190] * 3 + [240] * 3 + [190] * 3, [[]] * 9, id="alternating-short-runs-never-add-up"),
        pytest.param(
            [240] * 5 + [190] * 5,
            [[]] * 4 + [[(SWELL, OPEN, 5)], [(SWELL, RESOLVED, 5)], [], [], [], [(SAG, OPEN, 5)]],
            id="swell-into-sag-is-two-episodes",
        ),
    ],
)
def test_voltage_sequence(values: list[float], expected: list[Step]) -> None:
    assert volts(values) == expected


def test_a_zero_minimum_duration_alerts_on_the_first_reading_and_can_close_and_open_at_once() -> None:
    rules = EnergyRules(voltage_min_duration_s=0)
    assert volts([240, 190, 220], rules) == [
        [(SWELL, OPEN, 1)],
        [(SWELL, RESOLVED, 1), (SAG, OPEN, 1)],
        [(SAG, RESOLVED, 1)],
    ]


@pytest.mark.parametrize(
    ("value", "gbt", "en"),
    [
        (220.0, [], []),
        (205.0, [], [(SAG, OPEN, 5)]),  # 198 V <= 205 V, but below 207 V (230 V - 10 %)
        (197.0, [(SAG, OPEN, 5)], [(SAG, OPEN, 5)]),
        (240.0, [(SWELL, OPEN, 5)], []),  # above 235.4 V, below 253 V
        (254.0, [(SWELL, OPEN, 5)], [(SWELL, OPEN, 5)]),
    ],
)
def test_en50160_preset_moves_the_band(value: float, gbt: Step, en: Step) -> None:
    assert volts([value] * 5)[-1] == gbt
    assert volts([value] * 5, EnergyRules.en50160())[-1] == en


def test_the_preset_is_a_setting_and_explicit_values_win(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RULES.voltage_band_v == pytest.approx((198.0, 235.4))
    assert EnergyRules.en50160().voltage_band_v == pytest.approx((207.0, 253.0))
    monkeypatch.setenv("CITY_ENERGY__VOLTAGE_PRESET", "en50160")
    monkeypatch.setenv("CITY_ENERGY__VOLTAGE_UPPER_PCT", "6")
    rules = Settings(environment="test").energy
    assert (rules.nominal_voltage_v, rules.voltage_lower_pct, rules.voltage_upper_pct) == (230.0, 10.0, 6.0)


def test_sag_alert_carries_its_evidence() -> None:
    state: dict[str, Any] = {}
    alerts = [voltage_detector(meter_reading(i, volts=v), state, RULES, ZONE) for i, v in enumerate([220] + [187] * 5)]
    (alert,) = alerts[-1]
    assert alert.id == alert_id(VOLTAGE_SAG, "MTR-00002", T0 + STEP)
    assert alert.first_seen == T0 + STEP and alert.last_seen == T0 + 5 * STEP
    assert (alert.measured_value, alert.expected_value, alert.threshold) == (187.0, 220.0, 198.0)
    assert (alert.threshold_type, alert.unit, alert.severity) == ("LOWER", "V", Severity.medium)
    swell = volts([240] * 5)[-1]
    assert swell == [(SWELL, OPEN, 5)]


def hz(values: list[float], volts_: float = 220.0) -> list[Step]:
    readings = [meter_reading(i, volts=volts_, hz=v) for i, v in enumerate(values)]
    return run_quality(frequency_detector, readings)


FREQ = FREQUENCY_DEVIATION


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param([50.25, 50.0], [[], []], id="one-reading-is-shorter-than-10s"),
        pytest.param([50.25, 50.25, 50.0], [[], [(FREQ, OPEN, 2)], [(FREQ, RESOLVED, 2)]], id="high"),
        pytest.param([49.7] * 3, [[], [(FREQ, OPEN, 2)], [(FREQ, OPEN, 3)]], id="low"),
        pytest.param([50.2, 49.8, 50.2], [[]] * 3, id="band-edges-are-inside"),
        pytest.param(
            [50.3, 50.3, 49.7, 49.7],
            [[], [(FREQ, OPEN, 2)], [(FREQ, RESOLVED, 2)], [(FREQ, OPEN, 2)]],
            id="high-into-low-is-two-episodes",
        ),
    ],
)
def test_frequency_sequence(values: list[float], expected: list[Step]) -> None:
    assert hz(values) == expected


def test_frequency_is_ignored_during_an_interruption() -> None:
    assert hz([0.0] * 4, volts_=0.0) == [[]] * 4
    state: dict[str, Any] = {}
    frequency_detector(meter_reading(0, hz=50.5), state, RULES, ZONE)
    before = json.loads(json.dumps(state))
    assert frequency_detector(meter_reading(1, volts=3.0, hz=0.0), state, RULES, ZONE) == []
    assert state == before


def test_frequency_alert_evidence_names_the_side() -> None:
    state: dict[str, Any] = {}
    frequency_detector(meter_reading(0, hz=49.6), state, RULES, ZONE)
    (alert,) = frequency_detector(meter_reading(1, hz=49.6), state, RULES, ZONE)
    assert (alert.threshold, alert.threshold_type, alert.unit) == (pytest.approx(49.8), "LOWER", "Hz")
    assert alert.expected_value == 50.0


FIVE_MIN = timedelta(minutes=5)
PF = LOW_POWER_FACTOR


@pytest.mark.parametrize(
    ("pfs", "kws", "expected"),
    [
        pytest.param([0.8] * 4, [1.0] * 4, [[]] * 3 + [[(PF, OPEN, 4)]], id="15-minutes-under-load"),
        pytest.param([0.8] * 3 + [0.9], [1.0] * 4, [[]] * 4, id="10-minutes-is-too-short"),
        pytest.param([0.8] * 4, [0.3] * 4, [[]] * 4, id="no-load-no-alert"),
        pytest.param([0.8] * 4, [0.5] * 4, [[]] * 3 + [[(PF, OPEN, 4)]], id="load-at-the-minimum-counts"),
        pytest.param([-0.8] * 4, [1.0] * 4, [[]] * 3 + [[(PF, OPEN, 4)]], id="negative-pf-is-judged-by-size"),
        pytest.param([0.85] * 4, [1.0] * 4, [[]] * 4, id="at-the-minimum-is-fine"),
        pytest.param(
            [0.8] * 5 + [0.8],
            [1.0] * 5 + [0.2],
            [[]] * 3 + [[(PF, OPEN, 4)], [(PF, OPEN, 5)], [(PF, RESOLVED, 5)]],
            id="light-load-resolves",
        ),
        pytest.param([0.8] * 2 + [0.8] + [0.8] * 2, [1.0] * 2 + [0.1] + [1.0] * 2, [[]] * 5, id="idle-breaks-the-run"),
    ],
)
def test_power_factor_sequence(pfs: list[float], kws: list[float], expected: list[Step]) -> None:
    readings = [meter_reading(i, pf=p, kw=k, step=FIVE_MIN) for i, (p, k) in enumerate(zip(pfs, kws, strict=True))]
    assert run_quality(power_factor_detector, readings) == expected


# --- counter faults through the processor: alerts and exact Wh ------------------------------


def process(readings: list[EnergyReading], rules: EnergyRules = RULES) -> tuple[list[list[Alert]], list[int]]:
    processor = EnergyProcessor(Settings(environment="test", energy=rules))
    state: dict[str, Any] = {}
    alerts, wh = [], []
    for r in readings:
        out = BatchOutcome(Domain.energy, window_s=60)
        processor.process(r, ZONE, state, out)
        alerts.append(list(out.alerts.values()))
        wh.append(sum(c["wh"] for c in out.sums.values()))
    return alerts, wh


@pytest.mark.parametrize(
    ("counters", "kws", "faults", "expected_wh"),
    [
        pytest.param([100.0, 100.004, 100.008], [1.0] * 3, [None] * 3, [0, 4, 4], id="steady"),
        pytest.param(
            [100.0, 100.004, 50.0, 50.004, 50.008],
            [1.0] * 5,
            [None, None, "reset", None, None],
            [0, 4, 0, 4, 4],
            id="reset-once-then-counts-on",
        ),
        pytest.param([100.0, 100.004, 150.0, 150.004], [1.0] * 4, [None, None, "jump", None], [0, 4, 0, 4], id="jump"),
        # 1 kW for 15 s allows 2 x 4.17 Wh + 10 Wh = 18.3 Wh
        pytest.param([100.0, 100.018], [1.0] * 2, [None, None], [0, 18], id="within-the-allowance"),
        pytest.param([100.0, 100.019], [1.0] * 2, [None, "jump"], [0, 0], id="just-beyond-the-allowance"),
        pytest.param([100.0, 100.09], [1.0, 10.0], [None, None], [0, 90], id="the-higher-power-counts"),
        pytest.param([100.0, 100.09], [10.0, 1.0], [None, None], [0, 90], id="either-side"),
        pytest.param([100.0, 100.011], [-3.0] * 2, [None, "jump"], [0, 0], id="an-exporting-meter-gets-tolerance-only"),
    ],
)
def test_counter_faults_are_reported_once_and_add_nothing(
    counters: list[float], kws: list[float], faults: list[str | None], expected_wh: list[int]
) -> None:
    readings = [meter_reading(i, kw=k, kwh=c) for i, (c, k) in enumerate(zip(counters, kws, strict=True))]
    alerts, wh = process(readings)
    assert wh == expected_wh
    assert [[a.data.get("fault") for a in batch] or [None] for batch in alerts] == [[f] for f in faults]
    for batch in alerts:
        for alert in batch:
            assert alert.kind == COUNTER_FAULT
            assert (alert.status, alert.count, alert.severity) == (AlertStatus.resolved, 1, Severity.high)
            assert alert.first_seen == alert.last_seen == alert.resolved_at


def test_counter_fault_evidence() -> None:
    alerts, _ = process([meter_reading(0, kwh=100.0), meter_reading(1, kwh=50.0)])
    (reset,) = alerts[1]
    assert (reset.measured_value, reset.expected_value, reset.threshold_type, reset.unit) == (
        50.0,
        100.0,
        "LOWER",
        "kWh",
    )
    assert reset.id == alert_id(COUNTER_FAULT, "MTR-00002", T0 + STEP)
    alerts, _ = process([meter_reading(0, kwh=100.0), meter_reading(1, kwh=101.0)])
    (jump,) = alerts[1]
    assert jump.measured_value == 1.0 and jump.threshold_type == "UPPER"
    assert jump.threshold == pytest.approx((1.0 * 15_000 / 3600 * 2 + 10) / 1000)


def test_a_state_from_before_the_jump_check_skips_it_once() -> None:
    state: dict[str, Any] = {"wh": 100_000}
    assert counter_step(meter_reading(0, kwh=150.0), state, RULES).fault is None
    assert counter_step(meter_reading(1, kwh=200.0), state, RULES).fault == "jump"


def test_processor_window_carries_peak_power_and_voltage_of_every_reading() -> None:
    processor = EnergyProcessor(Settings(environment="test", energy=RULES))
    out = BatchOutcome(Domain.energy, window_s=60)
    state: dict[str, Any] = {}
    for i, (kw, v) in enumerate([(1.25, 220.1), (3.5, 219.9), (2.0, 221.0)]):
        processor.process(meter_reading(i, volts=v, kw=kw, kwh=100 + i * 0.004), ZONE, state, out)
    processor.process(meter_reading(1, volts=222.0, kw=4.0, kwh=100.002), ZONE, state, out, detect=False)
    ((sums,),) = [list(out.sums.values())]
    assert dict(sums) == {"n": 4, "wh": 8, "mv": 220_100 + 219_900 + 221_000 + 222_000}
    assert list(out.maxima.values()) == [{"max_w": 4000}]
    metrics = energy_metrics(sums | out.maxima[next(iter(out.maxima))], 0)
    assert metrics["peak_kw"] == (4.0, "kW")
    assert metrics["mean_voltage_v"] == (pytest.approx(220.75), "V")


def test_normal_is_learned_per_hour_so_the_evening_peak_is_not_a_spike_but_the_same_load_at_night_is() -> None:
    """A household drawing 5 kW every evening at 19:00 and 0.5 kW otherwise, read hourly for five days."""
    state: dict[str, Any] = {}
    monday = datetime(2026, 11, 23, 0, 0, tzinfo=timezone(timedelta(hours=8)))

    def at(hours: int, power: float) -> Alert | None:
        when = monday + timedelta(hours=hours)
        value = valid_value(Domain.energy, meter_id="MTR-HOME", observed_at=when.isoformat(), active_power_kw=power)
        return load_spike_detector(EnergyReading.model_validate(value), state, RULES, ZONE)

    alerts = [(h, at(h, 5.0 if h % 24 == 19 else 0.5)) for h in range(5 * 24)]
    raised = sorted({h // 24 for h, a in alerts if a is not None and a.status is AlertStatus.open})
    assert raised == [0, 1, 2, 3], "the first evenings are spikes, until 19:00 has its own baseline"
    evening = at(5 * 24 + 19, 5.2)
    assert evening is None, "5.2 kW at 19:00 is this meter's normal evening"
    night = at(5 * 24 + 3, 5.2)
    assert night is not None and night.status is AlertStatus.open
    assert night.expected_value == pytest.approx(0.5) and night.data["baseline"] == "this hour of the day"
    assert hour_of_week(int(monday.timestamp() * 1000), 8.0) == 0
