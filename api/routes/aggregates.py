"""Window aggregates per zone, for planners and for the operators' dashboard."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.auth import require
from api.deps import SettingsDep, WindowStoresDep, ZonesDep
from api.exceptions import BadRequestError, UnknownMetricError, UnknownWindowError
from api.models import ZoneAggregate, ZoneAggregatePage
from api.roles import Role
from api.services.aggregate_formats import to_csv, to_geojson
from api.services.aggregates import (
    AggregateQuery,
    aggregate_page_json,
    query_aggregates,
    query_by_zone,
    query_corridors,
)
from geo.areas import parse_bbox, parse_polygon
from geo.zones import ZoneIndex
from processors.metrics import METRIC_NAMES
from processors.outcome import UNZONED
from streams.models import Aggregate, AggregatePage, CorridorPage, Domain
from streams.settings import WorkerSettings

router = APIRouter(
    prefix="/aggregates", tags=["aggregates"], dependencies=[Depends(require(Role.operator, Role.planner))]
)

# Groups that are not districts: a meter, a feeder, a traffic detector, a drone corridor grid cell.
GROUP_ID = re.compile(r"^((meter|feeder|sensor):\S{1,64}|cell\d{1,5}:-?\d{1,9}:-?\d{1,9})$")
FLAT_COLUMNS = tuple(Aggregate.model_fields)  # the CSV header: the JSON item's fields, in order
ZONE_COLUMNS = tuple(ZoneAggregate.model_fields)
GEOJSON_SCHEMA = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array"}},
}
FORMATS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`format=json`: windows (AggregatePage), or per zone with `group_by=zone` or `top` "
        "(ZoneAggregatePage); `format=csv`: the same rows with a header; `format=geojson`: zone polygons",
        "content": {"text/csv": {"schema": {"type": "string"}}, "application/geo+json": {"schema": GEOJSON_SCHEMA}},
    }
}


@router.get("", response_model=AggregatePage | ZoneAggregatePage, responses=FORMATS)
async def aggregates(
    stores: WindowStoresDep,
    settings: SettingsDep,
    zone_index: ZonesDep,
    domain: Domain | None = None,
    metric: Annotated[str | None, Query(max_length=64)] = None,
    zone: Annotated[
        str | None,
        Query(
            max_length=80,
            description="a district id, `unzoned`, `meter:<id>` / `feeder:<id>` (settlement), `sensor:<id>`, "
            "`cell500:<row>:<column>`",
        ),
    ] = None,
    window: Annotated[int, Query(description="window size in seconds (60, 900, 3600: see /aggregates/windows)")] = 60,
    start: Annotated[
        datetime | None, Query(alias="from", description="windows starting at or after (ISO 8601, UTC if no offset)")
    ] = None,
    end: Annotated[datetime | None, Query(alias="to", description="windows starting before (ISO 8601)")] = None,
    bbox: Annotated[
        str | None, Query(max_length=200, description="`minlon,minlat,maxlon,maxlat`: the districts intersecting it")
    ] = None,
    polygon: Annotated[
        str | None,
        Query(
            max_length=8000,
            description="GeoJSON Polygon or MultiPolygon (URL-encoded, <= 8,000 characters): the districts it touches",
        ),
    ] = None,
    group_by: Annotated[
        Literal["zone"] | None, Query(description="`zone`: combine each zone's windows over the time range")
    ] = None,
    top: Annotated[
        int | None, Query(ge=1, le=1000, description="the N zones with the highest `metric` (needs metric)")
    ] = None,
    fmt: Annotated[Literal["json", "csv", "geojson"], Query(alias="format")] = "json",
    limit: Annotated[int, Query(ge=1, le=50_000)] = 5000,
) -> Response:
    """Return window metrics of zones (or meters and feeders), oldest window first; or per zone over the range."""
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
    if top is not None and metric is None:
        raise BadRequestError("top=N ranks zones by one metric: add metric= (see /aggregates/windows for domains)")
    start, end = _utc(start), _utc(end)
    if start and end and start > end:
        raise BadRequestError(f"from ({start.isoformat()}) is after to ({end.isoformat()})")
    query = AggregateQuery(
        domains=tuple(domains),
        metric=metric,
        zones=selected_zones(zone_index, zone, bbox, polygon),
        start_ms=start.timestamp() * 1000 if start else None,
        end_ms=end.timestamp() * 1000 if end else None,
    )
    store = stores[window]
    items: list[Aggregate] | list[ZoneAggregate]
    if group_by == "zone" or top is not None:
        items = await query_by_zone(store, query, top)
        page: AggregatePage | ZoneAggregatePage = ZoneAggregatePage(items=items)
        columns = ZONE_COLUMNS
    elif fmt == "json":
        return Response(await aggregate_page_json(store, query, limit), media_type="application/json")
    else:
        items = await query_aggregates(store, query, limit)
        page = AggregatePage(items=items)
        columns = FLAT_COLUMNS
    if fmt == "csv":
        return Response(to_csv(items, columns), media_type="text/csv; charset=utf-8")
    if fmt == "geojson":
        return Response(orjson.dumps(to_geojson(items, zone_index)), media_type="application/geo+json")
    return Response(page.model_dump_json(), media_type="application/json")


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


def selected_zones(
    zone_index: ZoneIndex, zone: str | None, bbox: str | None, polygon: str | None
) -> frozenset[str] | None:
    """Return the zone ids a query names (None: every zone and group); refuse unknown zones and bad areas."""
    if bbox is not None and polygon is not None:
        raise BadRequestError("give bbox or polygon, not both")
    chosen: frozenset[str] | None = None
    if zone is not None:
        district = zone_index.get(zone)
        if zone != UNZONED and not GROUP_ID.match(zone) and (district is None or district.kind != "district"):
            known = ", ".join(z.id for z in zone_index.zones("district"))
            raise BadRequestError(
                f"no district {zone!r}; districts: {known}; or `{UNZONED}`, `meter:<id>`, `feeder:<id>`, "
                "`sensor:<id>`, `cell500:<row>:<column>`"
            )
        chosen = frozenset({zone})
    if bbox is not None or polygon is not None:
        area = parse_bbox(bbox) if bbox is not None else parse_polygon(polygon or "")
        inside = frozenset(z.id for z in zone_index.zones_intersecting(area, "district"))
        chosen = inside if chosen is None else chosen & inside
    return chosen


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment
