"""Property tests: no input of any shape makes decoding or ingest validation raise anything but a refusal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.codec import decode_event
from streams.exceptions import EventDecodeError
from streams.gateway import validate_items
from streams.models import Domain, SensorEvent

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)

VALID = {
    Domain.traffic: {
        "sensor_id": "LD-1",
        "lat": 22.85,
        "lon": 113.7,
        "road_segment": "G107",
        "lane": 1,
        "vehicle_count": 5,
        "avg_speed_kmh": 42.0,
        "occupancy": 0.1,
    },
    Domain.drone: {
        "drone_id": "CN-UAS-0001",
        "lat": 22.8,
        "lon": 113.7,
        "altitude_m": 60.0,
        "height_agl_m": 55.0,
        "speed_h_mps": 8.0,
        "speed_v_mps": 0.0,
        "heading_deg": 90.0,
        "status": "airborne",
        "operator_id": "OP-1",
    },
    Domain.energy: {
        "meter_id": "MTR-1",
        "feeder_id": "FDR-1",
        "lat": 22.8,
        "lon": 113.7,
        "active_power_kw": 1.2,
        "energy_kwh": 100.0,
        "voltage_v": 221.0,
        "current_a": 5.0,
        "frequency_hz": 50.0,
        "power_factor": 0.95,
    },
}


def refused_or_valid(domain: Domain, raw: bytes) -> None:
    try:
        event = decode_event(domain, raw)
    except EventDecodeError as exc:
        assert exc.reason and exc.stage in {"decode", "validate"}
    else:
        assert isinstance(event, SensorEvent)


@settings(max_examples=300, deadline=None)
@given(domain=st.sampled_from(list(Domain)), raw=st.binary(max_size=300))
def test_any_bytes_are_decoded_or_refused_with_a_reason(domain: Domain, raw: bytes) -> None:
    refused_or_valid(domain, raw)


@settings(max_examples=300, deadline=None)
@given(domain=st.sampled_from(list(Domain)), value=json_values)
def test_any_json_is_decoded_or_refused_with_a_reason(domain: Domain, value: Any) -> None:
    refused_or_valid(domain, _dumps(value))


@settings(max_examples=400, deadline=None)
@given(domain=st.sampled_from(list(Domain)), data=st.data())
def test_a_valid_event_with_any_field_replaced_is_decoded_or_refused(domain: Domain, data: st.DataObject) -> None:
    value: dict[str, Any] = {**VALID[domain], "observed_at": datetime.now(UTC).isoformat()}
    field = data.draw(st.sampled_from([*value, "extra_field"]))
    value[field] = data.draw(json_values)
    refused_or_valid(domain, _dumps(value))
    valid, rejected = validate_items(domain, [value])
    assert len(valid) + len(rejected) == 1
    assert all(r.index == 0 and r.reason for r in rejected)


def _dumps(value: Any) -> bytes:
    """Encode like a sloppy gateway would: NaN and Infinity as bare tokens, as Python's json does."""
    return json.dumps(value).encode()
