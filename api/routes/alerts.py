"""Operators' alerts: list with filters and cursor, and one alert by id."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import KeysDep, RedisDep
from api.services.alerts import AlertFilter, get_alert, list_alerts
from streams.models import Alert, AlertPage, AlertStatus, Domain, Severity

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get("", response_model=AlertPage)
async def alerts(
    redis: RedisDep,
    keys: KeysDep,
    domain: Domain | None = None,
    kind: str | None = None,
    severity: Annotated[list[Severity] | None, Query(description="repeat to allow several")] = None,
    status: Annotated[list[AlertStatus] | None, Query(description="repeat to allow several")] = None,
    zone: str | None = None,
    since: Annotated[datetime | None, Query(description="only alerts seen at or after this time (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> AlertPage:
    """List alerts, newest first."""
    flt = AlertFilter(
        domain=domain,
        kind=kind,
        severity=frozenset(severity) if severity else None,
        status=frozenset(status) if status else None,
        zone_id=zone,
        since=since,
    )
    return await list_alerts(redis, keys, flt, limit, cursor)


@router.get("/{alert_id}", response_model=Alert, responses={404: {"description": "no such alert"}})
async def alert(alert_id: str, redis: RedisDep, keys: KeysDep) -> Alert:
    """Return one alert."""
    return await get_alert(redis, keys, alert_id)
