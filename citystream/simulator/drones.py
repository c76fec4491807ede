"""Drones flying routes between waypoints, broadcasting Remote ID fixes; a few cross no-fly zones."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

from citystream.simulator.airspace import XY, Airspace, NoFly, breaches
from citystream.simulator.base import Injected, RawEvent, SimClock, first_tick, sub_rng
from geo.metric import LocalProjection
from geo.zones import ZoneIndex
from streams.models import Domain

INTERVAL_MS = 1000
CLIMB_MPS, DESCENT_MPS = 4.0, 3.0
CRUISE_HEIGHT_M = (30.0, 110.0)
FIRST_BREACH_HEIGHT_M = (30.0, 60.0)  # a short climb, so the first breach comes within a minute
CRUISE_MPS = (5.0, 15.0)
GROUND_S = (3.0, 6.0)
PAUSE_S = (30.0, 180.0)
FIRST_TAKEOFF_S = (-300.0, 60.0)  # some drones are mid-flight at the start, so the fleet is busy from t=0
REPEAT_BREACH_P = 0.25
MAX_APPROACH_M = 8000.0
UNKNOWN_HEADING = 361.0  # Remote ID's "unknown" direction, sent while not moving horizontally
NOFLY_BREACH = "nofly_breach"  # the kind processors.drone.detectors raises


@dataclass(frozen=True)
class Leg:
    """A straight, level stretch of a flight between two times (ms since the start)."""

    a: XY
    b: XY
    speed: float
    heading: float
    t0: int
    t1: int


@dataclass(frozen=True)
class Flight:
    """One flight: on the ground, climb, legs at one height, descend, on the ground."""

    start: int
    takeoff: int
    legs: list[Leg]
    landing: int
    end: int
    height: float

    def state(self, ms: int) -> tuple[XY, float, float, float, float, bool]:
        """Return position, height, horizontal and vertical speed, heading and airborne at ms."""
        cruise, descent = self.legs[0].t0, self.legs[-1].t1
        if ms < self.takeoff or ms >= self.landing:
            where = self.legs[0].a if ms < self.takeoff else self.legs[-1].b
            return where, 0.0, 0.0, 0.0, UNKNOWN_HEADING, False
        if ms < cruise:
            return self.legs[0].a, CLIMB_MPS * (ms - self.takeoff) / 1000, 0.0, CLIMB_MPS, UNKNOWN_HEADING, True
        if ms >= descent:
            height = max(0.0, self.height - DESCENT_MPS * (ms - descent) / 1000)
            return self.legs[-1].b, height, 0.0, -DESCENT_MPS, UNKNOWN_HEADING, True
        leg = next(leg for leg in self.legs if ms < leg.t1)
        f = (ms - leg.t0) / (leg.t1 - leg.t0)
        where = (leg.a[0] + f * (leg.b[0] - leg.a[0]), leg.a[1] + f * (leg.b[1] - leg.a[1]))
        return where, self.height, leg.speed, 0.0, leg.heading, True


@dataclass
class Drone:
    """One UAS, its operator and home, and its own random stream."""

    drone_id: str
    operator_id: str
    home: XY
    ground_m: float
    phase_ms: int
    rng: random.Random
    first_route: list[XY] | None = None
    flight: Flight | None = None
    flights: int = 0
    next_tick: int = 0


class DroneGenerator:
    """Generate one Remote ID fix per second for every drone that is powered up for a flight."""

    def __init__(self, zones: ZoneIndex, clock: SimClock, projection: LocalProjection, count: int, seed: int) -> None:
        self.clock, self.projection = clock, projection
        self.airspace = Airspace(zones, projection)
        self.injected: list[Injected] = []
        layout = sub_rng(seed, "drone", "layout")
        violators = min(count, max(3, count // 20)) if self.airspace.nofly else 0
        operators = max(1, count // 2)
        self.drones: list[Drone] = []
        for i in range(count):
            drone = Drone(
                drone_id=f"CN-UAS-{i + 1:04d}",
                operator_id=f"OP-DG-{layout.randint(1, operators):03d}",
                home=self.airspace.random_point(layout),
                ground_m=round(layout.uniform(3.0, 7.0), 1),
                phase_ms=layout.randrange(INTERVAL_MS),
                rng=sub_rng(seed, "drone", i),
            )
            if i < violators:
                nofly = self.airspace.nofly[i % len(self.airspace.nofly)]
                route = self.airspace.crossing(layout, nofly, (80.0, 150.0))
                if route is not None:
                    drone.home, drone.first_route = route[0], list(route)
            self.drones.append(drone)
        self._first_takeoff = [
            round((i * layout.uniform(120, 180) if d.first_route else layout.uniform(*FIRST_TAKEOFF_S)) * 1000)
            for i, d in enumerate(self.drones)
        ]

    def emit(self, begin_ms: int, end_ms: int, out: list[RawEvent]) -> None:
        """Append every fix with begin_ms <= observed ms < end_ms to out."""
        for index, drone in enumerate(self.drones):
            drone.next_tick = max(drone.next_tick, first_tick(drone.phase_ms, INTERVAL_MS, begin_ms))
            while (ms := drone.phase_ms + drone.next_tick * INTERVAL_MS) < end_ms:
                flight = drone.flight
                if flight is None or ms >= flight.end:
                    drone.flight = self._plan(index, drone, flight.end if flight else 0)
                    continue
                if ms < flight.start:
                    drone.next_tick = first_tick(drone.phase_ms, INTERVAL_MS, flight.start)
                    continue
                out.append((ms, "drone", drone.drone_id, self._fix(drone, flight, ms)))
                drone.next_tick += 1

    def _fix(self, drone: Drone, flight: Flight, ms: int) -> dict[str, object]:
        (x, y), height, speed_h, speed_v, heading, airborne = flight.state(ms)
        if airborne and speed_h > 0:
            height += drone.rng.gauss(0, 0.3)
            speed_h = max(0.0, speed_h + drone.rng.gauss(0, 0.15))
        lon, lat = self.projection.to_lonlat(x, y)
        return {
            "observed_at": self.clock.iso(ms),
            "lat": round(lat, 7),
            "lon": round(lon, 7),
            "drone_id": drone.drone_id,
            "altitude_m": round(height + drone.ground_m, 1),
            "height_agl_m": round(height, 1),
            "speed_h_mps": round(speed_h, 2),
            "speed_v_mps": round(speed_v, 2),
            "heading_deg": heading if heading == UNKNOWN_HEADING else round(heading, 1) % 360,
            "status": "airborne" if airborne else "ground",
            "operator_id": drone.operator_id,
        }

    def _plan(self, index: int, drone: Drone, after_ms: int) -> Flight:
        """Plan the drone's next flight: a breach route for violators, otherwise a loop from home."""
        rng = drone.rng
        first = drone.flights == 0
        start = self._first_takeoff[index] if first else after_ms + round(rng.uniform(*PAUSE_S) * 1000)
        height, speed = rng.uniform(*CRUISE_HEIGHT_M), rng.uniform(*CRUISE_MPS)
        route = None
        if first and drone.first_route:
            route, height, speed = drone.first_route, rng.uniform(*FIRST_BREACH_HEIGHT_M), rng.uniform(10.0, 14.0)
        elif drone.first_route and rng.random() < REPEAT_BREACH_P:
            route = self._breach_route(drone)
        breach = route is not None
        if route is None:
            route = self._loop_route(drone)
        flight = _build_flight(rng, start, route, height, speed)
        drone.flights += 1
        drone.home = route[-1]
        if breach:
            self._record_breaches(drone, flight)
        return flight

    def _breach_route(self, drone: Drone) -> list[XY] | None:
        nearest: NoFly = min(self.airspace.nofly, key=lambda z: math.dist(z.target, drone.home))
        route = self.airspace.crossing(drone.rng, nearest, (100.0, 300.0))
        if route is None or math.dist(drone.home, route[0]) > MAX_APPROACH_M:
            return None
        if not self.airspace.leg_ok(drone.home, route[0]):
            return None
        return [drone.home, *route]

    def _loop_route(self, drone: Drone) -> list[XY]:
        route = [drone.home]
        for _ in range(drone.rng.randint(1, 3)):
            point = self.airspace.waypoint(drone.rng, route[-1], 300.0, 1500.0)
            if point is not None and self.airspace.leg_ok(point, drone.home):
                route.append(point)
        return [*route, drone.home]

    def _record_breaches(self, drone: Drone, flight: Flight) -> None:
        for leg in flight.legs:
            for zone, entry_m, exit_m in breaches(self.airspace.nofly, leg.a, leg.b, flight.height):
                start = leg.t0 + round(entry_m / leg.speed * 1000)
                end = leg.t0 + round(exit_m / leg.speed * 1000)
                detail = {"zone_id": zone.id, "operator_id": drone.operator_id, "height_agl_m": round(flight.height, 1)}
                self.injected.append(
                    Injected(
                        NOFLY_BREACH, Domain.drone, drone.drone_id, self.clock.at(start), self.clock.at(end), detail
                    )
                )


def _build_flight(rng: random.Random, start: int, route: list[XY], height: float, speed: float) -> Flight:
    """Lay a route out in time: ground, climb, legs at `speed`, descent, ground (ms since the start)."""
    takeoff = start + round(rng.uniform(*GROUND_S) * 1000)
    t = takeoff + round(height / CLIMB_MPS * 1000)
    legs = []
    for a, b in itertools.pairwise(route):
        if a == b:
            continue
        duration = max(1, round(math.dist(a, b) / speed * 1000))
        heading = math.degrees(math.atan2(b[0] - a[0], b[1] - a[1])) % 360
        legs.append(Leg(a, b, speed, heading, t, t + duration))
        t += duration
    if not legs:  # nowhere to go today: hover over home for a while
        hover = round(rng.uniform(30, 90) * 1000)
        legs.append(Leg(route[0], route[0], 0.0, UNKNOWN_HEADING, t, t + hover))
        t += hover
    landing = t + round(height / DESCENT_MPS * 1000)
    return Flight(start, takeoff, legs, landing, landing + round(rng.uniform(*GROUND_S) * 1000), height)
