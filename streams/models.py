"""The one schema, end to end: Kafka values, the JSON kept in Redis and the API's responses.

Units are in the field names; ranges are the physically possible ones, so a value outside them is
a broken gateway, not a city event.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

MAX_CLOCK_AHEAD = timedelta(hours=1)
MAX_EVENT_AGE = timedelta(days=366)
_AHEAD_S, _AGE_S = MAX_CLOCK_AHEAD.total_seconds(), MAX_EVENT_AGE.total_seconds()

SourceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class Domain(StrEnum):
    """The three sensor domains."""

    traffic = "traffic"
    drone = "drone"
    energy = "energy"


class Severity(StrEnum):
    """smart-data-models Alert severities, least to most urgent."""

    informational = "informational"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class AlertStatus(StrEnum):
    """The alert lifecycle: open -> acknowledged -> resolved."""

    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class DroneStatus(StrEnum):
    """ASTM F3411 Remote ID operational status."""

    ground = "ground"
    airborne = "airborne"
    emergency = "emergency"
    remote_id_failure = "remote_id_failure"


class SensorEvent(BaseModel):
    """Fields every sensor event shares: when and where it was observed."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    observed_at: AwareDatetime
    lat: Latitude
    lon: Longitude

    @field_validator("observed_at")
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        # In UTC first: timestamp() of the stdlib's UTC is 2.5 times as fast as of the parser's zone, and
        # observed_ms reads it again. Epoch seconds: datetime.now() per event was 4% of a worker.
        utc = value.astimezone(UTC)
        at, now = utc.timestamp(), time.time()
        if at > now + _AHEAD_S:
            raise ValueError(f"observed_at is more than {MAX_CLOCK_AHEAD} ahead of the clock: fix the gateway clock")
        if at < now - _AGE_S:
            raise ValueError(f"observed_at is older than {MAX_EVENT_AGE.days} days")
        return utc

    @property
    def source_id(self) -> str:
        """Return the id of the sensor that sent this event (its per-source state is kept under it)."""
        raise NotImplementedError

    @property
    def partition_key(self) -> str:
        """Return the Kafka key: events with one key sit in one partition, applied in log order."""
        return self.source_id

    @cached_property
    def observed_ms(self) -> int:
        """Return observed_at as epoch milliseconds."""
        return int(self.observed_at.timestamp() * 1000)


class TrafficReading(SensorEvent):
    """One loop detector's reading for one lane over its reporting interval (PeMS/DATEX II style)."""

    sensor_id: SourceId
    road_segment: str = Field(min_length=1, max_length=64)
    lane: int = Field(ge=1, le=16)
    vehicle_count: int = Field(ge=0, le=10_000)
    avg_speed_kmh: float = Field(ge=0, le=300)
    occupancy: float = Field(ge=0, le=1)
    interval_s: int = Field(30, ge=1, le=3600)

    @property
    def source_id(self) -> str:
        """Return the detector id."""
        return self.sensor_id

    @property
    def partition_key(self) -> str:
        """Return the road segment: its detectors share a partition, so the incident rule reads neighbours exactly."""
        return self.road_segment


class DroneTelemetry(SensorEvent):
    """One Remote ID location message (ASTM F3411)."""

    drone_id: SourceId
    altitude_m: float = Field(ge=-1000, le=10_000, description="geodetic altitude, WGS84 ellipsoid")
    height_agl_m: float = Field(ge=-1000, le=10_000, description="height above ground")
    speed_h_mps: float = Field(ge=0, le=255)
    speed_v_mps: float = Field(ge=-63, le=63)
    heading_deg: float = Field(ge=0, le=361, description="361 means unknown, as in Remote ID")
    status: DroneStatus
    operator_id: str = Field(min_length=1, max_length=64)

    @property
    def source_id(self) -> str:
        """Return the UAS id."""
        return self.drone_id


class EnergyReading(SensorEvent):
    """One smart-meter reading (smart-data-models ACMeasurement style)."""

    meter_id: SourceId
    feeder_id: str = Field(min_length=1, max_length=64)
    active_power_kw: float = Field(ge=-10_000, le=10_000)
    energy_kwh: float = Field(ge=0, le=1e9, description="cumulative import counter")
    voltage_v: float = Field(ge=0, le=1000)
    current_a: float = Field(ge=0, le=10_000)
    frequency_hz: float = Field(ge=0, le=100)
    power_factor: float = Field(ge=-1, le=1)

    @property
    def source_id(self) -> str:
        """Return the meter id."""
        return self.meter_id


SensorEventT = TrafficReading | DroneTelemetry | EnergyReading

MODEL_BY_DOMAIN: dict[Domain, type[SensorEvent]] = {
    Domain.traffic: TrafficReading,
    Domain.drone: DroneTelemetry,
    Domain.energy: EnergyReading,
}


class GeoPoint(BaseModel):
    """A GeoJSON point, `[lon, lat]`."""

    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float]


class AlertBase(BaseModel):
    """What a detector says about one episode of one condition at one source."""

    model_config = ConfigDict(allow_inf_nan=False)

    id: str
    domain: Domain
    kind: str
    severity: Severity
    status: AlertStatus = AlertStatus.open
    source_id: str
    zone_id: str | None = None
    location: GeoPoint | None = None
    measured_value: float | None = None
    expected_value: float | None = None
    threshold: float | None = None
    threshold_type: Literal["UPPER", "LOWER"] | None = None
    unit: str | None = None
    description: str = ""
    first_seen: datetime
    last_seen: datetime
    count: int = Field(1, ge=1)
    resolved_at: datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class Alert(AlertBase):
    """An alert as stored in Redis, sent on `citystream.alerts` and served by the API."""


class AlertPage(BaseModel):
    """One page of alerts and the cursor of the next one (None at the end)."""

    items: list[Alert]
    next_cursor: str | None = None


class Aggregate(BaseModel):
    """One metric of one zone (or one group: `meter:<id>`, `feeder:<id>`) over one tumbling event-time window."""

    domain: Domain
    metric: str
    zone_id: str = Field(description="a zone id, or a group id `meter:<id>` / `feeder:<id>` for settlement windows")
    window_start: datetime
    window_end: datetime
    value: float
    unit: str
    samples: int


class AggregatePage(BaseModel):
    """Aggregates answering one query, oldest window first."""

    items: list[Aggregate]


class Corridor(BaseModel):
    """One grid cell's drone traffic over one window: a busy corridor when it ranks high."""

    cell_id: str = Field(description="`cell<size m>:<row>:<column>`")
    bounds: tuple[float, float, float, float] = Field(description="west, south, east, north in degrees")
    window_start: datetime
    window_end: datetime
    fixes: int = Field(description="airborne fixes in the cell")
    drones_airborne: int
    violations: int = Field(description="rule alerts opened by fixes in the cell")


class CorridorPage(BaseModel):
    """The busiest cells of each window, oldest window first, busiest cell first."""

    items: list[Corridor]


def alert_id(kind: str, source_id: str, episode_start: datetime, scope: str = "") -> str:
    """Derive an alert id from rule, source and episode, so a replayed event finds the same alert."""
    raw = f"{kind}|{source_id}|{scope}|{episode_start.astimezone(UTC).isoformat()}"
    return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()[:20]
