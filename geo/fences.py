"""Tile38-style drone geofences: fences with height bands and validity, a grid index, enter/exit/inside/cross.

Coordinates are `[lon, lat]` WGS84, heights metres above ground, times epoch milliseconds (UTC); a daily
window is wall-clock time in the fence's IANA time zone (default Asia/Shanghai). The index is a uniform
grid of square cells sized in metres through `LocalProjection`: each cell lists the fences overlapping it
and whether it lies wholly inside one, so most points are answered without a polygon test.
"""

from __future__ import annotations

import itertools
import math
import numbers
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, Polygon, shape

from geo.exceptions import InvalidCoordinateError, InvalidZoneError
from geo.metric import LocalProjection, buffer_m
from geo.zones import Zone, check_coordinates, parse_collection

FenceKind = Literal["no_fly", "restricted", "operating_area"]
FENCE_KINDS: tuple[FenceKind, ...] = get_args(FenceKind)
Detect = Literal["enter", "exit", "inside", "cross"]
DETECTS: tuple[Detect, ...] = get_args(Detect)
AlertReason = Literal["no_fly", "restricted", "left_operating_area", "above_max_height"]
ALERT_REASONS: tuple[AlertReason, ...] = get_args(AlertReason)
DEFAULT_TIMEZONE = "Asia/Shanghai"
UNKNOWN_HEIGHT_M = -1000.0  # Remote ID's "unknown" sentinel: such heights are treated as unknown (NaN)

_ENTER, _EXIT, _INSIDE, _CROSS = range(4)
_NO_FLY, _RESTRICTED, _OPERATING = range(3)
_DAY_S = 86_400
_T_MIN, _T_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
_MAX_CELLS = 1_000_000  # grid cells; the cell grows past `cell_m` rather than exceed this
_MAX_SEGMENT_CELLS = 256  # longer segments go through an STRtree instead of the grid
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_Ints = NDArray[np.intp]


class FenceError(InvalidZoneError, ValueError):
    """A fence, fence file or permit is unusable; the message names the feature and the reason."""


@dataclass(frozen=True)
class Validity:
    """When a fence or permit is in force: a time range [start, end) and/or a daily local window [from, to)."""

    start_ms: int | None = None
    end_ms: int | None = None
    daily_from_s: int | None = None
    daily_to_s: int | None = None
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        if self.start_ms is not None and self.end_ms is not None and self.start_ms >= self.end_ms:
            raise FenceError(f"bad time range: start {_iso(self.start_ms)} is not before end {_iso(self.end_ms)}")
        if (self.daily_from_s is None) != (self.daily_to_s is None):
            raise FenceError("bad daily window: it needs both a start and an end time")
        if self.daily_from_s is not None and self.daily_to_s is not None:
            if not (0 <= self.daily_from_s < _DAY_S and 0 <= self.daily_to_s < _DAY_S):
                raise FenceError("bad daily window: times must be within one day (00:00 to 23:59)")
            if self.daily_from_s == self.daily_to_s:
                raise FenceError("bad daily window: it starts and ends at the same time; omit it to mean all day")
        _time_zone(self.timezone)

    def active_at(self, t_ms: int) -> bool:
        """Return whether the validity is in force at an epoch-millisecond time."""
        return bool(_ValidityTable([self]).active(np.zeros(1, np.intp), np.array([t_ms], np.int64))[0])


# fence id -> operator ids holding a permit, or operator id -> when the permit is in force (None: always)
Permits = Mapping[str, Collection[str] | Mapping[str, Validity | None]]


@dataclass(frozen=True)
class Fence:
    """One geofence: a polygon, a kind, an optional height band and height limit, and optional validity."""

    id: str
    kind: FenceKind
    polygon: Polygon | MultiPolygon
    name: str = ""
    floor_m: float | None = None
    ceiling_m: float | None = None
    max_height_agl_m: float | None = None
    validity: Validity | None = None

    def __post_init__(self) -> None:
        if self.kind not in FENCE_KINDS:
            raise FenceError(f"fence {self.id!r}: unknown kind {self.kind!r}, expected one of {', '.join(FENCE_KINDS)}")
        if self.floor_m is not None and self.ceiling_m is not None and self.floor_m >= self.ceiling_m:
            raise FenceError(f"fence {self.id!r}: floor_m {self.floor_m} must be below ceiling_m {self.ceiling_m}")
        if not isinstance(self.polygon, Polygon | MultiPolygon) or self.polygon.is_empty:
            raise FenceError(f"fence {self.id!r}: geometry must be a non-empty Polygon or MultiPolygon")
        reason = shapely.is_valid_reason(self.polygon)
        if reason != "Valid Geometry":
            raise FenceError(f"fence {self.id!r}: invalid polygon: {reason}")

    def covers_height(self, height_m: float | None) -> bool:
        """Return whether a height above ground (None: unknown, counted as inside) is within the band."""
        if height_m is None or math.isnan(height_m):
            return True
        return (self.floor_m is None or height_m >= self.floor_m) and (
            self.ceiling_m is None or height_m <= self.ceiling_m
        )

    def active_at(self, t_ms: int) -> bool:
        """Return whether the fence is in force at an epoch-millisecond time."""
        return self.validity is None or self.validity.active_at(t_ms)


def load_fences(source: str | Path | dict[str, Any]) -> list[Fence]:
    """Parse and validate a GeoJSON FeatureCollection of fences (a path, GeoJSON text, or a parsed dict)."""
    return parse_collection(source, "fence", FenceError, _parse_feature)


def fences_from_zones(zones: Iterable[Zone]) -> list[Fence]:
    """Turn the no-fly and restricted zones of a zone file into fences (districts are not fences)."""
    kinds: dict[str, FenceKind] = {"nofly": "no_fly", "restricted": "restricted"}
    return [Fence(z.id, kinds[z.kind], z.geometry, z.name, z.floor_m, z.ceiling_m) for z in zones if z.kind in kinds]


def _parse_feature(index: int, feature: Any) -> Fence:
    """Return the fence of one Feature, or raise FenceError naming its index and id."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise FenceError(f"feature {index}: not a GeoJSON Feature")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise FenceError(f"feature {index}: properties must be an object")
    fence_id = props.get("id", feature.get("id"))
    if isinstance(fence_id, int) and not isinstance(fence_id, bool):
        fence_id = str(fence_id)
    if not isinstance(fence_id, str) or not fence_id.strip() or len(fence_id) > 128:
        raise FenceError(f"feature {index}: id {fence_id!r} is missing or not a string of 1-128 characters")
    label = f"feature {index} ({fence_id!r})"
    kind = props.get("kind")
    if kind not in FENCE_KINDS:
        raise FenceError(f"{label}: unknown kind {kind!r}, expected one of {', '.join(FENCE_KINDS)}")
    name = props.get("name", fence_id)
    if not isinstance(name, str):
        raise FenceError(f"{label}: name must be a string")
    heights = {key: _metres(label, props, key) for key in ("floor_m", "ceiling_m", "max_height_agl_m")}
    polygon = _parse_geometry(label, feature.get("geometry"))
    try:
        validity = _parse_validity(props)
        return Fence(fence_id, cast(FenceKind, kind), polygon, name, validity=validity, **heights)
    except FenceError as exc:
        raise FenceError(f"{label}: {str(exc).removeprefix(f'fence {fence_id!r}: ')}") from exc


def _metres(label: str, props: dict[str, Any], key: str) -> float | None:
    """Return an optional non-negative height property in metres."""
    value = props.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise FenceError(f"{label}: {key} must be a finite number of metres >= 0, got {value!r}")
    return float(value)


def _parse_validity(props: dict[str, Any]) -> Validity | None:
    """Return the validity given by valid_from / valid_until / valid_daily / timezone, or None."""
    keys = ("valid_from", "valid_until", "valid_daily")
    if all(props.get(k) is None for k in keys):
        return None
    timezone = props.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(timezone, str):
        raise FenceError(f"timezone must be an IANA name such as {DEFAULT_TIMEZONE!r}, got {timezone!r}")
    zone = _time_zone(timezone)
    start, end = (_instant(props, k, zone) for k in keys[:2])
    daily = props.get("valid_daily")
    if daily is None:
        return Validity(start, end, timezone=timezone)
    parts = re.split(r"\s*[-–]\s*", daily.strip()) if isinstance(daily, str) else []
    clocks = [_CLOCK.match(p) for p in parts]
    if len(parts) != 2 or not all(clocks):
        raise FenceError(f"bad daily window {daily!r}: expected 'HH:MM-HH:MM' local time, e.g. '22:00-06:00'")
    seconds = [int(m[1]) * 3600 + int(m[2]) * 60 for m in clocks if m]
    return Validity(start, end, seconds[0], seconds[1], timezone)


def _instant(props: dict[str, Any], key: str, zone: ZoneInfo) -> int | None:
    """Return an ISO 8601 property as epoch ms; a time without offset is local to the fence's zone."""
    value = props.get(key)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise FenceError(f"bad time range: {key} {value!r} is not an ISO 8601 date-time")
    if moment.tzinfo is None:  # local wall-clock time of the fence's zone, as operators write it
        moment = moment.replace(tzinfo=zone)
    return int(moment.timestamp() * 1000)


def _time_zone(name: str) -> ZoneInfo:
    """Return the IANA time zone, or raise FenceError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise FenceError(f"unknown time zone {name!r}: use an IANA name such as {DEFAULT_TIMEZONE!r}") from exc


def _iso(t_ms: int) -> str:
    """Return epoch ms as an ISO 8601 UTC string, for messages."""
    return datetime.fromtimestamp(t_ms / 1000, UTC).isoformat()


def _parse_geometry(label: str, geometry: Any) -> Polygon | MultiPolygon:
    """Return a valid Polygon or MultiPolygon, or raise FenceError with shapely's reason."""
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        found = geometry.get("type") if isinstance(geometry, dict) else geometry
        raise FenceError(f"{label}: geometry must be a Polygon or MultiPolygon, got {found!r}")
    coordinates = geometry.get("coordinates")
    polygons = [coordinates] if geometry["type"] == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons:
        raise FenceError(f"{label}: geometry has no coordinates")
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise FenceError(f"{label}: a polygon needs at least one ring")
        for ring in polygon:
            _check_ring(label, ring)
    try:
        parsed = shapely.force_2d(shape(geometry))
    except (ValueError, TypeError, GEOSException) as exc:
        raise FenceError(f"{label}: unreadable geometry: {exc}") from exc
    reason = shapely.is_valid_reason(parsed)
    if reason != "Valid Geometry":
        raise FenceError(f"{label}: invalid polygon: {reason}")
    return cast(Polygon | MultiPolygon, parsed)


def _check_ring(label: str, ring: Any) -> None:
    """Raise FenceError unless a ring is closed, long enough and of in-range [lon, lat] positions."""
    if not isinstance(ring, list) or len(ring) < 4:
        raise FenceError(f"{label}: a ring needs at least 4 positions")
    for position in ring:
        if not isinstance(position, list) or len(position) not in (2, 3):
            raise FenceError(f"{label}: position {position!r} is not [lon, lat]")
        try:
            check_coordinates(position[0], position[1])
        except InvalidCoordinateError as exc:
            raise FenceError(f"{label}: coordinates out of range: {exc}") from exc
    if ring[0][:2] != ring[-1][:2]:
        raise FenceError(f"{label}: ring is not closed (first and last positions differ)")


class _ValidityTable:
    """Validities as columns, so many (row, time) pairs are checked in one vectorised pass."""

    def __init__(self, validities: Sequence[Validity | None]) -> None:
        def column(get: Any, missing: int) -> NDArray[np.int64]:
            values = [missing if v is None or get(v) is None else get(v) for v in validities]
            return np.array(values, dtype=np.int64)

        self.start = column(lambda v: v.start_ms, _T_MIN)
        self.end = column(lambda v: v.end_ms, _T_MAX)
        self.daily_from = column(lambda v: v.daily_from_s, -1)
        self.daily_to = column(lambda v: v.daily_to_s, -1)
        self.zones = sorted({v.timezone for v in validities if v is not None and v.daily_from_s is not None})
        self.zone = column(lambda v: self.zones.index(v.timezone) if v.daily_from_s is not None else None, -1)
        self.limited = bool(((self.start > _T_MIN) | (self.end < _T_MAX) | (self.daily_from >= 0)).any())

    def active(self, row: _Ints, t_ms: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Return whether validity `row[k]` is in force at `t_ms[k]`, for each k."""
        if not self.limited:
            return np.ones(len(row), dtype=bool)
        ok = (t_ms >= self.start[row]) & (t_ms < self.end[row])
        daily = self.daily_from[row] >= 0
        if daily.any():
            second = np.zeros(len(row), dtype=np.int64)
            for index, name in enumerate(self.zones):
                chosen = daily & (self.zone[row] == index)
                second[chosen] = _local_second_of_day(t_ms[chosen], name)
            start, end = self.daily_from[row], self.daily_to[row]
            window = np.where(start < end, (second >= start) & (second < end), (second >= start) | (second < end))
            ok &= ~daily | window
        return ok


def _local_second_of_day(t_ms: NDArray[np.int64], zone_name: str) -> NDArray[np.int64]:
    """Return the local second of the day in a time zone of each epoch-ms time."""
    zone = ZoneInfo(zone_name)
    # UTC offsets change on quarter-hour boundaries, so one lookup per quarter hour present is exact
    quarter, inverse = np.unique(t_ms // 900_000, return_inverse=True)
    offsets = [datetime.fromtimestamp(int(q) * 900, zone).utcoffset() for q in quarter]
    offset_s = np.array([o.total_seconds() if o is not None else 0 for o in offsets], dtype=np.int64)
    return cast(NDArray[np.int64], (t_ms // 1000 + offset_s[inverse.reshape(-1)]) % _DAY_S)


def _float_column(values: ArrayLike, name: str, n: int | None = None) -> NDArray[np.float64]:
    """Return values as a 1-D float array, checking its length if one is expected."""
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if n is not None and len(array) != n:
        raise InvalidCoordinateError(f"{name} has {len(array)} values, expected {n}")
    return array


def _check_lonlat(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> None:
    """Raise InvalidCoordinateError unless the arrays pair up and hold finite in-range lon/lat."""
    if lon.shape != lat.shape:
        raise InvalidCoordinateError(f"lons and lats must be of equal length, got {lon.shape} and {lat.shape}")
    bad = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    if bad.any():
        first = int(np.argmax(bad))
        raise InvalidCoordinateError(
            f"point {first}: lon={float(lon[first])} lat={float(lat[first])} out of range or not finite"
        )


def _expand(starts: _Ints, counts: _Ints) -> tuple[_Ints, _Ints]:
    """Return (owner, position) for `counts[k]` consecutive positions from `starts[k]`, for each k."""
    owner = np.repeat(np.arange(len(counts)), counts)
    offset = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.repeat(starts, counts) + offset


class FenceSet:
    """Fences under a grid index in metres, answering bulk point and segment queries as index pairs."""

    def __init__(self, fences: Iterable[Fence], *, cell_m: float = 50.0, margin_m: float = 0.0) -> None:
        self.fences = tuple(fences)
        self._index = {f.id: i for i, f in enumerate(self.fences)}
        if len(self._index) != len(self.fences):
            counts: dict[str, int] = {}
            for f in self.fences:
                counts[f.id] = counts.get(f.id, 0) + 1
            raise FenceError(f"duplicate fence id {next(k for k, v in counts.items() if v > 1)!r}")
        if not (math.isfinite(cell_m) and cell_m > 0 and math.isfinite(margin_m)):
            raise FenceError(f"cell_m must be > 0 and margin_m finite, got {cell_m} and {margin_m}")
        polygons = np.array([f.polygon for f in self.fences] or [Polygon()], dtype=object)
        west, south, east, north = (float(v) for v in shapely.total_bounds(polygons))
        self.projection = LocalProjection((west + east) / 2, (south + north) / 2) if self.fences else None
        if margin_m and self.projection is not None:
            polygons = np.array([buffer_m(p, margin_m, self.projection) for p in polygons], dtype=object)
        self.geometries = polygons[: len(self.fences)]
        shapely.prepare(self.geometries)
        self.bounds = shapely.bounds(self.geometries).reshape(-1, 4)
        self.kind = np.array([FENCE_KINDS.index(f.kind) for f in self.fences], dtype=np.int8)
        self.floor = np.array([-np.inf if f.floor_m is None else f.floor_m for f in self.fences])
        self.ceiling = np.array([np.inf if f.ceiling_m is None else f.ceiling_m for f in self.fences])
        self.max_height = np.array([np.nan if f.max_height_agl_m is None else f.max_height_agl_m for f in self.fences])
        self.validity = _ValidityTable([f.validity for f in self.fences])
        self._tree: shapely.STRtree | None = None
        self._build_grid(cell_m)

    @classmethod
    def from_geojson(cls, source: str | Path | dict[str, Any], **options: float) -> FenceSet:
        """Build a fence set from a GeoJSON FeatureCollection of fences."""
        return cls(load_fences(source), **options)

    def __len__(self) -> int:
        return len(self.fences)

    def get(self, fence_id: str) -> Fence | None:
        """Return the fence with this id, or None."""
        index = self._index.get(fence_id)
        return None if index is None else self.fences[index]

    def index_of(self, fence_id: str) -> int | None:
        """Return the position of a fence in `fences`, or None."""
        return self._index.get(fence_id)

    def _build_grid(self, cell_m: float) -> None:
        """Index every fence in the grid cells its bounding box covers, marking cells wholly inside it."""
        if self.projection is None:
            self._origin, self._cell, self._nx, self._ny = (0.0, 0.0), (1.0, 1.0), 0, 0
            self._indptr, self._cell_fence, self._cell_full = (
                np.zeros(2, np.intp),
                np.zeros(0, np.intp),
                np.zeros(0, bool),
            )
            return
        west, south, east, north = shapely.total_bounds(self.geometries)
        lon1, lat1 = self.projection.to_lonlat(cell_m, cell_m)
        dx, dy = lon1 - self.projection.lon0, lat1 - self.projection.lat0
        while (nx := int((east - west) // dx) + 1) * (ny := int((north - south) // dy) + 1) > _MAX_CELLS:
            dx, dy = dx * 2, dy * 2
        self._origin, self._cell, self._nx, self._ny = (float(west), float(south)), (dx, dy), nx, ny
        i0, i1 = self._columns(self.bounds[:, 0], self.bounds[:, 2])
        j0, j1 = self._rows(self.bounds[:, 1], self.bounds[:, 3])
        width = i1 - i0 + 1
        fence, offset = _expand(np.zeros(len(self.fences), np.intp), width * (j1 - j0 + 1))
        col, row = i0[fence] + offset % width[fence], j0[fence] + offset // width[fence]
        parts: list[tuple[_Ints, _Ints, NDArray[np.bool_]]] = []
        for lo in range(0, len(fence), 1_000_000):  # bounded memory for fences covering many cells
            f, c, r = fence[lo : lo + 1_000_000], col[lo : lo + 1_000_000], row[lo : lo + 1_000_000]
            boxes = shapely.box(west + c * dx, south + r * dy, west + (c + 1) * dx, south + (r + 1) * dy)
            hit = shapely.intersects(self.geometries[f], boxes)
            full = shapely.covers(self.geometries[f[hit]], boxes[hit])
            parts.append((r[hit] * nx + c[hit], f[hit], full))
        cell = np.concatenate([p[0] for p in parts])
        order = np.lexsort((np.concatenate([p[1] for p in parts]), cell))
        self._cell_fence = np.concatenate([p[1] for p in parts])[order]
        self._cell_full = np.concatenate([p[2] for p in parts])[order]
        self._indptr = np.searchsorted(cell[order], np.arange(nx * ny + 1)).astype(np.intp)

    def _columns(self, lo: NDArray[np.float64], hi: NDArray[np.float64]) -> tuple[_Ints, _Ints]:
        """Return the first and last grid column of each [lo, hi] longitude span."""
        return self._span(lo, hi, self._origin[0], self._cell[0], self._nx)

    def _rows(self, lo: NDArray[np.float64], hi: NDArray[np.float64]) -> tuple[_Ints, _Ints]:
        """Return the first and last grid row of each [lo, hi] latitude span."""
        return self._span(lo, hi, self._origin[1], self._cell[1], self._ny)

    @staticmethod
    def _span(
        lo: NDArray[np.float64], hi: NDArray[np.float64], origin: float, size: float, n: int
    ) -> tuple[_Ints, _Ints]:
        """Return first and last cell along one axis, clipped to the grid (first > last: outside it)."""
        first = np.clip(np.floor((lo - origin) / size), -1, n).astype(np.intp)
        last = np.clip(np.floor((hi - origin) / size), -1, n).astype(np.intp)
        return np.maximum(first, 0), np.minimum(last, n - 1)

    def contains_2d(self, lons: ArrayLike, lats: ArrayLike) -> tuple[_Ints, _Ints]:
        """Return sorted (point, fence) index pairs for every fence polygon holding a point (boundary included)."""
        lon, lat = _float_column(lons, "lons"), _float_column(lats, "lats")
        _check_lonlat(lon, lat)
        col, _ = self._columns(lon, lon)
        row, _ = self._rows(lat, lat)
        inside = (col < self._nx) & (row < self._ny) & (lon >= self._origin[0]) & (lat >= self._origin[1])
        cell = np.where(inside, row * self._nx + col, 0)
        counts = np.where(inside, self._indptr[cell + 1] - self._indptr[cell], 0)
        point, entry = _expand(self._indptr[cell], counts)
        fence, full = self._cell_fence[entry], self._cell_full[entry]
        b = self.bounds[fence]
        x, y = lon[point], lat[point]
        test = ~full & (b[:, 0] <= x) & (b[:, 2] >= x) & (b[:, 1] <= y) & (b[:, 3] >= y)
        hit = full.copy()
        hit[test] = shapely.intersects_xy(self.geometries[fence[test]], x[test], y[test])
        return point[hit], fence[hit]

    def query_points(
        self, lons: ArrayLike, lats: ArrayLike, heights_m: ArrayLike | None = None, times_ms: ArrayLike | None = None
    ) -> tuple[_Ints, _Ints]:
        """Return sorted (point, fence) pairs of fences holding each point, within their band and in force."""
        point, fence = self.contains_2d(lons, lats)
        keep = np.ones(len(point), dtype=bool)
        if heights_m is not None:
            height = _float_column(heights_m, "heights_m", len(np.asarray(lons).reshape(-1)))[point]
            keep &= self.in_band(fence, height, height)
        if times_ms is not None:
            keep &= self.validity.active(fence, np.asarray(times_ms, dtype=np.int64).reshape(-1)[point])
        return point[keep], fence[keep]

    def in_band(self, fence: _Ints, low_m: NDArray[np.float64], high_m: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Return whether heights [low, high] meet each fence's floor..ceiling band (NaN: unknown, meets it)."""
        return np.isnan(low_m) | np.isnan(high_m) | ((high_m >= self.floor[fence]) & (low_m <= self.ceiling[fence]))

    def fences_at(self, lon: float, lat: float, height_m: float | None = None, t_ms: int | None = None) -> list[Fence]:
        """Return the fences holding one point, within their band (if a height is given) and in force (if a time)."""
        heights = None if height_m is None else [height_m]
        _, fence = self.query_points([lon], [lat], heights, None if t_ms is None else [t_ms])
        return [self.fences[i] for i in fence]

    def segment_candidates(
        self, lon0: NDArray[np.float64], lat0: NDArray[np.float64], lon1: NDArray[np.float64], lat1: NDArray[np.float64]
    ) -> tuple[_Ints, _Ints]:
        """Return unique (segment, fence) pairs whose bounding boxes overlap, unsorted: candidates for an exact test."""
        west, east = np.minimum(lon0, lon1), np.maximum(lon0, lon1)
        south, north = np.minimum(lat0, lat1), np.maximum(lat0, lat1)
        eps = 1e-12  # a segment ending on a grid line also meets the cell on the line's other side
        i0, i1 = self._columns(west - eps, east + eps)
        j0, j1 = self._rows(south - eps, north + eps)
        width, height = np.maximum(i1 - i0 + 1, 0), np.maximum(j1 - j0 + 1, 0)
        cells = width * height
        long = cells > _MAX_SEGMENT_CELLS
        cells[long] = 0
        segment, offset = _expand(np.zeros(len(cells), np.intp), cells)
        cell = (j0[segment] + offset // width[segment]) * self._nx + i0[segment] + offset % width[segment]
        owner, entry = _expand(self._indptr[cell], self._indptr[cell + 1] - self._indptr[cell])
        segment, fence = segment[owner], self._cell_fence[entry]
        # only a segment over several cells can meet a fence twice; removing those repeats is cheaper than np.unique
        spread = cells[segment] > 1
        keys = [segment[~spread] * len(self) + fence[~spread], np.unique(segment[spread] * len(self) + fence[spread])]
        if long.any():
            if self._tree is None:
                self._tree = shapely.STRtree(self.geometries)
            found = self._tree.query(shapely.box(west[long], south[long], east[long], north[long]))
            keys.append(np.flatnonzero(long)[found[0]] * len(self) + found[1])
        key = np.concatenate(keys)
        segment, fence = key // max(len(self), 1), key % max(len(self), 1)
        b = self.bounds[fence]
        overlap = (b[:, 0] <= east[segment]) & (b[:, 2] >= west[segment])
        overlap &= (b[:, 1] <= north[segment]) & (b[:, 3] >= south[segment])
        return segment[overlap], fence[overlap]

    def segments_touch(
        self,
        segment: _Ints,
        fence: _Ints,
        ends: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]],
    ) -> NDArray[np.bool_]:
        """Return whether each (segment, fence) pair's straight segment touches the fence polygon."""
        lon0, lat0, lon1, lat1 = (e[segment] for e in ends)
        point = (lon0 == lon1) & (lat0 == lat1)
        touch = np.zeros(len(segment), dtype=bool)
        touch[point] = shapely.intersects_xy(self.geometries[fence[point]], lon0[point], lat0[point])
        line = ~point
        coords = np.stack([lon0[line], lat0[line], lon1[line], lat1[line]], axis=1).reshape(-1, 2, 2)
        touch[line] = shapely.intersects(self.geometries[fence[line]], shapely.linestrings(coords))
        return touch

    def query_segments(
        self, lons0: ArrayLike, lats0: ArrayLike, lons1: ArrayLike, lats1: ArrayLike
    ) -> tuple[_Ints, _Ints]:
        """Return sorted (segment, fence) pairs for every fence polygon a straight segment touches."""
        ends = tuple(
            _float_column(v, name)
            for v, name in ((lons0, "lons0"), (lats0, "lats0"), (lons1, "lons1"), (lats1, "lats1"))
        )
        _check_lonlat(ends[0], ends[1])
        _check_lonlat(ends[2], ends[3])
        segment, fence = self.segment_candidates(*ends)
        touch = self.segments_touch(segment, fence, cast(Any, ends))
        order = np.lexsort((fence[touch], segment[touch]))
        return segment[touch][order], fence[touch][order]

    def fences_crossed(self, lon0: float, lat0: float, lon1: float, lat1: float) -> list[Fence]:
        """Return the fences the straight segment between two points touches (2-D, ignoring heights)."""
        _, fence = self.query_segments([lon0], [lat0], [lon1], [lat1])
        return [self.fences[i] for i in fence]


@dataclass(frozen=True, eq=False)
class FixBatch:
    """Drone fixes as columns, in arrival order; heights NaN when unknown, times epoch milliseconds."""

    drone_ids: Sequence[str]
    operator_ids: Sequence[str]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    height_m: NDArray[np.float64]
    t_ms: NDArray[np.int64]

    @classmethod
    def from_columns(
        cls,
        drone_ids: Sequence[str],
        operator_ids: Sequence[str],
        lons: ArrayLike,
        lats: ArrayLike,
        heights_m: ArrayLike,
        times_ms: ArrayLike,
    ) -> FixBatch:
        """Check and convert columns of fixes; a height at or below -1000 m (Remote ID's unknown) becomes NaN."""
        n = len(drone_ids)
        lon, lat = _float_column(lons, "lons", n), _float_column(lats, "lats", n)
        _check_lonlat(lon, lat)
        height = _float_column(heights_m, "heights_m", n)
        if np.isinf(height).any():
            raise InvalidCoordinateError(f"fix {int(np.argmax(np.isinf(height)))}: height is infinite")
        height = np.where(height <= UNKNOWN_HEIGHT_M, np.nan, height)
        t_ms = np.asarray(times_ms, dtype=np.int64).reshape(-1)
        if len(operator_ids) != n or len(t_ms) != n:
            raise InvalidCoordinateError(f"operator_ids and times_ms must have {n} values like drone_ids")
        return cls(drone_ids, operator_ids, lon, lat, height, t_ms)

    def __len__(self) -> int:
        return len(self.drone_ids)


@dataclass(frozen=True)
class FenceEvent:
    """One Tile38-style fence event of one drone fix; `alert` names why operators are alerted, or is None."""

    drone_id: str
    operator_id: str
    fence_id: str
    fence_kind: FenceKind
    detect: Detect
    t_ms: int
    lon: float
    lat: float
    height_m: float | None
    alert: AlertReason | None


@dataclass(frozen=True, eq=False)
class FenceEvents:
    """The events of one batch as columns, sorted by fix then fence: indexes into the batch and the fence set."""

    fix: _Ints
    fence: _Ints
    detect: NDArray[np.int8]  # index into DETECTS
    reason: NDArray[np.int8]  # 0: no alert, else 1 + index into ALERT_REASONS
    fence_set: FenceSet
    batch: FixBatch

    def __len__(self) -> int:
        return len(self.fix)

    @property
    def alert(self) -> NDArray[np.bool_]:
        """Return, per event, whether it should alert operators."""
        return self.reason > 0

    def to_list(self) -> list[FenceEvent]:
        """Return the events as objects (slower than the columns; for alerts and tests)."""
        b, fences = self.batch, self.fence_set.fences
        return [
            FenceEvent(
                drone_id=b.drone_ids[i],
                operator_id=b.operator_ids[i],
                fence_id=fences[f].id,
                fence_kind=fences[f].kind,
                detect=DETECTS[d],
                t_ms=int(b.t_ms[i]),
                lon=float(b.lon[i]),
                lat=float(b.lat[i]),
                height_m=None if math.isnan(b.height_m[i]) else float(b.height_m[i]),
                alert=ALERT_REASONS[r - 1] if r else None,
            )
            for i, f, d, r in zip(
                self.fix.tolist(), self.fence.tolist(), self.detect.tolist(), self.reason.tolist(), strict=True
            )
        ]


class FenceTracker:
    """Detect enter, exit, inside and cross per drone fix (Tile38 semantics), keeping each drone's state.

    A fence counts for a fix when the point is in its polygon, the height in its band and the fence in force
    at the fix time; an operating area with permits counts only for the operators holding one (it is their
    declared area). The state of a drone is the fences it was in and its last fix; it is held in arrays for
    speed, and read or restored as a plain dict `{"inside": [fence ids], "fix": [lon, lat, height, t_ms]}`.
    Alerts: entering, being inside or crossing a no-fly zone; the same in a restricted zone without a permit in
    force; leaving an operating area; being above a fence's `max_height_agl_m` (or the tracker's default) inside it.
    """

    def __init__(
        self,
        fence_set: FenceSet,
        permits: Permits | None = None,
        *,
        detect: Collection[Detect] = DETECTS,
        max_height_agl_m: float | None = None,
    ) -> None:
        self.fence_set = fence_set
        unknown = set(detect) - set(DETECTS)
        if unknown:
            raise FenceError(f"unknown detect {sorted(unknown)}, expected some of {', '.join(DETECTS)}")
        self._detect = np.array([d in detect for d in DETECTS])
        default = np.nan if max_height_agl_m is None else max_height_agl_m
        self._max_height = np.where(np.isnan(fence_set.max_height), default, fence_set.max_height)
        self._operators: dict[str, int] = {}
        rows: list[tuple[int, Validity | None]] = []
        self._declared = np.zeros(len(fence_set), dtype=bool)
        for fence_id, holders in (permits or {}).items():
            index = fence_set.index_of(fence_id)
            if index is None:
                raise FenceError(f"permit for unknown fence {fence_id!r}")
            if fence_set.fences[index].kind == "no_fly":
                raise FenceError(f"permit for no-fly fence {fence_id!r}: no-fly zones take no permits")
            self._declared[index] = fence_set.fences[index].kind == "operating_area"
            if isinstance(holders, str):
                raise FenceError(f"permit for fence {fence_id!r}: give a set of operator ids, not one string")
            entries = holders.items() if isinstance(holders, Mapping) else ((h, None) for h in holders)
            for operator_id, validity in entries:
                if not isinstance(operator_id, str) or not operator_id:
                    raise FenceError(f"permit for fence {fence_id!r}: operator id {operator_id!r} is not a string")
                code = self._operators.setdefault(operator_id, len(self._operators))
                rows.append((index << 32 | code, validity))
        rows.sort(key=lambda r: r[0])
        self._permit_keys = np.array([r[0] for r in rows], dtype=np.int64)
        self._permit_validity = _ValidityTable([r[1] for r in rows])
        self._rows: dict[str, int] = {}  # drone id -> row of the state arrays
        self._last = np.zeros((0, 3))  # lon, lat, height of each drone's last fix
        self._last_t = np.zeros(0, dtype=np.int64)
        self._seen = np.zeros(0, dtype=bool)
        self._held = np.zeros(0, dtype=np.int64)  # sorted row * len(fence_set) + fence: the fences each drone is in

    def _permitted(self, fence: _Ints, operator: _Ints, t_ms: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Return whether each operator holds a permit in force for each fence at each time."""
        key = fence.astype(np.int64) << 32 | operator
        pos = np.minimum(np.searchsorted(self._permit_keys, key), max(len(self._permit_keys) - 1, 0))
        found = (operator >= 0) & (len(self._permit_keys) > 0)
        found &= self._permit_keys[pos] == key if len(self._permit_keys) else False
        found[found] = self._permit_validity.active(pos[found], t_ms[found])
        return found

    def _counts(
        self, fix: _Ints, fence: _Ints, low: NDArray[np.float64], high: NDArray[np.float64], b: FixBatch, op: _Ints
    ) -> NDArray[np.bool_]:
        """Return whether each (fix, fence) pair counts: in band, in force, and declared if an operating area."""
        fs = self.fence_set
        keep = fs.in_band(fence, low, high) & fs.validity.active(fence, b.t_ms[fix])
        declared = self._declared[fence]
        if declared.any():
            keep[declared] &= self._permitted(fence[declared], op[fix[declared]], b.t_ms[fix[declared]])
        return keep

    def _row_of(self, drone_ids: Sequence[str]) -> _Ints:
        """Return each drone's state row, adding rows for drones not seen before."""
        found = list(map(self._rows.get, drone_ids))
        if None in found:  # new drones: the slower path, once per drone
            found = [self._rows.setdefault(d, len(self._rows)) for d in drone_ids]
        rows = np.array(found, dtype=np.intp)
        if len(self._rows) > len(self._seen):
            grow = max(len(self._rows), 2 * len(self._seen)) - len(self._seen)
            self._last = np.concatenate([self._last, np.full((grow, 3), np.nan)])
            self._last_t = np.concatenate([self._last_t, np.zeros(grow, np.int64)])
            self._seen = np.concatenate([self._seen, np.zeros(grow, bool)])
        return rows

    def state(self, drone_id: str) -> dict[str, Any] | None:
        """Return a drone's state as a plain JSON-able dict, or None if the tracker has not seen it."""
        row = self._rows.get(drone_id)
        if row is None or not self._seen[row]:
            return None
        nf = max(len(self.fence_set), 1)
        lo, hi = np.searchsorted(self._held, [row * nf, (row + 1) * nf])
        lon, lat, height = self._last[row].tolist()
        return {
            "inside": [self.fence_set.fences[k % nf].id for k in self._held[lo:hi].tolist()],
            "fix": [lon, lat, None if math.isnan(height) else height, int(self._last_t[row])],
        }

    def restore(self, drone_id: str, state: Mapping[str, Any] | None) -> None:
        """Replace a drone's state by a dict from `state` (e.g. kept in Redis); None forgets the drone."""
        row = int(self._row_of([drone_id])[0])
        nf = max(len(self.fence_set), 1)
        self._held = self._held[self._held // nf != row]
        self._seen[row] = False
        fix = (state or {}).get("fix")
        if not state or not fix:
            return
        self._last[row] = [fix[0], fix[1], np.nan if fix[2] is None else fix[2]]
        self._last_t[row], self._seen[row] = int(fix[3]), True
        held = [self.fence_set.index_of(fence_id) for fence_id in state.get("inside", ())]
        keys = [row * nf + h for h in held if h is not None]  # fences no longer in the set are dropped
        self._held = np.sort(np.concatenate([self._held, np.array(keys, dtype=np.int64)]))

    def track(self, batch: FixBatch) -> FenceEvents:
        """Detect the events of a batch of fixes (in arrival order per drone) and update each drone's state."""
        fs, n, nf = self.fence_set, len(batch), max(len(self.fence_set), 1)
        rows = self._row_of(batch.drone_ids)
        op = np.array(list(map(self._operators.get, batch.operator_ids, itertools.repeat(-1))), dtype=np.intp)
        order = np.argsort(rows, kind="stable")
        same = rows[order[1:]] == rows[order[:-1]]
        prev, nxt = np.full(n, -1, np.intp), np.full(n, -1, np.intp)
        prev[order[1:][same]], nxt[order[:-1][same]] = order[:-1][same], order[1:][same]

        fix, fence = fs.contains_2d(batch.lon, batch.lat)
        counts = self._counts(fix, fence, batch.height_m[fix], batch.height_m[fix], batch, op)
        fix, fence = fix[counts], fence[counts]
        now = fix * nf + fence  # sorted, as contains_2d's pairs are

        # the previous position and the fences held there: the fix before in this batch, else the kept state
        first = np.flatnonzero(prev < 0)
        known = self._seen[rows[first]]
        ends = []
        for k, values in enumerate((batch.lon, batch.lat, batch.height_m)):
            column = np.full(n, np.nan)
            column[prev >= 0] = values[prev[prev >= 0]]
            column[first[known]] = self._last[rows[first[known]], k]
            ends.append(column)
        first_fix_of_row = np.full(len(self._seen), -1, np.intp)
        first_fix_of_row[rows[first]] = first
        held_fix = first_fix_of_row[self._held // nf]
        carried = nxt[fix] >= 0
        from_state = held_fix >= 0
        before = [nxt[fix[carried]] * nf + fence[carried], held_fix[from_state] * nf + self._held[from_state] % nf]
        was = np.sort(np.concatenate(before))

        cross_fix, cross_fence = self._crossings(batch, op, ends, now, was)
        stayed = _member(was, now)
        left = was[~_member(now, was)]
        events_fix = np.concatenate([fix, left // nf, cross_fix])
        events_fence = np.concatenate([fence, left % nf, cross_fence])
        detect = np.concatenate(
            [np.where(stayed, _INSIDE, _ENTER), np.full(len(left), _EXIT), np.full(len(cross_fix), _CROSS)]
        ).astype(np.int8)
        chosen = self._detect[detect]
        events_fix, events_fence, detect = events_fix[chosen], events_fence[chosen], detect[chosen]
        sort = np.lexsort((detect, events_fence, events_fix))
        events_fix, events_fence, detect = events_fix[sort], events_fence[sort], detect[sort]
        reason = self._reasons(events_fix, events_fence, detect, batch, op)

        last = np.flatnonzero(nxt < 0)
        self._last[rows[last]] = np.stack([batch.lon[last], batch.lat[last], batch.height_m[last]], axis=1)
        self._last_t[rows[last]], self._seen[rows[last]] = batch.t_ms[last], True
        touched = np.zeros(len(self._seen), dtype=bool)
        touched[rows] = True
        final = nxt[fix] < 0
        held_now = rows[fix[final]] * nf + fence[final]
        self._held = np.sort(np.concatenate([self._held[~touched[self._held // nf]], held_now]))
        return FenceEvents(events_fix, events_fence, detect, reason, fs, batch)

    def _crossings(
        self, b: FixBatch, op: _Ints, ends: list[NDArray[np.float64]], now: _Ints, was: _Ints
    ) -> tuple[_Ints, _Ints]:
        """Return (fix, fence) pairs whose segment from the previous fix passes a fence held at neither end."""
        fs, nf = self.fence_set, max(len(self.fence_set), 1)
        moved = np.flatnonzero(~np.isnan(ends[0]))
        segment, fence = fs.segment_candidates(ends[0][moved], ends[1][moved], b.lon[moved], b.lat[moved])
        fix = moved[segment]
        key = fix * nf + fence
        keep = ~_member(now, key) & ~_member(was, key)
        fix, fence = fix[keep], fence[keep]
        low, high = np.fmin(ends[2][fix], b.height_m[fix]), np.fmax(ends[2][fix], b.height_m[fix])
        counts = self._counts(fix, fence, low, high, b, op)
        fix, fence = fix[counts], fence[counts]
        touch = fs.segments_touch(np.arange(len(fix)), fence, (ends[0][fix], ends[1][fix], b.lon[fix], b.lat[fix]))
        return fix[touch], fence[touch]

    def _reasons(self, fix: _Ints, fence: _Ints, detect: NDArray[np.int8], b: FixBatch, op: _Ints) -> NDArray[np.int8]:
        """Return the alert reason code of each event (0: no alert)."""
        kind = self.fence_set.kind[fence]
        towards = detect != _EXIT
        reason = np.zeros(len(fix), dtype=np.int8)
        reason[(kind == _NO_FLY) & towards] = 1 + ALERT_REASONS.index("no_fly")
        restricted = np.flatnonzero((kind == _RESTRICTED) & towards)
        permitted = self._permitted(fence[restricted], op[fix[restricted]], b.t_ms[fix[restricted]])
        reason[restricted[~permitted]] = 1 + ALERT_REASONS.index("restricted")
        reason[(kind == _OPERATING) & (detect == _EXIT)] = 1 + ALERT_REASONS.index("left_operating_area")
        present = (detect == _ENTER) | (detect == _INSIDE)
        over = present & (reason == 0) & (b.height_m[fix] > self._max_height[fence])
        reason[over] = 1 + ALERT_REASONS.index("above_max_height")
        return reason

    def track_one(
        self,
        state: dict[str, Any],
        drone_id: str,
        operator_id: str,
        lon: float,
        lat: float,
        height_m: float | None,
        t_ms: int,
    ) -> list[FenceEvent]:
        """Detect the events of one fix from an explicit state dict, and update that dict in place."""
        self.restore(drone_id, state)
        height = np.nan if height_m is None else height_m
        events = self.track(FixBatch.from_columns([drone_id], [operator_id], [lon], [lat], [height], [t_ms]))
        state.clear()
        state.update(self.state(drone_id) or {})
        return events.to_list()


def _member(sorted_keys: NDArray[np.int64], keys: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Return whether each key is in an ascending array (a binary search, cheaper than np.isin here)."""
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return cast(NDArray[np.bool_], sorted_keys[pos] == keys)
