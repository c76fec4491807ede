"""The city's zones as GeoJSON."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends

from api.auth import require
from api.deps import ZonesDep
from api.roles import Role

router = APIRouter(prefix="/zones", tags=["zones"], dependencies=[Depends(require(Role.operator, Role.planner))])


@router.get("")
async def zones(zone_index: ZonesDep, kind: Literal["district", "nofly", "restricted"] | None = None) -> dict[str, Any]:
    """Return districts, no-fly and restricted areas as a GeoJSON FeatureCollection."""
    return zone_index.to_geojson(kind)
