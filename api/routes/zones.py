"""The city's zones as GeoJSON, and the airspace fences an admin replaces at run time."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Depends

from api.auth import require
from api.deps import KeysDep, RedisDep, ZonesDep
from api.roles import Role
from api.services.zones import current_zones, replace_fences
from processors.drone.airspace import AirspaceKind

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
