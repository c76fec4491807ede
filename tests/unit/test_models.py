"""The sensor event and alert schemas of `streams.models`, as tables of accepted and refused values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from streams.models import (
    MODEL_BY_DOMAIN,
    Alert,
    AlertStatus,
    Domain,
    DroneStatus,
    DroneTelemetry,
    EnergyReading,
    SensorEvent,
    TrafficReading,
    alert_id,
)
from tests.support.events import NOW, valid_value

# Near now: the models refuse observed_at older than 366 days or more than 1 hour ahead.
CST = timezone(timedelta(hours=8))


def traffic_payload(**overrides: Any) -> dict[str, Any]:
    return valid_value(Domain.traffic, **overrides)


def drone_payload(**overrides: Any) -> dict[str, Any]:
    return valid_value(Domain.drone, **overrides)


def energy_payload(**overrides: Any) -> dict[str, Any]:
    return valid_value(Domain.energy, **overrides)


PAYLOADS = {Domain.traffic: traffic_payload, Domain.drone: drone_payload, Domain.energy: energy_payload}


# --- accepted events --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "model", "source_id", "partition_key"),
    [
        (Domain.traffic, TrafficReading, "TLD-0001", "seg-1"),  # a segment's detectors share a partition
        (Domain.drone, DroneTelemetry, "CN-UAS-0001", "CN-UAS-0001"),
        (Domain.energy, EnergyReading, "MTR-00001", "MTR-00001"),
    ],
)
def test_valid_event_of_each_domain(
    domain: Domain, model: type[SensorEvent], source_id: str, partition_key: str
) -> None:
    payload = PAYLOADS[domain]()
    event = MODEL_BY_DOMAIN[domain].model_validate(payload)
    assert type(event) is model
    assert event.source_id == source_id
    assert event.partition_key == partition_key
    assert event.observed_at == NOW
    assert (event.lon, event.lat) == (payload["lon"], payload["lat"])
    assert event.observed_ms == int(NOW.timestamp()) * 1000


def test_traffic_interval_defaults_to_30_seconds() -> None:
    assert TrafficReading.model_validate(traffic_payload()).interval_s == 30


def test_drone_status_is_the_enum() -> None:
    fix = DroneTelemetry.model_validate(drone_payload(status="remote_id_failure"))
    assert fix.status is DroneStatus.remote_id_failure


def test_events_are_frozen() -> None:
    reading = TrafficReading.model_validate(traffic_payload())
    with pytest.raises(ValidationError):
        reading.avg_speed_kmh = 10.0  # type: ignore[misc]


def test_base_event_has_no_source_id() -> None:
    event = SensorEvent.model_validate({"observed_at": NOW, "lat": 0, "lon": 0})
    with pytest.raises(NotImplementedError):
        _ = event.source_id


@pytest.mark.parametrize(
    ("domain", "overrides"),
    [
        (Domain.traffic, {"lat": 90, "lon": 180}),
        (Domain.traffic, {"lat": -90, "lon": -180}),
        (Domain.traffic, {"occupancy": 0.0, "avg_speed_kmh": 0.0, "vehicle_count": 0}),
        (Domain.traffic, {"occupancy": 1.0, "avg_speed_kmh": 300.0}),
        (Domain.traffic, {"observed_at": NOW + timedelta(minutes=30)}),
        (Domain.traffic, {"observed_at": datetime.now(UTC) - timedelta(days=365)}),
        (Domain.drone, {"heading_deg": 361, "speed_v_mps": -63}),
        (Domain.energy, {"active_power_kw": -5.0, "power_factor": -1}),
    ],
)
def test_edge_values_are_accepted(domain: Domain, overrides: dict[str, Any]) -> None:
    event = MODEL_BY_DOMAIN[domain].model_validate(PAYLOADS[domain](**overrides))
    for field, value in overrides.items():
        assert getattr(event, field) == value


# --- refused events ---------------------------------------------------------------------------

REMOVE = object()


@pytest.mark.parametrize(
    ("domain", "field", "value", "loc"),
    [
        (Domain.traffic, "lat", 200, "lat"),
        (Domain.traffic, "lat", -90.0001, "lat"),
        (Domain.traffic, "lon", -181, "lon"),
        (Domain.drone, "lon", 180.5, "lon"),
        (Domain.traffic, "occupancy", 1.5, "occupancy"),
        (Domain.traffic, "vehicle_count", -1, "vehicle_count"),
        (Domain.traffic, "vehicle_count", 2.5, "vehicle_count"),
        (Domain.traffic, "avg_speed_kmh", float("nan"), "avg_speed_kmh"),
        (Domain.traffic, "avg_speed_kmh", float("inf"), "avg_speed_kmh"),
        (Domain.traffic, "avg_speed_kmh", -1.0, "avg_speed_kmh"),
        (Domain.drone, "speed_h_mps", float("nan"), "speed_h_mps"),
        (Domain.energy, "active_power_kw", float("-inf"), "active_power_kw"),
        (Domain.energy, "energy_kwh", -0.001, "energy_kwh"),
        (Domain.traffic, "observed_at", NOW.replace(tzinfo=None), "observed_at"),
        (Domain.traffic, "observed_at", "2025-06-01T12:00:00", "observed_at"),
        (Domain.traffic, "observed_at", NOW - timedelta(days=730), "observed_at"),
        (Domain.traffic, "observed_at", NOW + timedelta(days=1), "observed_at"),
        (Domain.energy, "observed_at", NOW + timedelta(hours=2), "observed_at"),
        (Domain.traffic, "unexpected", 1, "unexpected"),
        (Domain.traffic, "sensor_id", REMOVE, "sensor_id"),
        (Domain.traffic, "sensor_id", "", "sensor_id"),
        (Domain.traffic, "sensor_id", "has space", "sensor_id"),
        (Domain.drone, "status", "hovering", "status"),
        (Domain.drone, "drone_id", REMOVE, "drone_id"),
        (Domain.energy, "meter_id", REMOVE, "meter_id"),
        (Domain.energy, "power_factor", 1.01, "power_factor"),
    ],
)
def test_invalid_field_is_refused_and_named(domain: Domain, field: str, value: Any, loc: str) -> None:
    payload = PAYLOADS[domain]()
    if value is REMOVE:
        del payload[field]
    else:
        payload[field] = value
    with pytest.raises(ValidationError) as info:
        MODEL_BY_DOMAIN[domain].model_validate(payload)
    assert [err["loc"] for err in info.value.errors()] == [(loc,)]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_speed_is_refused(literal: str) -> None:
    raw = json.dumps(traffic_payload(observed_at=NOW.isoformat(), avg_speed_kmh=1.0)).replace("1.0", literal)
    assert literal in raw
    with pytest.raises(ValidationError) as info:
        TrafficReading.model_validate_json(raw)
    assert [(err["loc"], err["type"]) for err in info.value.errors()] == [(("avg_speed_kmh",), "finite_number")]


@pytest.mark.parametrize(
    ("domain", "field"),
    [
        (Domain.traffic, "avg_speed_kmh"),
        (Domain.traffic, "occupancy"),
        (Domain.drone, "height_agl_m"),
        (Domain.drone, "lat"),
        (Domain.energy, "active_power_kw"),
        (Domain.energy, "energy_kwh"),
    ],
)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_non_finite_python_float_is_refused_as_not_finite(domain: Domain, field: str, value: float) -> None:
    # Refused as "not finite" by the model config, not merely by the range check of the field.
    with pytest.raises(ValidationError) as info:
        MODEL_BY_DOMAIN[domain].model_validate(PAYLOADS[domain](**{field: value}))
    assert [(err["loc"], err["type"]) for err in info.value.errors()] == [((field,), "finite_number")]


@pytest.mark.parametrize(
    ("observed_at", "reason"),
    [
        (NOW + timedelta(days=1), "ahead of the clock"),
        (NOW - timedelta(days=730), "older than 366 days"),
    ],
)
def test_implausible_time_says_why(observed_at: datetime, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        TrafficReading.model_validate(traffic_payload(observed_at=observed_at))


# --- time normalisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "observed_at",
    [
        NOW.astimezone(CST),
        NOW.astimezone(timezone(timedelta(hours=-5, minutes=-30))),
        NOW.astimezone(CST).isoformat(),
        NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
    ],
)
def test_observed_at_is_normalised_to_utc(observed_at: datetime | str) -> None:
    reading = TrafficReading.model_validate(traffic_payload(observed_at=observed_at))
    assert reading.observed_at.utcoffset() == timedelta(0)
    assert reading.observed_at.tzinfo is UTC
    assert reading.observed_at == NOW
    assert reading.observed_at.isoformat().endswith("+00:00")


def test_observed_at_from_json_is_normalised_to_utc() -> None:
    raw = json.dumps(traffic_payload(observed_at=NOW.astimezone(CST).isoformat()))
    reading = TrafficReading.model_validate_json(raw)
    assert reading.observed_at.tzinfo is UTC
    assert reading.observed_at.hour == NOW.hour


def test_observed_ms_keeps_milliseconds() -> None:
    at = NOW + timedelta(milliseconds=789, microseconds=600)
    reading = TrafficReading.model_validate(traffic_payload(observed_at=at))
    assert reading.observed_ms == int(NOW.timestamp()) * 1000 + 789


# --- alert ids --------------------------------------------------------------------------------

START = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)
BASE_ID_ARGS = ("congestion", "TLD-0001", START, "")


def test_alert_id_is_deterministic_hex() -> None:
    first = alert_id(*BASE_ID_ARGS)
    assert first == alert_id(*BASE_ID_ARGS)
    assert len(first) == 20
    assert int(first, 16) >= 0


def test_alert_id_scope_defaults_to_empty() -> None:
    assert alert_id("congestion", "TLD-0001", START) == alert_id(*BASE_ID_ARGS)


def test_alert_id_is_the_same_for_the_same_instant_in_another_timezone() -> None:
    assert alert_id("congestion", "TLD-0001", START.astimezone(CST)) == alert_id(*BASE_ID_ARGS)


@pytest.mark.parametrize(
    "args",
    [
        ("load_spike", "TLD-0001", START, ""),
        ("congestion", "TLD-0002", START, ""),
        ("congestion", "TLD-0001", START + timedelta(milliseconds=1), ""),
        ("congestion", "TLD-0001", START, "nofly-government-centre"),
    ],
    ids=["rule", "source", "episode", "scope"],
)
def test_alert_id_differs_when_rule_source_episode_or_scope_differ(args: tuple[str, str, datetime, str]) -> None:
    assert alert_id(*args) != alert_id(*BASE_ID_ARGS)


def test_alert_defaults_to_open_with_count_one() -> None:
    alert = Alert(
        id="a1",
        domain=Domain.traffic,
        kind="congestion",
        severity="medium",
        source_id="TLD-0001",
        first_seen=START,
        last_seen=START,
    )
    assert alert.status is AlertStatus.open
    assert alert.count == 1
    assert alert.data == {}


@pytest.mark.parametrize(("field", "value"), [("count", 0), ("status", "closed"), ("measured_value", float("nan"))])
def test_alert_refuses_bad_values(field: str, value: Any) -> None:
    fields: dict[str, Any] = {
        "id": "a1",
        "domain": "traffic",
        "kind": "congestion",
        "severity": "medium",
        "source_id": "TLD-0001",
        "first_seen": START,
        "last_seen": START,
        field: value,
    }
    with pytest.raises(ValidationError) as info:
        Alert.model_validate(fields)
    assert info.value.errors()[0]["loc"] == (field,)
