"""The airspace a worker judges drones against: fences by kind, operators' permits, and a tracker over them.

Fences come per kind (`nofly`, `restricted`, `operating_area`, the API's names) as GeoJSON
FeatureCollections: those set at run time (`PUT /zones/{kind}`, kept in Redis) or else the zones file's.
A feature may list `permits: [operator ids]` (restricted zones and operating areas only); a permits file
(`CITY_DRONE__PERMITS_FILE`, `{fence id: [operator ids]}`) adds more.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import shapely

from geo.fences import UNKNOWN_HEIGHT_M, Fence, FenceError, FenceEvent, FenceKind, FenceSet, FenceTracker, load_fences
from geo.zones import ZoneIndex

AirspaceKind = Literal["nofly", "restricted", "operating_area"]
AIRSPACE_KINDS: tuple[AirspaceKind, ...] = get_args(AirspaceKind)
FENCE_KIND: dict[AirspaceKind, FenceKind] = {
    "nofly": "no_fly",
    "restricted": "restricted",
    "operating_area": "operating_area",
}
MAX_FENCES_PER_KIND = 10_000
TOUCH_DEG = 1e-7  # about 1 cm: closer than this to a fence, the fix goes to the tracker (float margin)


def normalise_collection(kind: AirspaceKind, collection: Any) -> dict[str, Any]:
    """Return a FeatureCollection of one kind with every feature's `kind` set, or raise FenceError.

    A feature may omit `kind`, or give the API's name (`nofly`) or the engine's (`no_fly`); any other is refused.
    """
    if kind not in AIRSPACE_KINDS:
        raise FenceError(f"unknown zone kind {kind!r}, expected one of {', '.join(AIRSPACE_KINDS)}")
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise FenceError("body is not a GeoJSON FeatureCollection")
    features = collection.get("features")
    if not isinstance(features, list):
        raise FenceError("FeatureCollection has no 'features' list")
    if len(features) > MAX_FENCES_PER_KIND:
        raise FenceError(f"{len(features)} features: at most {MAX_FENCES_PER_KIND} per kind")
    out = []
    for index, feature in enumerate(features):
        if not isinstance(feature, dict) or not isinstance(feature.get("properties") or {}, dict):
            raise FenceError(f"feature {index}: not a GeoJSON Feature with an object of properties")
        props = dict(feature.get("properties") or {})
        given = props.get("kind", kind)
        if given not in (kind, FENCE_KIND[kind]):
            raise FenceError(f"feature {index}: kind {given!r} in a {kind} collection")
        props["kind"] = FENCE_KIND[kind]
        out.append({**feature, "properties": props})
    return {"type": "FeatureCollection", "features": out}


def feature_permits(collection: Mapping[str, Any]) -> dict[str, set[str]]:
    """Return {fence id: operator ids} from the features' `permits` properties of a normalised collection."""
    permits: dict[str, set[str]] = {}
    for index, feature in enumerate(collection["features"]):
        props = feature.get("properties") or {}
        holders = props.get("permits")
        if holders is None:
            continue
        fence_id = str(props.get("id", feature.get("id")))
        if props.get("kind") == "no_fly":
            raise FenceError(f"feature {index} ({fence_id!r}): no-fly zones take no permits")
        if not isinstance(holders, list) or not all(isinstance(h, str) and h for h in holders):
            raise FenceError(f"feature {index} ({fence_id!r}): permits must be a list of operator ids")
        permits.setdefault(fence_id, set()).update(holders)
    return permits


def load_permits_file(path: Path | None) -> dict[str, set[str]]:
    """Return the permits of a JSON file `{fence id: [operator ids]}` (none without a file)."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FenceError(f"permits file {path} unreadable: {exc}; fix CITY_DRONE__PERMITS_FILE") from exc
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(h, str) and h for h in v) for v in data.values()
    ):
        raise FenceError(f"permits file {path}: expected {{fence id: [operator ids]}}")
    return {str(k): set(v) for k, v in data.items()}


def zone_file_collections(zones: ZoneIndex) -> dict[AirspaceKind, dict[str, Any]]:
    """Return the zones file's no-fly and restricted areas as fence collections (it has no operating areas)."""
    return {
        "nofly": normalise_collection("nofly", zones.to_geojson("nofly")),
        "restricted": normalise_collection("restricted", zones.to_geojson("restricted")),
        "operating_area": {"type": "FeatureCollection", "features": []},
    }


class BoxGrid:
    """Bounding boxes on a grid of 0.01 degree cells: does a small box meet any of them? (a dict look-up a fix)."""

    CELL_DEG = 0.01
    MAX_CELLS = 64  # a box over more cells than this (a long jump between fixes) is checked against every box

    def __init__(self, boxes: list[tuple[float, float, float, float]]) -> None:
        self.boxes = boxes
        self.cells: dict[tuple[int, int], list[int]] = {}
        for i, (west, south, east, north) in enumerate(boxes):
            for cell in self._cells(west, south, east, north):
                self.cells.setdefault(cell, []).append(i)

    def _cells(self, west: float, south: float, east: float, north: float) -> list[tuple[int, int]]:
        c = self.CELL_DEG
        xs = range(math.floor(west / c), math.floor(east / c) + 1)
        ys = range(math.floor(south / c), math.floor(north / c) + 1)
        return [(x, y) for x in xs for y in ys]

    def meets(self, west: float, south: float, east: float, north: float) -> bool:
        """Return whether the box (edges included) meets any of the grid's boxes."""
        return bool(self.meeting(west, south, east, north))

    def meeting(self, west: float, south: float, east: float, north: float) -> list[int]:
        """Return the indexes of the grid's boxes the box (edges included) meets, ascending."""
        c = self.CELL_DEG
        span = (math.floor(east / c) - math.floor(west / c) + 1) * (math.floor(north / c) - math.floor(south / c) + 1)
        if span > self.MAX_CELLS:
            candidates: Iterable[int] = range(len(self.boxes))
        else:
            candidates = {i for cell in self._cells(west, south, east, north) for i in self.cells.get(cell, ())}
        found = []
        for i in candidates:
            w, s, e, n = self.boxes[i]
            if west <= e and w <= east and south <= n and s <= north:
                found.append(i)
        return sorted(found)


class Airspace:
    """Fences of every kind under one grid index, the permits, and the tracker that follows drones through them."""

    def __init__(self, fences: list[Fence], permits: Mapping[str, set[str]], version: int = 0) -> None:
        self.fence_set = FenceSet(fences)
        takes_permits = {f.id for f in fences if f.kind != "no_fly"}
        # A permit for a fence that is not (or no longer) there, or is now no-fly, is ignored: replacing fences
        # at run time never stops a worker.
        self.permits = {fid: frozenset(ops) for fid, ops in permits.items() if fid in takes_permits}
        self.tracker = FenceTracker(self.fence_set, self.permits)
        self.version = version
        self.operating_areas = [f for f in fences if f.kind == "operating_area"]
        self._boxes = BoxGrid([f.polygon.bounds for f in fences])
        self._polygons = [f.polygon for f in fences]
        shapely.prepare(self._polygons)

    def track(
        self, state: dict[str, Any], drone_id: str, operator_id: str, lon: float, lat: float, height_m: float, t_ms: int
    ) -> list[FenceEvent]:
        """Return the fence events of one fix and update the drone's fence state in place (FenceTracker.track_one).

        Most fixes are nowhere near a fence: when the drone was in no fence and neither the fix nor the path
        from the previous one comes within TOUCH_DEG of a fence's polygon (its bounding box first, then the
        polygon itself), there is no event, and the tracker (about 0.7 ms a call, being built for whole
        batches) is skipped; the state is what the tracker would leave.
        """
        previous = state.get("fix")
        west, south, east, north = lon, lat, lon, lat
        if previous:
            west, east = min(west, previous[0]), max(east, previous[0])
            south, north = min(south, previous[1]), max(north, previous[1])
        if not state.get("inside") and not self._touches(previous, lon, lat, (west, south, east, north)):
            height = None if height_m <= UNKNOWN_HEIGHT_M or math.isnan(height_m) else float(height_m)
            state.clear()
            state.update(inside=[], fix=[float(lon), float(lat), height, int(t_ms)])
            return []
        return self.tracker.track_one(state, drone_id, operator_id, lon, lat, height_m, t_ms)

    def _touches(self, previous: list[Any] | None, lon: float, lat: float, box: tuple[float, ...]) -> bool:
        """Return whether the fix, or the path to it from the previous one, comes near any fence's polygon."""
        met = self._boxes.meeting(*box)
        if not met:
            return False
        if previous and (previous[0], previous[1]) != (lon, lat):
            path: shapely.Geometry = shapely.LineString([(previous[0], previous[1]), (lon, lat)])
        else:
            path = shapely.Point(lon, lat)
        return any(shapely.dwithin(self._polygons[i], path, TOUCH_DEG) for i in met)

    @classmethod
    def build(
        cls, collections: Mapping[AirspaceKind, Mapping[str, Any]], file_permits: Mapping[str, set[str]], version: int
    ) -> Airspace:
        """Build from normalised collections per kind plus the permits file; raise FenceError if unusable."""
        fences: list[Fence] = []
        permits: dict[str, set[str]] = {k: set(v) for k, v in file_permits.items()}
        for kind in AIRSPACE_KINDS:
            collection = collections.get(kind)
            if collection is None:
                continue
            fences += load_fences(dict(collection))
            for fid, ops in feature_permits(collection).items():
                permits.setdefault(fid, set()).update(ops)
        seen: set[str] = set()
        for fence in fences:
            if fence.id in seen:
                raise FenceError(f"fence id {fence.id!r} is used by two kinds; ids must be unique across kinds")
            seen.add(fence.id)
        return cls(fences, permits, version)

    def declared_areas(self, operator_id: str, t_ms: int) -> list[Fence]:
        """Return the operating areas in force that apply to an operator: listed as holder, or open to all."""
        return [
            f
            for f in self.operating_areas
            if (f.id not in self.permits or operator_id in self.permits[f.id]) and f.active_at(t_ms)
        ]


def validate_collection(kind: AirspaceKind, body: Any) -> dict[str, Any]:
    """Return the normalised collection if it builds a usable airspace on its own, else raise FenceError."""
    collection = normalise_collection(kind, body)
    Airspace.build({kind: collection}, {}, 0)
    return collection
