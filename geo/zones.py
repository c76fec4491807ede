"""Zones of the pilot area (districts, no-fly and restricted airspace) and a spatial index over them.

Coordinates are `[lon, lat]` WGS84 everywhere; geometry is planar in degrees, as GeoJSON draws it.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, cast, get_args

import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, shape
from shapely.validation import explain_validity

from geo.exceptions import GeoError, InvalidCoordinateError, InvalidZoneError

ZoneKind = Literal["district", "nofly", "restricted"]
ZONE_KINDS: tuple[ZoneKind, ...] = get_args(ZoneKind)
BINHAIWAN_ZONES_FILE = Path(__file__).resolve().parent / "data" / "binhaiwan_zones.geojson"
_ZONE_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
# `district_ids` answers a point from a cache of grid cells (1/CELLS_PER_DEG degrees square, about 200 m here)
# that lie inside one district and touch no other, or touch none: a dict lookup instead of a tree query, whose
# fixed cost (about 70 us a call) was most of a live fetch's zone lookups, a few points per partition. Points in
# other cells (an edge, an overlap) take the exact query. The cache stops growing at DISTRICT_CELLS_MAX cells.
CELLS_PER_DEG = 500
DISTRICT_CELLS_MAX = 65_536
_MIXED = -1  # a cached cell whose points need the exact query


@dataclass(frozen=True)
class Zone:
    """One named area: a district, or airspace where drones may not (or only carefully) fly."""

    id: str
    name: str
    kind: ZoneKind
    geometry: Polygon | MultiPolygon
    floor_m: float | None = None
    ceiling_m: float | None = None
    properties: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def covers_height(self, height_m: float) -> bool:
        """Return whether a height above ground lies between the zone's floor and ceiling."""
        above_floor = self.floor_m is None or height_m >= self.floor_m
        below_ceiling = self.ceiling_m is None or height_m <= self.ceiling_m
        return above_floor and below_ceiling

    def to_feature(self) -> dict[str, Any]:
        """Return the zone as a GeoJSON Feature with its properties."""
        properties = {**self.properties, "id": self.id, "name": self.name, "kind": self.kind}
        for key, value in (("floor_m", self.floor_m), ("ceiling_m", self.ceiling_m)):
            if value is not None:
                properties[key] = value
        geometry = json.loads(shapely.to_geojson(self.geometry))
        return {"type": "Feature", "id": self.id, "properties": properties, "geometry": geometry}


def check_coordinates(lon: float, lat: float) -> None:
    """Raise InvalidCoordinateError unless lon is in [-180, 180] and lat in [-90, 90], both finite."""
    if type(lon) is float and type(lat) is float and -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0:
        return  # the common case, at once (NaN fails the comparisons, infinities the ranges: both go below)
    for axis, value, limit in (("longitude", lon, 180), ("latitude", lat, 90)):
        kind = type(value)  # float and int first: the abstract-class check costs more than the rest
        if kind is not float and kind is not int and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise InvalidCoordinateError(f"{axis} {value!r} is not a number")
        if not math.isfinite(value) or not -limit <= value <= limit:
            raise InvalidCoordinateError(
                f"{axis} {value!r} out of range [-{limit}, {limit}] (coordinates are [lon, lat])"
            )


def load_zones(source: str | Path | dict[str, Any]) -> list[Zone]:
    """Parse and validate a GeoJSON FeatureCollection (a path, GeoJSON text, or a parsed dict)."""
    return parse_collection(source, "zone", InvalidZoneError, _parse_feature, ": set CITY_ZONES_FILE")


class _HasId(Protocol):
    @property
    def id(self) -> str:
        """Return the feature's id."""
        ...


_Item = TypeVar("_Item", bound=_HasId)


def parse_collection(
    source: str | Path | dict[str, Any],
    what: str,
    error: type[InvalidZoneError],
    parse_feature: Callable[[int, Any], _Item],
    unreadable_hint: str = "",
) -> list[_Item]:
    """Parse a GeoJSON FeatureCollection of `what`s (zones, fences) feature by feature, refusing duplicate ids."""
    data = read_geojson(source, what, error, unreadable_hint)
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise error(f"{what} source is not a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list):
        raise error(f"{what} FeatureCollection has no 'features' list")
    items: list[_Item] = []
    first_index: dict[str, int] = {}
    for index, feature in enumerate(features):
        item = parse_feature(index, feature)
        if item.id in first_index:
            raise error(f"feature {index} ({item.id!r}): duplicate id, also feature {first_index[item.id]}")
        first_index[item.id] = index
        items.append(item)
    return items


def read_geojson(
    source: str | Path | dict[str, Any], what: str, error: type[InvalidZoneError], unreadable_hint: str = ""
) -> Any:
    """Return the parsed JSON of a path, GeoJSON text or dict, or raise `error` saying what is wrong."""
    if isinstance(source, dict):
        return source
    if isinstance(source, str) and source.lstrip().startswith("{"):
        text, origin = source, f"{what} GeoJSON text"
    else:
        path = Path(source)
        try:
            text, origin = path.read_text(encoding="utf-8"), f"{what} file {path}"
        except OSError as exc:
            raise error(f"{what} file {path} unreadable ({exc.strerror}){unreadable_hint}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{origin} is not JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from exc


def _parse_feature(index: int, feature: Any) -> Zone:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise InvalidZoneError(f"feature {index}: not a GeoJSON Feature")
    properties = feature.get("properties") or {}
    if not isinstance(properties, dict):
        raise InvalidZoneError(f"feature {index}: properties must be an object")
    zone_id = properties.get("id", feature.get("id"))
    if not isinstance(zone_id, str) or not _ZONE_ID.match(zone_id):
        raise InvalidZoneError(f"feature {index}: id {zone_id!r} is missing or not kebab-case")
    label = f"feature {index} ({zone_id!r})"
    kind = properties.get("kind")
    if kind not in ZONE_KINDS:
        raise InvalidZoneError(f"{label}: unknown kind {kind!r}, expected one of {', '.join(ZONE_KINDS)}")
    name = properties.get("name", zone_id)
    if not isinstance(name, str) or not name.strip():
        raise InvalidZoneError(f"{label}: name must be a non-empty string")
    floor_m, ceiling_m = _height(label, properties, "floor_m"), _height(label, properties, "ceiling_m")
    if floor_m is not None and ceiling_m is not None and floor_m >= ceiling_m:
        raise InvalidZoneError(f"{label}: floor_m {floor_m} must be below ceiling_m {ceiling_m}")
    geometry = _parse_geometry(label, feature.get("geometry"))
    return Zone(zone_id, name, cast(ZoneKind, kind), geometry, floor_m, ceiling_m, dict(properties))


def _height(label: str, properties: dict[str, Any], key: str) -> float | None:
    value = properties.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise InvalidZoneError(f"{label}: {key} must be a finite number of metres >= 0, got {value!r}")
    return float(value)


def _parse_geometry(label: str, geometry: Any) -> Polygon | MultiPolygon:
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        found = geometry.get("type") if isinstance(geometry, dict) else geometry
        raise InvalidZoneError(f"{label}: geometry must be a Polygon or MultiPolygon, got {found!r}")
    coordinates = geometry.get("coordinates")
    polygons = [coordinates] if geometry["type"] == "Polygon" else coordinates
    if not isinstance(polygons, list | tuple) or not polygons:
        raise InvalidZoneError(f"{label}: geometry has no coordinates")
    for polygon in polygons:
        _check_rings(label, polygon)
    try:
        parsed = shapely.force_2d(shape(geometry))
    except (ValueError, TypeError, GEOSException) as exc:
        raise InvalidZoneError(f"{label}: unreadable geometry: {exc}") from exc
    if parsed.is_empty:
        raise InvalidZoneError(f"{label}: geometry is empty")
    if not shapely.is_valid(parsed):
        raise InvalidZoneError(f"{label}: invalid geometry: {explain_validity(parsed)}")
    return cast(Polygon | MultiPolygon, parsed)


def _check_rings(label: str, polygon: Any) -> None:
    if not isinstance(polygon, list | tuple) or not polygon:
        raise InvalidZoneError(f"{label}: a polygon needs at least one ring")
    for ring in polygon:
        if not isinstance(ring, list | tuple) or len(ring) < 4:
            raise InvalidZoneError(f"{label}: a ring needs at least 4 positions")
        for position in ring:
            if not isinstance(position, list | tuple) or len(position) not in (2, 3):
                raise InvalidZoneError(f"{label}: position {position!r} is not [lon, lat]")
            try:
                check_coordinates(position[0], position[1])
            except InvalidCoordinateError as exc:
                raise InvalidZoneError(f"{label}: {exc}") from exc
        if list(ring[0][:2]) != list(ring[-1][:2]):
            raise InvalidZoneError(f"{label}: ring is not closed (first and last positions differ)")


class ZoneIndex:
    """Answer which zones contain a point, through one STRtree per zone kind."""

    def __init__(self, zones: Iterable[Zone]) -> None:
        self._zones = list(zones)
        self._by_id: dict[str, Zone] = {}
        for zone in self._zones:
            if zone.id in self._by_id:
                raise InvalidZoneError(f"duplicate zone id {zone.id!r}")
            self._by_id[zone.id] = zone
        # Sorted by id, so the lowest tree index among matches is the lowest id: ties broken deterministically.
        self._sorted = {
            kind: sorted((z for z in self._zones if z.kind == kind), key=lambda z: z.id) for kind in ZONE_KINDS
        }
        self._trees = {kind: shapely.STRtree([z.geometry for z in group]) for kind, group in self._sorted.items()}
        self._district_cells: dict[tuple[int, int], int] = {}  # cell -> district index, len(districts): none
        self._district_geometries = np.array([z.geometry for z in self._sorted["district"]], dtype=object)
        shapely.prepare(self._district_geometries)  # the cells' containment tests

    @classmethod
    def from_file(cls, path: str | Path) -> ZoneIndex:
        """Build an index from a GeoJSON zone file."""
        return cls(load_zones(Path(path)))

    def __len__(self) -> int:
        return len(self._zones)

    def zones(self, kind: ZoneKind | None = None) -> list[Zone]:
        """Return the zones in file order, optionally only those of one kind."""
        wanted = None if kind is None else _check_kind(kind)
        return [z for z in self._zones if wanted is None or z.kind == wanted]

    def get(self, zone_id: str) -> Zone | None:
        """Return the zone with this id, or None."""
        return self._by_id.get(zone_id)

    def zones_at(self, lon: float, lat: float, kind: ZoneKind) -> list[Zone]:
        """Return the zones of one kind containing the point (boundary included), sorted by id."""
        check_coordinates(lon, lat)
        hits = self._trees[_check_kind(kind)].query(Point(lon, lat), predicate="intersects")
        return [self._sorted[kind][i] for i in sorted(hits)]

    def zones_on_path(self, lon1: float, lat1: float, lon2: float, lat2: float, kind: ZoneKind) -> list[Zone]:
        """Return the zones of one kind the straight path between two points touches, sorted by id."""
        check_coordinates(lon1, lat1)
        check_coordinates(lon2, lat2)
        path = LineString([(lon1, lat1), (lon2, lat2)]) if (lon1, lat1) != (lon2, lat2) else Point(lon1, lat1)
        hits = self._trees[_check_kind(kind)].query(path, predicate="intersects")
        return [self._sorted[kind][i] for i in sorted(hits)]

    def zones_intersecting(self, area: Polygon | MultiPolygon, kind: ZoneKind) -> list[Zone]:
        """Return the zones of one kind that intersect an area (boundary included), sorted by id."""
        hits = self._trees[_check_kind(kind)].query(area, predicate="intersects")
        return [self._sorted[kind][i] for i in sorted(hits)]

    def district_at(self, lon: float, lat: float) -> Zone | None:
        """Return the one district containing the point (lowest id on a shared edge), or None."""
        matches = self.zones_at(lon, lat, "district")
        return matches[0] if matches else None

    def district_ids(self, lons: Sequence[float] | np.ndarray, lats: Sequence[float] | np.ndarray) -> list[str | None]:
        """Return the district id of each point (lowest id on a shared edge), None outside every district."""
        districts = self._sorted["district"]
        return [districts[i].id if i < len(districts) else None for i in self._district_indices(lons, lats)]

    def _district_indices(self, lons: Sequence[float] | np.ndarray, lats: Sequence[float] | np.ndarray) -> list[int]:
        if isinstance(lons, np.ndarray) or isinstance(lats, np.ndarray) or len(lons) != len(lats):
            return self._district_indices_exact(lons, lats)
        cells = self._district_cells
        found: list[int] = []
        new: dict[tuple[int, int], list[int]] = {}  # cells not classified yet -> their points
        for i, (lon, lat) in enumerate(zip(lons, lats, strict=True)):
            try:
                check_coordinates(lon, lat)
            except InvalidCoordinateError:
                return self._district_indices_exact(lons, lats)  # raises naming the bad point's index
            key = (math.floor(lon * CELLS_PER_DEG), math.floor(lat * CELLS_PER_DEG))
            at = cells.get(key)
            if at is None:
                new.setdefault(key, []).append(i)
                at = _MIXED
            found.append(at)
        if new:
            for key, at in zip(new, self._classify_cells(list(new)), strict=True):
                for i in new[key]:
                    found[i] = at
        mixed = [i for i, at in enumerate(found) if at == _MIXED]
        if mixed:
            exact = self._district_indices_exact([lons[i] for i in mixed], [lats[i] for i in mixed])
            for i, at in zip(mixed, exact, strict=True):
                found[i] = at
        return found

    def _classify_cells(self, keys: list[tuple[int, int]]) -> list[int]:
        """Return (and cache) the district every point of each cell lies in, len(districts) for none, or _MIXED:
        a district only when it alone touches the cell and holds it in its interior."""
        pad = 1e-9  # degrees, far above the rounding of a point's cell: the box holds every point mapped to it
        ix = np.array([k[0] for k in keys], dtype=float)
        iy = np.array([k[1] for k in keys], dtype=float)
        boxes = shapely.box(
            ix / CELLS_PER_DEG - pad,
            iy / CELLS_PER_DEG - pad,
            (ix + 1) / CELLS_PER_DEG + pad,
            (iy + 1) / CELLS_PER_DEG + pad,
        )
        districts = self._sorted["district"]
        cell_idx, tree_idx = self._trees["district"].query(boxes, predicate="intersects")
        touching = np.bincount(cell_idx, minlength=len(keys))
        only = np.full(len(keys), -1, dtype=np.intp)
        only[cell_idx] = tree_idx  # the one district of a cell that one touches
        at = np.where(touching == 0, len(districts), _MIXED)
        single = np.flatnonzero(touching == 1)
        if len(single):
            inside = shapely.contains_properly(self._district_geometries[only[single]], boxes[single])
            at[single[inside]] = only[single[inside]]
        classes = cast(list[int], at.tolist())
        room = DISTRICT_CELLS_MAX - len(self._district_cells)
        if room > 0:
            self._district_cells.update(zip(keys[:room], classes[:room], strict=True))
        return classes

    def _district_indices_exact(
        self, lons: Sequence[float] | np.ndarray, lats: Sequence[float] | np.ndarray
    ) -> list[int]:
        lon_arr, lat_arr = np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)
        if lon_arr.ndim != 1 or lon_arr.shape != lat_arr.shape:
            raise InvalidCoordinateError(
                f"lons and lats must be 1-D of equal length, got {lon_arr.shape} and {lat_arr.shape}"
            )
        bad = ~(np.isfinite(lon_arr) & np.isfinite(lat_arr) & (np.abs(lon_arr) <= 180) & (np.abs(lat_arr) <= 90))
        if bad.any():
            first = int(np.argmax(bad))
            raise InvalidCoordinateError(
                f"point {first}: lon={float(lon_arr[first])} lat={float(lat_arr[first])} out of range or not finite"
            )
        districts = self._sorted["district"]
        best = np.full(len(lon_arr), len(districts), dtype=np.intp)
        if districts and len(lon_arr):
            point_idx, tree_idx = self._trees["district"].query(
                shapely.points(lon_arr, lat_arr), predicate="intersects"
            )
            np.minimum.at(best, point_idx, tree_idx)
        return cast(list[int], best.tolist())

    def to_geojson(self, kind: ZoneKind | None = None) -> dict[str, Any]:
        """Return the zones (optionally one kind) as a GeoJSON FeatureCollection."""
        return {"type": "FeatureCollection", "features": [z.to_feature() for z in self.zones(kind)]}


def _check_kind(kind: str) -> ZoneKind:
    if kind not in ZONE_KINDS:
        raise GeoError(f"unknown zone kind {kind!r}, expected one of {', '.join(ZONE_KINDS)}")
    return kind
