"""Loop detectors on named road segments: daily rush hours and injected incidents."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import shapely
from shapely.geometry import LineString

from citystream.simulator.airspace import point_in
from citystream.simulator.base import DailyCurve, Injected, RawEvent, SimClock, first_tick, sub_rng
from geo.metric import LocalProjection
from geo.zones import ZoneIndex
from streams.models import Domain

INTERVAL_S = 30
INTERVAL_MS = INTERVAL_S * 1000
EFFECTIVE_VEHICLE_LENGTH_M = 6.5  # car length plus loop length: occupancy = flow x length / speed
INCIDENT_SPEED_KMH = (5.0, 15.0)
SPEED_NOISE_KMH = 2.5  # bound of the noise, so rush-hour speeds stay above 45 km/h
FIRST_INCIDENT_S = (15.0, 45.0)
INCIDENT_MINUTES = (4.0, 8.0)
INCIDENT_GAP_MINUTES = (8.0, 20.0)
CONGESTION = "congestion"  # the kind processors.traffic.detectors raises


@dataclass(frozen=True)
class Road:
    """A named road segment: where it runs, its lanes, free-flow speed and lane capacity."""

    name: str
    district: str
    lanes: int
    free_kmh: float
    capacity_vph: float


ROADS = (
    Road("G107-humen-n", "humen-town", 3, 75, 1900),
    Road("G107-humen-s", "humen-town", 3, 75, 1900),
    Road("S358-changan", "changan", 2, 80, 1900),
    Road("S358-shatian", "shatian", 2, 80, 1900),
    Road("S3-yanjiang-exp", "changan", 3, 100, 2200),
    Road("binhaiwan-ave-e", "binhaiwan-core", 3, 85, 2000),
    Road("binhaiwan-ave-w", "binhaiwan-core", 2, 85, 2000),
    Road("humen-port-rd", "humen-port", 2, 70, 1800),
    Road("weiyuan-island-rd", "weiyuan-island", 1, 70, 1800),
    Road("shatian-harbour-rd", "shatian", 1, 70, 1800),
)
# Fraction of free-flow speed and of lane capacity by local hour: rush 07:30-09:30 and 17:30-19:30.
SPEED_CURVE = DailyCurve(
    [(0, 1.0), (5.5, 1.0), (7, 0.9), (7.5, 0.78), (8.5, 0.75), (9.5, 0.79), (10.5, 0.9), (12, 0.88), (14, 0.9),
     (16.5, 0.88), (17.5, 0.78), (18.5, 0.75), (19.5, 0.79), (21, 0.92), (23, 1.0)]
)  # fmt: skip
FLOW_CURVE = DailyCurve(
    [(0, 0.12), (4, 0.06), (6, 0.25), (7.5, 0.85), (8.5, 0.92), (9.5, 0.8), (11, 0.6), (13, 0.55), (16, 0.62),
     (17.5, 0.88), (18.5, 0.95), (19.5, 0.82), (21, 0.5), (23, 0.25)]
)  # fmt: skip
# Lane 1 is the inner, fast lane; the outer lanes carry the slower trucks.
LANE_SPEED = {1: 1.03, 2: 1.0, 3: 0.94}
LANE_FLOW = {1: 0.9, 2: 1.0, 3: 1.05}


@dataclass
class Detector:
    """One lane's loop detector and its own random stream."""

    sensor_id: str
    road: int
    lane: int
    lon: float
    lat: float
    phase_ms: int
    rng: random.Random
    next_tick: int = 0


class TrafficGenerator:
    """Generate one reading per detector every 30 s of simulated time."""

    def __init__(self, zones: ZoneIndex, clock: SimClock, projection: LocalProjection, count: int, seed: int) -> None:
        self.clock = clock
        self.injected: list[Injected] = []
        layout = sub_rng(seed, "traffic", "layout")
        slots = _slots(count)
        stations = {road: 1 + max(j for j, r, _ in slots if r == road) for road in {r for _, r, _ in slots}}
        lines = {road: _road_line(zones, projection, ROADS[road], layout) for road in sorted(stations)}
        self.detectors: list[Detector] = []
        for index, (station, road, lane) in enumerate(slots):
            x, y = lines[road].interpolate((station + 0.5) / stations[road], normalized=True).coords[0]
            lon, lat = projection.to_lonlat(x, y)
            sensor_id = f"LD-{ROADS[road].name}-{station + 1:02d}-L{lane}"
            phase = layout.randrange(INTERVAL_MS)
            self.detectors.append(
                Detector(sensor_id, road, lane, round(lon, 6), round(lat, 6), phase, sub_rng(seed, "traffic", index))
            )
        self._roads_in_use = sorted(stations)
        self._incident_rng = sub_rng(seed, "traffic", "incidents")
        self._incidents: dict[int, list[tuple[int, int]]] = {road: [] for road in self._roads_in_use}
        self._planned_until_ms = 0

    def emit(self, begin_ms: int, end_ms: int, out: list[RawEvent]) -> None:
        """Append every reading with begin_ms <= observed ms < end_ms to out."""
        self._plan_incidents(end_ms)
        for det in self.detectors:
            det.next_tick = max(det.next_tick, first_tick(det.phase_ms, INTERVAL_MS, begin_ms))
            while (ms := det.phase_ms + det.next_tick * INTERVAL_MS) < end_ms:
                out.append((ms, "traffic", det.sensor_id, self._reading(det, ms)))
                det.next_tick += 1

    def _reading(self, det: Detector, ms: int) -> dict[str, object]:
        road, rng = ROADS[det.road], det.rng
        capacity = road.capacity_vph * INTERVAL_S / 3600
        if self._in_incident(det.road, ms):
            speed = rng.uniform(*INCIDENT_SPEED_KMH)
            mean_count = capacity * rng.uniform(0.15, 0.35)
        else:
            hour = self.clock.local_hour(ms)
            noise = max(-SPEED_NOISE_KMH, min(SPEED_NOISE_KMH, rng.gauss(0, 1.2)))
            speed = road.free_kmh * LANE_SPEED.get(det.lane, 1.0) * SPEED_CURVE(hour) + noise
            mean_count = capacity * LANE_FLOW.get(det.lane, 1.0) * FLOW_CURVE(hour)
        count = max(0, round(rng.gauss(mean_count, math.sqrt(mean_count))))
        occupancy = mean_count / INTERVAL_S * EFFECTIVE_VEHICLE_LENGTH_M / (speed / 3.6) * rng.uniform(0.95, 1.05)
        return {
            "observed_at": self.clock.iso(ms),
            "lat": det.lat,
            "lon": det.lon,
            "sensor_id": det.sensor_id,
            "road_segment": road.name,
            "lane": det.lane,
            "vehicle_count": count,
            "avg_speed_kmh": round(speed, 1),
            "occupancy": round(min(0.95, occupancy), 3),
            "interval_s": INTERVAL_S,
        }

    def _in_incident(self, road: int, ms: int) -> bool:
        for start, end in reversed(self._incidents[road]):
            if start <= ms:
                return ms < end
        return False

    def _plan_incidents(self, until_ms: int) -> None:
        rng = self._incident_rng
        while self._roads_in_use and self._planned_until_ms < until_ms:
            if not self.injected:
                start = round(rng.uniform(*FIRST_INCIDENT_S) * 1000)
            else:
                start = self._planned_until_ms + round(rng.uniform(*INCIDENT_GAP_MINUTES) * 60_000)
            end = start + round(rng.uniform(*INCIDENT_MINUTES) * 60_000)
            road = rng.choice(self._roads_in_use)
            self._incidents[road].append((start, end))
            sensors = [d.sensor_id for d in self.detectors if d.road == road]
            detail = {"sensor_ids": sensors}
            self.injected.append(
                Injected(CONGESTION, Domain.traffic, ROADS[road].name, self.clock.at(start), self.clock.at(end), detail)
            )
            self._planned_until_ms = end


def _slots(count: int) -> list[tuple[int, int, int]]:
    """Return (station, road, lane) for `count` detectors, filling stations evenly over the roads."""
    per_station = sum(road.lanes for road in ROADS)
    stations = -(-count // per_station)
    slots = [
        (station, road, lane)
        for station in range(stations)
        for road, spec in enumerate(ROADS)
        for lane in range(1, spec.lanes + 1)
    ]
    return slots[:count]


def _road_line(zones: ZoneIndex, projection: LocalProjection, road: Road, rng: random.Random) -> LineString:
    """Return a straight 1.5-4 km stretch of road, in metres, inside the road's district."""
    district = zones.get(road.district)
    candidates = [district] if district is not None else zones.zones("district")
    area = shapely.transform(candidates[rng.randrange(len(candidates))].geometry, projection.forward)
    for _ in range(500):
        a = point_in(area, rng)
        angle = rng.uniform(0, 2 * math.pi)
        length = rng.uniform(1500, 4000)
        line = LineString([a, (a[0] + length * math.cos(angle), a[1] + length * math.sin(angle))])
        if area.contains(line):
            return line
    a = point_in(area, rng)
    return LineString([a, (a[0] + 1.0, a[1])])
