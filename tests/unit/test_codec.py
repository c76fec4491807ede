"""The one codec of `streams.codec`: bytes in, a model or a reason with its stage out."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import orjson
import pytest
from faust.serializers import codecs
from pydantic import ValidationError

from streams.codec import (
    MAX_VALUE_BYTES,
    ModelCodec,
    codec_name,
    decode_event,
    decode_item,
    describe_validation_error,
    encode,
    register_codec,
)
from streams.exceptions import EventDecodeError
from streams.models import (
    Aggregate,
    Alert,
    AlertStatus,
    Domain,
    DroneTelemetry,
    EnergyReading,
    GeoPoint,
    SensorEvent,
    Severity,
    TrafficReading,
)
from tests.support.events import NOW, VALID, valid_value


def raw(domain: Domain = Domain.traffic, **overrides: Any) -> bytes:
    return json.dumps(valid_value(domain, **overrides)).encode()


def refusal(domain: Domain, value: bytes | None) -> EventDecodeError:
    with pytest.raises(EventDecodeError) as info:
        decode_event(domain, value)
    return info.value


# --- decode_event -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "model", "source_id"),
    [
        (Domain.traffic, TrafficReading, "TLD-0001"),
        (Domain.drone, DroneTelemetry, "CN-UAS-0001"),
        (Domain.energy, EnergyReading, "MTR-00001"),
    ],
)
def test_decode_event_returns_the_domain_model(domain: Domain, model: type[SensorEvent], source_id: str) -> None:
    event = decode_event(domain, raw(domain))
    assert type(event) is model
    assert event.source_id == source_id
    assert event.observed_at == NOW
    assert event.model_dump(mode="json", exclude_defaults=True) == {
        **VALID[domain],
        "observed_at": NOW.isoformat().replace("+00:00", "Z"),
    }


@pytest.mark.parametrize("value", [b'{"a":', b"\xff", b"", b"not json", b'{"sensor_id": "x",}'])
def test_unparseable_value_is_refused_at_decode(value: bytes) -> None:
    error = refusal(Domain.traffic, value)
    assert error.stage == "decode"
    assert error.reason.startswith("invalid JSON")
    assert str(error) == error.reason


@pytest.mark.parametrize(
    ("domain", "overrides", "prefix", "fragment"),
    [
        (Domain.traffic, {"lat": 200}, "lat: ", "(got 200)"),
        (Domain.traffic, {"lon": -181}, "lon: ", "(got -181)"),
        (Domain.traffic, {"occupancy": 1.5}, "occupancy: ", "(got 1.5)"),
        (Domain.drone, {"status": "hovering"}, "status: ", "(got 'hovering')"),
        (Domain.energy, {"extra": True}, "extra: ", "Extra inputs are not permitted"),
        (Domain.traffic, {"observed_at": "2025-06-01T12:00:00"}, "observed_at: ", "timezone"),
    ],
)
def test_invalid_field_is_refused_at_validate_naming_it(
    domain: Domain, overrides: dict[str, Any], prefix: str, fragment: str
) -> None:
    error = refusal(domain, raw(domain, **overrides))
    assert error.stage == "validate"
    assert error.reason.startswith(prefix)
    assert fragment in error.reason


def test_json_nan_is_refused_at_validate() -> None:
    value = raw(Domain.traffic, avg_speed_kmh=1.5).replace(b"1.5", b"NaN")
    error = refusal(Domain.traffic, value)
    assert error.stage == "validate"
    assert error.reason.startswith("avg_speed_kmh: ")


def test_missing_field_is_named_without_a_got() -> None:
    value = json.dumps({k: v for k, v in VALID[Domain.traffic].items() if k != "lane"}).encode()
    error = refusal(Domain.traffic, value)
    assert (error.stage, error.reason) == ("validate", "lane: Field required")


def test_event_of_another_domain_names_every_problem() -> None:
    error = refusal(Domain.drone, raw(Domain.traffic))
    assert error.stage == "validate"
    assert "drone_id: Field required" in error.reason
    assert "sensor_id: Extra inputs are not permitted (got 'TLD-0001')" in error.reason


@pytest.mark.parametrize("value", [b"[]", b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object_is_refused_at_validate(value: bytes) -> None:
    error = refusal(Domain.energy, value)
    assert error.stage == "validate"
    assert error.reason


def test_none_is_refused_as_a_tombstone() -> None:
    error = refusal(Domain.traffic, None)
    assert error.stage == "decode"
    assert "tombstone" in error.reason


def test_value_over_the_limit_is_refused_before_parsing() -> None:
    value = raw().ljust(MAX_VALUE_BYTES + 1)
    error = refusal(Domain.traffic, value)
    assert error.stage == "decode"
    assert error.reason == f"value of {MAX_VALUE_BYTES + 1} bytes exceeds the {MAX_VALUE_BYTES}-byte limit"


def test_value_of_exactly_the_limit_is_decoded() -> None:
    # JSON allows trailing whitespace, so this is a valid event of exactly MAX_VALUE_BYTES bytes.
    value = raw().ljust(MAX_VALUE_BYTES)
    assert len(value) == MAX_VALUE_BYTES == 1_000_000
    assert decode_event(Domain.traffic, value).source_id == "TLD-0001"


# --- decode_item ------------------------------------------------------------------------------


def test_decode_item_validates_a_parsed_item() -> None:
    event = decode_item(Domain.energy, VALID[Domain.energy])
    assert isinstance(event, EnergyReading)
    assert event.energy_kwh == 1234.567


def test_decode_item_refusal_is_at_validate() -> None:
    with pytest.raises(EventDecodeError) as info:
        decode_item(Domain.traffic, {**VALID[Domain.traffic], "lat": 200})
    assert info.value.stage == "validate"
    assert info.value.reason.startswith("lat: ")


# --- describe_validation_error ----------------------------------------------------------------


def validation_error(model: type[Any], value: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        model.model_validate(value)
    return info.value


def test_description_is_one_part_per_error_joined_by_semicolons() -> None:
    value = {**VALID[Domain.traffic], "lat": 200, "lon": -181}
    del value["lane"]
    text = describe_validation_error(validation_error(TrafficReading, value))
    assert text.split("; ") == [
        "lat: Input should be less than or equal to 90 (got 200)",
        "lon: Input should be greater than or equal to -180 (got -181)",
        "lane: Field required",
    ]
    assert "\n" not in text


def test_description_joins_nested_locations_with_dots() -> None:
    value = {
        "id": "a",
        "domain": "traffic",
        "kind": "k",
        "severity": "low",
        "source_id": "s",
        "first_seen": NOW,
        "last_seen": NOW,
        "location": {"coordinates": ["east", 22.0]},
    }
    text = describe_validation_error(validation_error(Alert, value))
    assert text.startswith("location.coordinates.0: ")
    assert text.endswith("(got 'east')")


def test_description_hides_dict_and_list_inputs() -> None:
    text = describe_validation_error(validation_error(TrafficReading, [1, 2]))
    assert text.startswith("value: ")
    assert "(got" not in text


def test_description_truncates_long_inputs() -> None:
    text = describe_validation_error(
        validation_error(TrafficReading, {**VALID[Domain.traffic], "sensor_id": "x" * 500})
    )
    assert text.startswith("sensor_id: ")
    shown = text[text.index("(got ") + len("(got ") : -1]
    assert len(shown) == 60
    assert shown == repr("x" * 500)[:60]


def test_description_of_invalid_json_is_one_line() -> None:
    with pytest.raises(ValidationError) as info:
        TrafficReading.model_validate_json(b'{"a":')
    text = describe_validation_error(info.value)
    assert text.startswith("invalid JSON: ")
    assert "EOF" in text


# --- encode and the Faust codec ---------------------------------------------------------------

ALERT = Alert(
    id="0123456789abcdef0123",
    domain=Domain.drone,
    kind="nofly_breach",
    severity=Severity.critical,
    status=AlertStatus.resolved,
    source_id="CN-UAS-0001",
    zone_id="binhaiwan-core",
    location=GeoPoint(coordinates=(113.7, 22.755)),
    measured_value=60.0,
    threshold=0.0,
    threshold_type="UPPER",
    unit="m AGL",
    description="Drone inside no-fly zone",
    first_seen=NOW,
    last_seen=NOW + timedelta(seconds=30),
    count=4,
    resolved_at=NOW + timedelta(seconds=30),
    data={"nofly_zone_id": "nofly-government-centre", "nested": [1, 2.5, None]},
)


def test_encode_round_trips_an_alert() -> None:
    encoded = encode(ALERT)
    assert isinstance(encoded, bytes)
    assert Alert.model_validate_json(encoded) == ALERT
    assert orjson.loads(encoded)["location"] == {"type": "Point", "coordinates": [113.7, 22.755]}


def test_encode_round_trips_an_event() -> None:
    event = decode_event(Domain.drone, raw(Domain.drone))
    assert decode_event(Domain.drone, encode(event)) == event


def test_model_codec_dumps_models_and_validates_dicts() -> None:
    codec = ModelCodec(Alert)
    assert codec.dumps(ALERT) == encode(ALERT)
    assert codec.dumps(ALERT.model_dump(mode="json")) == encode(ALERT)
    with pytest.raises(ValidationError):
        codec.dumps({"id": "x"})


def test_model_codec_loads_validated_models() -> None:
    codec = ModelCodec(Alert)
    assert codec.loads(codec.dumps(ALERT)) == ALERT


def test_model_codec_refuses_invalid_values_with_the_reason() -> None:
    codec = ModelCodec(TrafficReading)
    with pytest.raises(EventDecodeError) as err:
        codec.loads(b'{"sensor_id": "x"}')
    assert err.value.stage == "validate" and "observed_at" in err.value.reason


@pytest.mark.parametrize("model", [TrafficReading, DroneTelemetry, EnergyReading, Alert, Aggregate])
def test_register_codec_registers_one_validating_codec_per_schema(model: type) -> None:
    register_codec()
    register_codec()
    codec = codecs.get_codec(codec_name(model))
    assert isinstance(codec, ModelCodec) and codec.model is model
