"""Operators' alerts: list, counts, live stream, one alert, its history, and the actions on it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from api.auth import require
from api.deps import CurrentPrincipal, KeysDep, OptionsDep, RedisDep, StreamRedisDep
from api.exceptions import BadRequestError
from api.models import Action, AlertCounts, AlertRead, AlertReadPage, AssignBody, HistoryEntry, NoteBody
from api.roles import Role
from api.services.alert_pages import alerts_page_json
from api.services.alert_stream import alert_events, start_position
from api.services.alerts import ACTIVE, AlertFilter, SortField, SortOrder, count_alerts, get_alert
from api.services.lifecycle import act, history
from streams.models import AlertStatus, Domain, Severity

router = APIRouter(prefix="/alerts", tags=["alerts"], dependencies=[Depends(require(Role.operator))])

AlertId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such alert"}}


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


async def alert_filter(
    domain: Domain | None = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    severity: Annotated[list[Severity] | None, Query(description="repeat to allow several")] = None,
    status: Annotated[
        list[AlertStatus] | None, Query(description="repeat to allow several; default: open and acknowledged")
    ] = None,
    zone: Annotated[str | None, Query(max_length=64)] = None,
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query(description="last seen at or after (ISO 8601, UTC if no zone)")] = None,
    until: Annotated[datetime | None, Query(description="first seen at or before this time (ISO 8601)")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=64, description="text in the source id")] = None,
    include_snoozed: Annotated[bool, Query(description="also show snoozed alerts, with snoozed_until")] = False,
    fold: Annotated[bool, Query(description="fold the recent episodes of a flapping rule+source into one row")] = True,
) -> AlertFilter:
    """Return the filter the query parameters describe (status None: the caller picks the default)."""
    since, until = _utc(since), _utc(until)
    if since and until and since > until:
        raise BadRequestError(f"since ({since.isoformat()}) is after until ({until.isoformat()})")
    return AlertFilter(
        domain=domain,
        kind=kind,
        severity=frozenset(severity) if severity else None,
        status=frozenset(status) if status else None,
        zone_id=zone,
        assignee=assignee,
        since=since,
        until=until,
        text=q,
        include_snoozed=include_snoozed,
        fold=fold,
    )


Filter = Annotated[AlertFilter, Depends(alert_filter)]


def _active_by_default(flt: AlertFilter) -> AlertFilter:
    return flt if flt.status else replace(flt, status=ACTIVE)


@router.get("", response_model=AlertReadPage)
async def alerts(
    request: Request,
    redis: RedisDep,
    keys: KeysDep,
    options: OptionsDep,
    flt: Filter,
    sort: SortField = SortField.first_seen,
    order: SortOrder = SortOrder.desc,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
) -> Response:
    """List alerts (default: active ones, newest first)."""
    # Written as JSON by the service (rows' JSON cached with them), so FastAPI's validation is skipped.
    cache = request.app.state.alert_pages
    page, request.state.fresh_until = await alerts_page_json(
        redis, keys, options, cache, _active_by_default(flt), limit, cursor, sort, order
    )
    return Response(page, media_type="application/json")


@router.get("/counts", response_model=AlertCounts)
async def counts(redis: RedisDep, keys: KeysDep, options: OptionsDep, flt: Filter) -> AlertCounts:
    """Count the rows the list shows for these filters, per severity."""
    return await count_alerts(redis, keys, options, _active_by_default(flt))


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "alert changes as Server-Sent Events"}},
)
async def stream(
    redis: StreamRedisDep,
    keys: KeysDep,
    options: OptionsDep,
    flt: Filter,
    last_event_id: Annotated[str | None, Header(max_length=64, description="resume after this entry id")] = None,
) -> StreamingResponse:
    """Push each change of a matching alert (default: any status, so clients see alerts leave the active set)."""
    cursor = await start_position(redis, keys, last_event_id)
    return StreamingResponse(
        alert_events(redis, keys, options, flt, cursor),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/{alert_id}", response_model=AlertRead, responses=NOT_FOUND)
async def alert(alert_id: AlertId, redis: RedisDep, keys: KeysDep, options: OptionsDep) -> AlertRead:
    """Return one alert."""
    return await get_alert(redis, keys, options, alert_id)


@router.get("/{alert_id}/history", response_model=list[HistoryEntry], responses=NOT_FOUND)
async def alert_history(alert_id: AlertId, redis: RedisDep, keys: KeysDep) -> list[HistoryEntry]:
    """Return every change of the alert with who and when, oldest first."""
    return await history(redis, keys, alert_id)


ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    409: {"description": "not possible in the alert's current state"},
}


@router.post("/{alert_id}/ack", response_model=AlertRead, responses=ACTION_RESPONSES)
async def acknowledge(
    alert_id: AlertId, redis: RedisDep, keys: KeysDep, options: OptionsDep, who: CurrentPrincipal
) -> AlertRead:
    """Acknowledge an open alert (again: no change)."""
    await act(redis, keys, alert_id, Action.ack, who.name)
    return await get_alert(redis, keys, options, alert_id)


@router.post("/{alert_id}/resolve", response_model=AlertRead, responses=ACTION_RESPONSES)
async def resolve(
    alert_id: AlertId, redis: RedisDep, keys: KeysDep, options: OptionsDep, who: CurrentPrincipal
) -> AlertRead:
    """Resolve an open or acknowledged alert (again: no change)."""
    await act(redis, keys, alert_id, Action.resolve, who.name)
    return await get_alert(redis, keys, options, alert_id)


@router.post("/{alert_id}/assign", response_model=AlertRead, responses=ACTION_RESPONSES)
async def assign(
    alert_id: AlertId, body: AssignBody, redis: RedisDep, keys: KeysDep, options: OptionsDep, who: CurrentPrincipal
) -> AlertRead:
    """Assign an unresolved alert to an operator (the same one again: no change)."""
    await act(redis, keys, alert_id, Action.assign, who.name, body.operator)
    return await get_alert(redis, keys, options, alert_id)


@router.post("/{alert_id}/notes", response_model=AlertRead, responses=NOT_FOUND)
async def add_note(
    alert_id: AlertId, body: NoteBody, redis: RedisDep, keys: KeysDep, options: OptionsDep, who: CurrentPrincipal
) -> AlertRead:
    """Keep a note with an alert, in any state."""
    await act(redis, keys, alert_id, Action.note, who.name, body.text)
    return await get_alert(redis, keys, options, alert_id)
