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
from tests.support.events import valid_value

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


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
    value = valid_value(domain, observed_at=datetime.now(UTC).isoformat())
    field = data.draw(st.sampled_from([*value, "extra_field"]))
    value[field] = data.draw(json_values)
    refused_or_valid(domain, _dumps(value))
    valid, rejected = validate_items(domain, [value])
    assert len(valid) + len(rejected) == 1
    assert all(r.index == 0 and r.reason for r in rejected)


def _dumps(value: Any) -> bytes:
    """Encode like a sloppy gateway would: NaN and Infinity as bare tokens, as Python's json does."""
    return json.dumps(value).encode()
