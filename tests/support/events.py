"""One valid sensor event per domain, as a gateway would send it, for tests to vary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from streams.models import Domain

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)

VALID: dict[Domain, dict[str, Any]] = {
    Domain.traffic: {
        "sensor_id": "TLD-0001",
        "observed_at": NOW.isoformat(),
        "lat": 22.900,
        "lon": 113.640,
        "road_segment": "seg-1",
        "lane": 2,
        "vehicle_count": 12,
        "avg_speed_kmh": 48.5,
        "occupancy": 0.25,
    },
    Domain.drone: {
        "drone_id": "CN-UAS-0001",
        "observed_at": NOW.isoformat(),
        "lat": 22.850,
        "lon": 113.700,
        "altitude_m": 65.0,
        "height_agl_m": 60.0,
        "speed_h_mps": 8.0,
        "speed_v_mps": -1.5,
        "heading_deg": 180.0,
        "status": "airborne",
        "operator_id": "OP-DG-001",
    },
    Domain.energy: {
        "meter_id": "MTR-00001",
        "observed_at": NOW.isoformat(),
        "lat": 22.850,
        "lon": 113.790,
        "feeder_id": "FDR-7",
        "active_power_kw": 3.2,
        "energy_kwh": 1234.567,
        "voltage_v": 230.1,
        "current_a": 14.0,
        "frequency_hz": 50.0,
        "power_factor": 0.95,
    },
}


def valid_value(domain: Domain, **overrides: Any) -> dict[str, Any]:
    """Return a fresh valid event of the domain (observed five minutes ago) with some fields replaced."""
    return {**VALID[domain], **overrides}
