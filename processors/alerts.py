"""Build alerts with their evidence; the id comes from rule + source + episode start."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from streams.models import Alert, AlertStatus, Domain, GeoPoint, SensorEvent, Severity, alert_id


def ms_to_dt(ms: int) -> datetime:
    """Return an aware UTC datetime for epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def episode_alert(
    *,
    kind: str,
    domain: Domain,
    severity: Severity,
    event: SensorEvent,
    zone_id: str | None,
    episode: dict[str, Any],
    measured_value: float,
    threshold: float,
    threshold_type: Literal["UPPER", "LOWER"],
    unit: str,
    description: str,
    expected_value: float | None = None,
    resolved: bool = False,
    scope: str = "",
    data: dict[str, Any] | None = None,
) -> Alert:
    """Return the current version of the alert for one episode (state: start_ms, count)."""
    start = ms_to_dt(episode["start_ms"])
    return Alert(
        id=alert_id(kind, event.source_id, start, scope),
        domain=domain,
        kind=kind,
        severity=severity,
        status=AlertStatus.resolved if resolved else AlertStatus.open,
        source_id=event.source_id,
        zone_id=zone_id,
        location=GeoPoint(coordinates=(event.lon, event.lat)),
        measured_value=measured_value,
        expected_value=expected_value,
        threshold=threshold,
        threshold_type=threshold_type,
        unit=unit,
        description=description,
        first_seen=start,
        last_seen=event.observed_at,
        count=episode["count"],
        resolved_at=event.observed_at if resolved else None,
        data=data or {},
    )
