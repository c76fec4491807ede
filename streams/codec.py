"""The one codec: bytes on Kafka <-> validated pydantic models, with a reason for every refusal."""

from __future__ import annotations

from typing import Any

import faust
from faust.serializers import codecs
from pydantic import BaseModel, ValidationError

from streams.exceptions import EventDecodeError
from streams.models import (
    MODEL_BY_DOMAIN,
    Aggregate,
    Alert,
    Domain,
    DroneTelemetry,
    EnergyReading,
    SensorEvent,
    TrafficReading,
)

MAX_VALUE_BYTES = 1_000_000


def describe_validation_error(exc: ValidationError) -> str:
    """Turn a pydantic error into one line an engineer can act on: `field: problem (got value)`."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "value"
        if err["type"] == "json_invalid":
            return f"invalid JSON: {err['msg']}"
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) or err["type"] == "missing" else f" (got {got!r:.60})"
        parts.append(f"{loc}: {err['msg']}{shown}")
    return "; ".join(parts)


def decode_event(domain: Domain, raw: bytes | None) -> SensorEvent:
    """Decode and validate one Kafka value of a sensor topic, or raise EventDecodeError with the reason."""
    if raw is None:
        raise EventDecodeError("empty value (tombstone) on a sensor topic", stage="decode")
    if len(raw) > MAX_VALUE_BYTES:
        raise EventDecodeError(f"value of {len(raw)} bytes exceeds the {MAX_VALUE_BYTES}-byte limit", stage="decode")
    event: SensorEvent = _EVENT_CODECS[domain]._loads(raw)
    return event


def decode_item(domain: Domain, item: Any) -> SensorEvent:
    """Validate one already-parsed JSON item (HTTP ingest), or raise EventDecodeError with the reason."""
    try:
        return MODEL_BY_DOMAIN[domain].model_validate(item)
    except ValidationError as exc:
        raise EventDecodeError(describe_validation_error(exc)) from None


def encode(model: BaseModel) -> bytes:
    """Serialise a model to the JSON bytes used on Kafka and in Redis."""
    return model.__pydantic_serializer__.to_json(model)


class ModelCodec(faust.Codec):
    """Faust codec bound to one schema: every value in or out is validated by that pydantic model."""

    def __init__(self, model: type[BaseModel], **kwargs: Any) -> None:
        super().__init__(model=model, **kwargs)
        self.model = model

    def _dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, self.model):
            obj = self.model.model_validate(obj)
        return encode(obj)

    def _loads(self, s: bytes) -> Any:
        try:
            return self.model.model_validate_json(s)
        except ValidationError as exc:
            reason = describe_validation_error(exc)
            raise EventDecodeError(
                reason, stage="decode" if reason.startswith("invalid JSON") else "validate"
            ) from None


CODEC_NAME = "citystream"
CODECS: dict[str, type[BaseModel]] = {
    "citystream.traffic": TrafficReading,
    "citystream.drone": DroneTelemetry,
    "citystream.energy": EnergyReading,
    "citystream.alert": Alert,
    "citystream.aggregate": Aggregate,
}


def codec_name(model: type[BaseModel]) -> str:
    """Return the registered codec name of a schema."""
    return next(name for name, m in CODECS.items() if m is model)


def register_codec() -> None:
    """Register one codec per schema with Faust (idempotent)."""
    for name, model in CODECS.items():
        codecs.register(name, ModelCodec(model))


_EVENT_CODECS: dict[Domain, ModelCodec] = {domain: ModelCodec(model) for domain, model in MODEL_BY_DOMAIN.items()}
