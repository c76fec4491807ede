"""The pilot area's airspace in metres: where drones may fly and routes that cross a no-fly zone."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import shapely
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from shapely.prepared import prep

from geo.metric import LocalProjection
from geo.zones import Zone, ZoneIndex

XY = tuple[float, float]
EDGE_MARGIN_M = 150.0  # keep routine flights this far inside the pilot area
ZONE_MARGIN_M = 60.0  # and this far from no-fly and restricted airspace


@dataclass(frozen=True)
class NoFly:
    """A no-fly zone in metres and the point inside it that violating routes aim at."""

    zone: Zone
    area: BaseGeometry
    target: XY


class Airspace:
    """Answer where a drone may take off, fly a leg, or cross a no-fly zone."""

    def __init__(self, zones: ZoneIndex, projection: LocalProjection) -> None:
        districts = unary_union([shapely.transform(z.geometry, projection.forward) for z in zones.zones("district")])
        self.area = prep(districts.buffer(-EDGE_MARGIN_M))
        self.bounds = districts.bounds
        closed = [shapely.transform(z.geometry, projection.forward) for z in zones.zones() if z.kind != "district"]
        self.closed = prep(unary_union(closed).buffer(ZONE_MARGIN_M)) if closed else None
        self.nofly = [
            NoFly(z, shapely.transform(z.geometry, projection.forward), _xy(z, projection))
            for z in zones.zones("nofly")
        ]

    def point_ok(self, xy: XY) -> bool:
        """Return whether a routine flight may take off or turn at this point."""
        point = Point(xy)
        return self.area.contains(point) and (self.closed is None or not self.closed.intersects(point))

    def leg_ok(self, a: XY, b: XY) -> bool:
        """Return whether a routine flight may fly straight from a to b."""
        line = LineString([a, b]) if a != b else Point(a)
        return self.area.contains(line) and (self.closed is None or not self.closed.intersects(line))

    def random_point(self, rng: random.Random) -> XY:
        """Return a random point where a routine flight may take off."""
        west, south, east, north = self.bounds
        for _ in range(10_000):
            xy = (rng.uniform(west, east), rng.uniform(south, north))
            if self.point_ok(xy):
                return xy
        raise ValueError("no open airspace in the zones file: the districts are covered by no-fly zones")

    def waypoint(self, rng: random.Random, origin: XY, min_m: float, max_m: float) -> XY | None:
        """Return a point min_m..max_m from origin reachable on a routine leg, or None."""
        for _ in range(30):
            angle, distance = rng.uniform(0, 2 * math.pi), rng.uniform(min_m, max_m)
            xy = (origin[0] + distance * math.cos(angle), origin[1] + distance * math.sin(angle))
            if self.point_ok(xy) and self.leg_ok(origin, xy):
                return xy
        return None

    def crossing(self, rng: random.Random, nofly: NoFly, margin_m: tuple[float, float]) -> tuple[XY, XY] | None:
        """Return (a, b): a straight route through the zone's target point, both ends outside any closed zone."""
        tx, ty = nofly.target
        for _ in range(72):
            angle = rng.uniform(0, 2 * math.pi)
            ux, uy = math.cos(angle), math.sin(angle)
            back = _exit_distance(nofly.area, nofly.target, (-ux, -uy)) + rng.uniform(*margin_m)
            ahead = _exit_distance(nofly.area, nofly.target, (ux, uy)) + rng.uniform(*margin_m)
            a, b = (tx - back * ux, ty - back * uy), (tx + ahead * ux, ty + ahead * uy)
            if self.point_ok(a) and self.point_ok(b):
                return a, b
        return None


def breaches(nofly: list[NoFly], a: XY, b: XY, height_m: float) -> list[tuple[Zone, float, float]]:
    """Return (zone, entry m, exit m) along the straight flight a -> b for each no-fly zone it enters."""
    line = LineString([a, b])
    found = []
    for zone in nofly:
        if not zone.zone.covers_height(height_m):
            continue
        inside = line.intersection(zone.area)
        for piece in getattr(inside, "geoms", [inside]):
            if isinstance(piece, LineString) and not piece.is_empty and piece.length > 0:
                ends = sorted(line.project(Point(c)) for c in (piece.coords[0], piece.coords[-1]))
                found.append((zone.zone, ends[0], ends[1]))
    return sorted(found, key=lambda f: f[1])


def point_in(area: BaseGeometry, rng: random.Random) -> XY:
    """Return a uniformly random point inside an area (same units as the area)."""
    west, south, east, north = area.bounds
    while True:
        xy = (rng.uniform(west, east), rng.uniform(south, north))
        if area.contains(Point(xy)):
            return xy


def _exit_distance(area: BaseGeometry, origin: XY, direction: XY, reach_m: float = 100_000.0) -> float:
    """Return how far from origin (inside area) a ray in direction leaves the area."""
    ray = LineString([origin, (origin[0] + reach_m * direction[0], origin[1] + reach_m * direction[1])])
    inside = ray.intersection(area)
    pieces = [p for p in getattr(inside, "geoms", [inside]) if isinstance(p, LineString) and not p.is_empty]
    first = min(pieces, key=lambda p: p.distance(Point(origin)), default=None)
    return 0.0 if first is None else max(ray.project(Point(c)) for c in first.coords)


def _xy(zone: Zone, projection: LocalProjection) -> XY:
    point = zone.geometry.representative_point()
    return projection.to_xy(point.x, point.y)
