"""The city's zones as GeoJSON, the airspace fences an admin replaces at run time, and a zone's latest figures."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path

from api.auth import require
from api.deps import KeysDep, RedisDep, SettingsDep, WindowStoresDep, ZonesDep
from api.exceptions import NotFoundError
from api.models import ZoneSummary
from api.roles import Role
from api.services.aggregates import latest_closed
from api.services.zones import current_zones, replace_fences
from processors.drone.airspace import AirspaceKind
from streams.models import Domain

router = APIRouter(prefix="/zones", tags=["zones"], dependencies=[Depends(require(Role.operator, Role.planner))])


@router.get("")
async def zones(
    redis: RedisDep,
    keys: KeysDep,
    zone_index: ZonesDep,
    kind: Literal["district", "nofly", "restricted", "operating_area"] | None = None,
) -> dict[str, Any]:
    """Return districts and the airspace fences in force as a GeoJSON FeatureCollection."""
    return await current_zones(redis, keys, zone_index, kind)


@router.put("/{kind}", dependencies=[Depends(require(Role.admin))])
async def put_zones(
    kind: AirspaceKind,
    redis: RedisDep,
    keys: KeysDep,
    zone_index: ZonesDep,
    body: dict[str, Any] = Body(..., description="a GeoJSON FeatureCollection of the fences of this kind"),  # noqa: B008
) -> dict[str, Any]:
    """Replace the fences of one kind (workers pick them up within seconds); an invalid one is 422 with the reason."""
    return await replace_fences(redis, keys, zone_index, kind, body)


@router.get("/{zone_id}/summary", response_model=ZoneSummary, responses={404: {"description": "no such zone"}})
async def zone_summary(
    zone_id: Annotated[str, Path(max_length=80)], zone_index: ZonesDep, stores: WindowStoresDep, settings: SettingsDep
) -> ZoneSummary:
    """Return the zone's latest closed window of every domain, in the finest window size."""
    zone = zone_index.get(zone_id)
    if zone is None:
        known = ", ".join(z.id for z in zone_index.zones())
        raise NotFoundError(f"no zone {zone_id!r}; zones: {known}")
    worker = settings.worker
    store = stores[worker.window_seconds]
    items = [agg for d in Domain for agg in await latest_closed(store, d, zone.id, worker.window_grace_s)]
    return ZoneSummary(zone_id=zone.id, name=zone.name, kind=zone.kind, window_s=worker.window_seconds, items=items)
