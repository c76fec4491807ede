"""Window aggregates per zone, for planners and for the operators' dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import require
from api.deps import SettingsDep, WindowStoresDep
from api.exceptions import UnknownMetricError, UnknownWindowError
from api.roles import Role
from api.services.aggregates import query_aggregates, query_corridors
from processors.metrics import METRIC_NAMES
from streams.models import AggregatePage, CorridorPage, Domain
from streams.settings import WorkerSettings

router = APIRouter(
    prefix="/aggregates", tags=["aggregates"], dependencies=[Depends(require(Role.operator, Role.planner))]
)


@router.get("", response_model=AggregatePage)
async def aggregates(
    stores: WindowStoresDep,
    settings: SettingsDep,
    domain: Domain | None = None,
    metric: str | None = None,
    zone: Annotated[
        str | None, Query(description="a zone id, or `meter:<id>` / `feeder:<id>` for settlement windows")
    ] = None,
    window: Annotated[int, Query(description="window size in seconds (60, 900, 3600: see /aggregates/windows)")] = 60,
    start: Annotated[
        datetime | None, Query(alias="from", description="windows starting at or after (ISO 8601)")
    ] = None,
    end: Annotated[datetime | None, Query(alias="to", description="windows starting before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=50_000)] = 5000,
) -> AggregatePage:
    """Return window metrics of zones (or meters and feeders), oldest window first."""
    sizes = window_sizes(settings.worker)
    domains = [d for d in ([domain] if domain else list(Domain)) if window in sizes[d]]
    if not domains:
        offered = ", ".join(f"{d.value} {sorted(sizes[d])}" for d in ([domain] if domain else list(Domain)))
        raise UnknownWindowError(f"no {window} s windows are kept; window sizes in seconds: {offered}")
    known = sorted({name for d in domains for name in METRIC_NAMES[d]})
    if metric is not None and metric not in known:
        raise UnknownMetricError(
            f"no metric {metric!r} for {domain or 'any domain'}; known metrics: {', '.join(known)}"
        )
    return AggregatePage(items=await query_aggregates(stores[window], domains, metric, zone, start, end, limit))


@router.get("/corridors", response_model=CorridorPage)
async def corridors(
    stores: WindowStoresDep,
    settings: SettingsDep,
    window: Annotated[int, Query(description="window size in seconds (drone group windows: 3600)")] = 3600,
    start: Annotated[
        datetime | None, Query(alias="from", description="windows starting at or after (ISO 8601)")
    ] = None,
    end: Annotated[datetime | None, Query(alias="to", description="windows starting before (ISO 8601)")] = None,
    top: Annotated[int, Query(ge=1, le=1000, description="cells per window")] = 10,
    windows: Annotated[int, Query(ge=1, le=168, description="the latest this many windows")] = 24,
) -> CorridorPage:
    """Return the busiest drone corridors: the grid cells with the most airborne fixes in each window."""
    kept = settings.worker.source_sizes(Domain.drone.value)
    if window not in kept:
        raise UnknownWindowError(f"no {window} s drone corridor windows are kept; kept: {list(kept)}")
    return CorridorPage(items=await query_corridors(stores[window], start, end, top, windows))


@router.get("/windows")
async def windows(settings: SettingsDep) -> dict[str, dict[str, list[int]]]:
    """Return the window sizes kept, per domain: per zone, and per meter/feeder group."""
    worker = settings.worker
    return {
        d.value: {"zone": list(worker.zone_sizes(d.value)), "group": list(worker.source_sizes(d.value))} for d in Domain
    }


def window_sizes(worker: WorkerSettings) -> dict[Domain, set[int]]:
    """Return every window size kept per domain (zones and groups)."""
    return {d: {*worker.zone_sizes(d.value), *worker.source_sizes(d.value)} for d in Domain}
