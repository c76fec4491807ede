"""Query areas given at the edge: a bounding box or a GeoJSON polygon, checked before any lookup."""

from __future__ import annotations

import json
import math
from typing import Any, TypeAlias, cast

import shapely
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, Polygon, box, shape
from shapely.validation import explain_validity

from geo.exceptions import InvalidAreaError, InvalidCoordinateError
from geo.zones import check_coordinates

Area: TypeAlias = Polygon | MultiPolygon


def parse_bbox(text: str) -> Area:
    """Return the box `minlon,minlat,maxlon,maxlat` as a polygon, or raise InvalidAreaError saying what is wrong."""
    parts = text.split(",")
    if len(parts) != 4:
        raise InvalidAreaError(f"bbox {text!r} must be 4 numbers: minlon,minlat,maxlon,maxlat")
    try:
        minlon, minlat, maxlon, maxlat = (float(p) for p in parts)
    except ValueError:
        raise InvalidAreaError(f"bbox {text!r} must be 4 numbers: minlon,minlat,maxlon,maxlat") from None
    try:
        check_coordinates(minlon, minlat)
        check_coordinates(maxlon, maxlat)
    except InvalidCoordinateError as exc:
        raise InvalidAreaError(f"bbox {text!r}: {exc}") from None
    if minlon > maxlon or minlat > maxlat:
        raise InvalidAreaError(f"bbox {text!r}: min must not exceed max (minlon,minlat,maxlon,maxlat)")
    return cast(Polygon, box(minlon, minlat, maxlon, maxlat))


def parse_polygon(text: str) -> Area:
    """Return a GeoJSON Polygon or MultiPolygon geometry as shapely, or raise InvalidAreaError saying what is wrong."""
    try:
        data: Any = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidAreaError(f"polygon is not JSON: {exc}") from None
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = data.get("geometry")
    if not isinstance(data, dict) or data.get("type") not in ("Polygon", "MultiPolygon"):
        found = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise InvalidAreaError(f"polygon must be a GeoJSON Polygon or MultiPolygon geometry, got {found!r}")
    coordinates = data.get("coordinates")
    polygons = [coordinates] if data["type"] == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons:
        raise InvalidAreaError("polygon has no coordinates")
    for polygon in polygons:
        _check_rings(polygon)
    try:
        area = shapely.force_2d(shape(data))
    except (ValueError, TypeError, AttributeError, IndexError, GEOSException) as exc:
        raise InvalidAreaError(f"polygon is unreadable: {exc}") from None
    if not area.is_empty and not shapely.is_valid(area):
        raise InvalidAreaError(f"polygon is invalid: {explain_validity(area)}")
    if area.is_empty or area.area == 0:
        raise InvalidAreaError("polygon encloses no area")
    return cast(Area, area)


def _check_rings(polygon: Any) -> None:
    if not isinstance(polygon, list) or not polygon:
        raise InvalidAreaError("a polygon needs at least one ring of [lon, lat] positions")
    for ring in polygon:
        if not isinstance(ring, list) or len(ring) < 4:
            raise InvalidAreaError("a ring needs at least 4 positions (the first repeated at the end)")
        for position in ring:
            if not isinstance(position, list) or len(position) not in (2, 3):
                raise InvalidAreaError(f"position {position!r} is not [lon, lat]")
            try:
                check_coordinates(position[0], position[1])
            except InvalidCoordinateError as exc:
                raise InvalidAreaError(f"polygon: {exc}") from None
            if len(position) == 3 and (isinstance(position[2], bool) or not _finite(position[2])):
                raise InvalidAreaError(f"position {position!r}: altitude is not a finite number")
        if ring[0][:2] != ring[-1][:2]:
            raise InvalidAreaError("a ring is not closed (its first and last positions differ)")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
