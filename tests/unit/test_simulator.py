"""The simulator: deterministic, schema-valid, realistic, and it triggers every detector early."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from citystream.simulator import CitySimulator, SimSize, run_simulation, size_for_rate
from citystream.simulator.energy import FEEDER_OUTAGE, METER_OFFLINE, SHORT_VOLTAGE_DIP
from geo.zones import ZoneIndex
from processors.drone.detectors import NOFLY_BREACH, nofly_detector
from processors.energy.detectors import (
    COUNTER_FAULT,
    FREQUENCY_DEVIATION,
    LOAD_SPIKE,
    LOW_POWER_FACTOR,
    VOLTAGE_SAG,
    VOLTAGE_SWELL,
    load_spike_detector,
)
from processors.energy.feeder import feeder_step
from processors.energy.processor import EnergyProcessor
from processors.outcome import BatchOutcome
from processors.traffic.detectors import CONGESTION, INCIDENT, congestion_detector
from streams.models import MODEL_BY_DOMAIN, Alert, AlertStatus, Domain, DroneTelemetry, EnergyReading, TrafficReading
from streams.settings import DEFAULT_ZONES_FILE, DroneRules, EnergyRules, Settings, TrafficRules

SHANGHAI = timezone(timedelta(hours=8))
TEN_MINUTES = timedelta(minutes=10)
SEEDS = (0, 1, 7, 42)
QUALITY_KINDS = {VOLTAGE_SAG, VOLTAGE_SWELL, FREQUENCY_DEVIATION, LOW_POWER_FACTOR, COUNTER_FAULT, SHORT_VOLTAGE_DIP}

Events = list[tuple[str, str, dict[str, Any]]]


@pytest.fixture(scope="module")
def zones() -> ZoneIndex:
    """Load the pilot area's zones."""
    return ZoneIndex.from_file(DEFAULT_ZONES_FILE)


@pytest.fixture(scope="module")
def start() -> datetime:
    """Return a start 15 minutes ago, so ten simulated minutes are all in the past."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=15)


@pytest.fixture(scope="module", params=SEEDS)
def run(request: pytest.FixtureRequest, zones: ZoneIndex, start: datetime) -> tuple[CitySimulator, Events]:
    """Return a simulator and its first ten simulated minutes of events."""
    sim = CitySimulator(zones, seed=request.param, start=start)
    return sim, sim.events_between(start, start + TEN_MINUTES)


SOURCE_FIELD = {"traffic": "sensor_id", "drone": "drone_id", "energy": "meter_id"}


def _by_source(events: Events, domain: str) -> dict[str, list[dict[str, Any]]]:
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event_domain, _, value in events:
        if event_domain == domain:
            series[value[SOURCE_FIELD[domain]]].append(value)
    return series


def _parsed(events: Events, domain: Domain) -> list[Any]:
    return [MODEL_BY_DOMAIN[domain].model_validate(value) for d, _, value in events if d == domain]


def _last_local(hour: int) -> datetime:
    """Return the latest past instant that was `hour`:00 in Dongguan."""
    now = datetime.now(UTC).astimezone(SHANGHAI)
    moment = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return (moment if moment <= now else moment - timedelta(days=1)).astimezone(UTC)


def test_same_seed_gives_identical_events_and_another_seed_does_not(zones: ZoneIndex, start: datetime) -> None:
    window = (start, start + timedelta(minutes=3))
    first = CitySimulator(zones, seed=5, start=start).events_between(*window)
    again = CitySimulator(zones, seed=5, start=start).events_between(*window)
    other = CitySimulator(zones, seed=6, start=start).events_between(*window)
    assert first == again
    assert first != other


def test_events_do_not_depend_on_how_time_is_chunked(zones: ZoneIndex, start: datetime) -> None:
    whole = CitySimulator(zones, seed=3, start=start).events_between(start, start + timedelta(minutes=4))
    sim = CitySimulator(zones, seed=3, start=start)
    cuts = [start + timedelta(seconds=s) for s in (0, 0.5, 7.25, 61, 61.001, 200, 240)]
    chunked = [event for t0, t1 in itertools.pairwise(cuts) for event in sim.events_between(t0, t1)]
    assert chunked == whole
    assert sim.events_between(start + timedelta(minutes=1), start + timedelta(minutes=2)) == [
        e
        for e in whole
        if start + timedelta(minutes=1) <= datetime.fromisoformat(e[2]["observed_at"]) < start + timedelta(minutes=2)
    ]


def test_every_event_validates_is_keyed_as_producers_key_it_and_sorted(run: tuple[CitySimulator, Events]) -> None:
    sim, events = run
    times = []
    for domain, key, value in events:
        event = MODEL_BY_DOMAIN[Domain(domain)].model_validate(value)
        assert event.partition_key == key  # traffic by road segment, drones and meters by their own id
        assert key == (event.road_segment if isinstance(event, TrafficReading) else event.source_id)
        assert sim.start <= event.observed_at < sim.start + TEN_MINUTES
        times.append(event.observed_at)
    assert times == sorted(times)
    assert {d for d, _, _ in events} == {"traffic", "drone", "energy"}
    size = SimSize()
    assert len(_by_source(events, "traffic")) == size.traffic_sensors
    assert len(_by_source(events, "energy")) == size.meters
    assert len(_by_source(events, "drone")) == size.drones


def test_readings_come_at_each_domains_interval(run: tuple[CitySimulator, Events]) -> None:
    sim, events = run
    silent = {i.source for i in sim.injected if i.kind == METER_OFFLINE}
    for domain, interval_s in (("traffic", 30), ("energy", 15)):
        for source, series in _by_source(events, domain).items():
            stamps = [datetime.fromisoformat(v["observed_at"]) for v in series]
            if source in silent:  # the meter injected silent from minute 9: readings up to then only
                assert {b - a for a, b in itertools.pairwise(stamps)} == {timedelta(seconds=interval_s)}
                assert 540 // interval_s <= len(series) <= 540 // interval_s + 1
                continue
            assert {b - a for a, b in itertools.pairwise(stamps)} == {timedelta(seconds=interval_s)}
            assert len(series) == 600 // interval_s


def test_an_airborne_drone_is_inside_a_nofly_zone_within_the_first_minute(
    run: tuple[CitySimulator, Events], zones: ZoneIndex
) -> None:
    sim, events = run
    fixes = [f for f in _parsed(events, Domain.drone) if f.observed_at < sim.start + timedelta(seconds=60)]
    assert any(f.status == "airborne" and zones.zones_at(f.lon, f.lat, "nofly") for f in fixes)


def test_at_least_three_drones_breach_and_the_detector_raises_each(
    run: tuple[CitySimulator, Events], zones: ZoneIndex
) -> None:
    sim, events = run
    states: dict[str, dict[str, Any]] = defaultdict(dict)
    opened: dict[str, datetime] = {}
    for fix in _parsed(events, Domain.drone):
        nofly = zones.zones_at(fix.lon, fix.lat, "nofly")
        for alert in nofly_detector(fix, states[fix.drone_id], nofly, DroneRules(), None):
            assert alert.kind == NOFLY_BREACH
            opened.setdefault(alert.source_id, alert.first_seen)
    assert len(opened) >= 3
    assert min(opened.values()) < sim.start + timedelta(seconds=60)
    injected = [i for i in sim.injected if i.kind == NOFLY_BREACH and i.start < sim.start + TEN_MINUTES]
    assert {i.source for i in injected} == set(opened)


def test_routine_flights_stay_out_of_nofly_zones(run: tuple[CitySimulator, Events], zones: ZoneIndex) -> None:
    sim, events = run
    violators = {i.source for i in sim.injected if i.kind == NOFLY_BREACH}
    for fix in _parsed(events, Domain.drone):
        if fix.drone_id not in violators:
            assert not zones.zones_at(fix.lon, fix.lat, "nofly"), fix


def test_drone_fixes_are_physically_consistent(run: tuple[CitySimulator, Events]) -> None:
    _, events = run
    transitions: set[tuple[str, str]] = set()
    for series in _by_source(events, "drone").values():
        fixes = [DroneTelemetry.model_validate(v) for v in series]
        for a, b in itertools.pairwise(fixes):
            transitions.add((a.status, b.status))
            if b.observed_at - a.observed_at > timedelta(seconds=1):  # powered off between flights
                assert a.status == b.status == "ground" and a.height_agl_m == b.height_agl_m == 0
            assert b.altitude_m - b.height_agl_m == pytest.approx(a.altitude_m - a.height_agl_m, abs=0.11)
            assert 0 <= b.height_agl_m <= 112 and b.speed_h_mps <= 16
            moved_m = math.dist(*(_metres(f) for f in (a, b)))
            if a.status == b.status == "airborne" and a.heading_deg == b.heading_deg != 361 and moved_m > 3:
                dx, dy = (p - q for p, q in zip(_metres(b), _metres(a), strict=True))
                bearing = math.degrees(math.atan2(dx, dy)) % 360
                assert abs((bearing - a.heading_deg + 180) % 360 - 180) < 1.0
                assert moved_m == pytest.approx(a.speed_h_mps, abs=1.0)
    assert {("ground", "airborne"), ("airborne", "ground")} <= transitions


def _metres(fix: DroneTelemetry) -> tuple[float, float]:
    return fix.lon * 111_195 * math.cos(math.radians(22.81)), fix.lat * 111_195


def test_a_detector_sees_three_slow_readings_within_four_minutes(run: tuple[CitySimulator, Events]) -> None:
    sim, events = run
    cutoff = sim.start + timedelta(minutes=4)
    longest = 0
    for series in _by_source(events, "traffic").values():
        streak = 0
        for value in series:
            if datetime.fromisoformat(value["observed_at"]) >= cutoff:
                break
            streak = streak + 1 if value["avg_speed_kmh"] < 25 else 0
            longest = max(longest, streak)
    assert longest >= 3


def test_congestion_opens_and_resolves_on_the_incident_road(run: tuple[CitySimulator, Events]) -> None:
    sim, events = run
    states: dict[str, dict[str, Any]] = defaultdict(dict)
    statuses: dict[str, set[AlertStatus]] = defaultdict(set)
    for reading in _parsed(events, Domain.traffic):
        alert = congestion_detector(reading, states[reading.sensor_id], TrafficRules(), None)
        if alert is not None:
            assert alert.kind == CONGESTION
            statuses[reading.road_segment].add(alert.status)
    incident = next(i for i in sim.injected if i.kind == INCIDENT)
    assert incident.start < sim.start + timedelta(minutes=2)
    assert set(statuses) == {incident.source}
    assert statuses[incident.source] == {AlertStatus.open, AlertStatus.resolved}


def test_incident_readings_are_slow_and_dense_then_recover(run: tuple[CitySimulator, Events]) -> None:
    sim, events = run
    incident = next(i for i in sim.injected if i.kind == INCIDENT)
    for sensor in incident.detail["sensor_ids"]:
        readings = [TrafficReading.model_validate(v) for v in _by_source(events, "traffic")[sensor]]
        during = [r for r in readings if incident.start <= r.observed_at < incident.end]
        after = [r for r in readings if r.observed_at >= incident.end]
        before = [r for r in readings if r.observed_at < incident.start]
        assert during and after and all(5 <= r.avg_speed_kmh <= 15 for r in during)
        assert after[0].avg_speed_kmh > 45
        normal_occupancy = max(r.occupancy for r in before + after)
        assert min(r.occupancy for r in during) > normal_occupancy


def test_rush_hour_is_slower_than_night_on_the_same_detectors(zones: ZoneIndex) -> None:
    size = SimSize(traffic_sensors=60, drones=0, meters=0)
    means = {}
    for hour in (8, 2):  # 08:00 is in the morning rush, 02:00 is night (Asia/Shanghai)
        start = _last_local(hour)
        sim = CitySimulator(zones, seed=11, start=start, sensors=size)
        events = sim.events_between(start, start + TEN_MINUTES)
        incident_sensors = {s for i in sim.injected for s in i.detail.get("sensor_ids", [])}
        speeds = [r.avg_speed_kmh for r in _parsed(events, Domain.traffic) if r.sensor_id not in incident_sensors]
        flows = [r.vehicle_count for r in _parsed(events, Domain.traffic) if r.sensor_id not in incident_sensors]
        means[hour] = (sum(speeds) / len(speeds), sum(flows) / len(flows), min(speeds))
    assert means[8][0] < 0.85 * means[2][0]
    assert means[8][1] > 3 * means[2][1]
    assert means[8][2] > 45


def test_a_meter_spikes_above_three_times_its_recent_mean_within_five_minutes(
    run: tuple[CitySimulator, Events],
) -> None:
    sim, events = run
    cutoff = sim.start + timedelta(minutes=5)
    spiking = set()
    for meter, series in _by_source(events, "energy").items():
        powers = [v["active_power_kw"] for v in series if datetime.fromisoformat(v["observed_at"]) < cutoff]
        if any(p > 3 * sum(powers[i - 10 : i]) / 10 for i, p in enumerate(powers) if i >= 10):
            spiking.add(meter)
    spike = next(i for i in sim.injected if i.kind == LOAD_SPIKE)
    assert spiking == {spike.source}
    assert timedelta(minutes=3) <= spike.start - sim.start < timedelta(minutes=4)


def test_the_load_spike_detector_raises_on_the_injected_meter(run: tuple[CitySimulator, Events]) -> None:
    sim, events = run
    states: dict[str, dict[str, Any]] = defaultdict(dict)
    alerted = set()
    for reading in _parsed(events, Domain.energy):
        alert = load_spike_detector(reading, states[reading.meter_id], EnergyRules(), None)
        if alert is not None:
            assert alert.kind == LOAD_SPIKE
            alerted.add((alert.source_id, alert.status, alert.first_seen < sim.start + timedelta(minutes=5)))
    spike = next(i for i in sim.injected if i.kind == LOAD_SPIKE)
    assert (spike.source, AlertStatus.open, True) in alerted
    assert (spike.source, AlertStatus.resolved, True) in alerted


def test_energy_counters_grow_with_power_times_time(run: tuple[CitySimulator, Events]) -> None:
    sim, events = run
    faulty = {i.source for i in sim.injected if i.kind == COUNTER_FAULT}
    assert len(faulty) == 2
    for meter, series in _by_source(events, "energy").items():
        readings = [EnergyReading.model_validate(v) for v in series]
        for a, b in itertools.pairwise(readings):
            if meter in faulty and b.energy_kwh - a.energy_kwh != pytest.approx(
                b.active_power_kw * 15 / 3600, abs=0.0015
            ):
                faulty.remove(meter)  # its one injected fault
                continue
            assert b.energy_kwh >= a.energy_kwh
            assert b.energy_kwh - a.energy_kwh == pytest.approx(b.active_power_kw * 15 / 3600, abs=0.0015)
    assert not faulty, "each injected counter fault shows in the readings"


def test_energy_readings_stay_in_the_pilot_grids_bands(run: tuple[CitySimulator, Events]) -> None:
    sim, events = run
    quality = [i for i in sim.injected if i.kind in QUALITY_KINDS and i.kind != COUNTER_FAULT]
    (outage,) = [i for i in sim.injected if i.kind == FEEDER_OUTAGE]
    for reading in _parsed(events, Domain.energy):
        if any(i.source == reading.meter_id and i.start <= reading.observed_at < i.end for i in quality):
            continue
        if reading.feeder_id == outage.source and outage.start <= reading.observed_at < outage.end:
            assert reading.voltage_v < 220 * 0.05 and reading.active_power_kw == 0 and reading.current_a == 0
            continue
        assert 220 * 0.97 <= reading.voltage_v <= 220 * 1.03
        assert 49.97 <= reading.frequency_hz <= 50.03
        assert 0.85 <= reading.power_factor <= 0.99
        assert reading.active_power_kw > 0
        phases = reading.active_power_kw * 1000 / (reading.voltage_v * reading.power_factor * reading.current_a)
        assert round(phases) in (1, 3)


@pytest.mark.parametrize("rate", [10, 300])
def test_size_for_rate_produces_about_that_many_events(zones: ZoneIndex, start: datetime, rate: int) -> None:
    size = size_for_rate(rate)
    assert size.events_per_s() == pytest.approx(rate, rel=0.1)
    sim = CitySimulator(zones, seed=2, start=start, sensors=size)
    window = (start + timedelta(minutes=1), start + timedelta(minutes=4))
    measured = len(sim.events_between(*window)) / (window[1] - window[0]).total_seconds()
    assert measured == pytest.approx(rate, rel=0.2)


def test_size_for_rate_refuses_a_rate_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="rate"):
        size_for_rate(0)


def test_a_naive_start_is_refused(zones: ZoneIndex) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CitySimulator(zones, seed=1, start=datetime(2026, 1, 1))


def test_run_simulation_publishes_what_the_simulator_generates(zones: ZoneIndex, start: datetime) -> None:
    published: Events = []

    async def publish(domain: str, key: str, value: dict[str, Any]) -> None:
        published.append((domain, key, value))

    sim = CitySimulator(zones, seed=9, start=start)
    sent = asyncio.run(run_simulation(publish, sim, 150, realtime=False))
    expected = CitySimulator(zones, seed=9, start=start).events_between(start, start + timedelta(seconds=150))
    assert sent == len(published) == len(expected)
    assert published == expected


def test_run_simulation_in_real_time_never_publishes_the_future(zones: ZoneIndex) -> None:
    lags: list[float] = []

    def publish(domain: str, key: str, value: dict[str, Any]) -> None:
        lags.append((datetime.now(UTC) - datetime.fromisoformat(value["observed_at"])).total_seconds())

    sim = CitySimulator(zones, seed=4, start=datetime.now(UTC))
    sent = asyncio.run(run_simulation(publish, sim, 1.0, step_s=0.1))
    assert sent == len(lags) > 0
    assert all(0 <= lag < 2.0 for lag in lags)


def _energy_alerts(events: Events) -> dict[str, tuple[str, str, set[AlertStatus], datetime]]:
    """Run the energy processor over the readings in order: {alert id: (kind, meter, statuses, first_seen)}."""
    processor = EnergyProcessor(Settings(environment="test"))
    states: dict[str, dict[str, Any]] = defaultdict(dict)
    found: dict[str, tuple[str, str, set[AlertStatus], datetime]] = {}
    for reading in _parsed(events, Domain.energy):
        out = BatchOutcome(Domain.energy, 60)
        processor.process(reading, "z", states[reading.meter_id], out, True)
        for alert in out.alerts.values():
            found.setdefault(alert.id, (alert.kind, alert.source_id, set(), alert.first_seen))[2].add(alert.status)
    return found


def test_the_energy_detectors_raise_exactly_the_injected_power_quality_faults(
    run: tuple[CitySimulator, Events],
) -> None:
    sim, events = run
    end = sim.start + TEN_MINUTES
    injected = [i for i in sim.injected if i.kind in QUALITY_KINDS and i.start < end]
    assert {i.kind for i in injected} == QUALITY_KINDS
    assert [i.detail["fault"] for i in injected if i.kind == COUNTER_FAULT] == ["reset", "jump"]
    alerts = [a for a in _energy_alerts(events).values() if a[0] != LOAD_SPIKE]
    expected = sorted(
        (i.kind, i.source)
        for i in injected
        if i.kind not in (SHORT_VOLTAGE_DIP, LOW_POWER_FACTOR)  # the dip is too short; low PF needs 15 minutes
    )
    assert sorted((kind, meter) for kind, meter, _, _ in alerts) == expected
    for kind, meter, statuses, first_seen in alerts:
        (fault,) = [i for i in injected if (i.kind, i.source) == (kind, meter)]
        lifecycle = {AlertStatus.resolved} if kind == COUNTER_FAULT else {AlertStatus.open, AlertStatus.resolved}
        assert statuses == lifecycle
        assert fault.start <= first_seen < fault.start + timedelta(seconds=15)


def test_the_low_power_factor_alerts_after_fifteen_minutes(zones: ZoneIndex) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    sim = CitySimulator(zones, seed=3, start=start)
    events = sim.events_between(start, start + timedelta(minutes=22))
    (fault,) = [i for i in sim.injected if i.kind == LOW_POWER_FACTOR]
    low_pf = [a for a in _energy_alerts(events).values() if a[0] == LOW_POWER_FACTOR]
    assert [(meter, statuses) for _, meter, statuses, _ in low_pf] == [
        (fault.source, {AlertStatus.open, AlertStatus.resolved})
    ]
    assert fault.start <= low_pf[0][3] < fault.start + timedelta(seconds=15)


def test_the_injected_feeder_outage_and_silent_meter_make_one_alert_each(zones: ZoneIndex) -> None:
    # From a whole hour: meters learn their load per hour, so a run crossing an hour judges its second part
    # against an hour with almost no history, and whether that makes a spike depends on the clock.
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    sim = CitySimulator(zones, seed=5, start=start, sensors=SimSize(traffic_sensors=0, drones=0, meters=60))
    events = sim.events_between(start, start + timedelta(minutes=30))
    (outage,) = [i for i in sim.injected if i.kind == FEEDER_OUTAGE]
    (silent,) = [i for i in sim.injected if i.kind == METER_OFFLINE]
    settings = Settings(environment="test")
    processor = EnergyProcessor(settings)
    states: dict[str, dict[str, Any]] = defaultdict(dict)
    feeders: dict[str, dict[str, Any]] = {}
    alerts: dict[str, Alert] = {}
    for reading in _parsed(events, Domain.energy):
        out = BatchOutcome(Domain.energy, 60)
        processor.process(reading, "z", states[reading.meter_id], out, True)
        alerts.update(out.alerts)
        for t in out.supply_transitions:  # as the sink does, one feeder state shared by every meter
            feeders[t.feeder_id], made = feeder_step(t.feeder_id, feeders.get(t.feeder_id), [t], settings.energy)
            alerts.update({a.id: a for a in made})
    feeder_alerts = [a for a in alerts.values() if a.kind == FEEDER_OUTAGE]
    assert [(a.source_id, a.status) for a in feeder_alerts] == [(outage.source, AlertStatus.resolved)]
    assert feeder_alerts[0].data["affected_meters"] == outage.detail["meters"]
    assert outage.start <= feeder_alerts[0].first_seen < outage.start + timedelta(seconds=15)
    assert abs(feeder_alerts[0].data["outage_duration_s"] - (outage.end - outage.start).total_seconds()) <= 15
    offline = [a for a in alerts.values() if a.kind == METER_OFFLINE]
    assert [(a.source_id, a.status) for a in offline] == [(silent.source, AlertStatus.resolved)]
    assert silent.start - timedelta(seconds=15) <= offline[0].first_seen < silent.start
    # Neither the blackout nor the silence shows up as anything else: no sag, no spike on those meters.
    dark_meters = set(outage.detail["meters"]) | {silent.source}
    assert not [a for a in alerts.values() if a.source_id in dark_meters and a.kind not in (METER_OFFLINE,)]
