"""Loop detectors on named road segments: daily rush hours and injected incidents.

Detectors stand in stations along each road, one per lane; station 1 is the first in the direction of travel.
An injected incident blocks the road at one station past the first: its detectors' speed collapses at once
while the station upstream still flows freely, which is what the incident rule looks for. Readings are keyed
by road segment, as every producer keys traffic, so a segment's detectors share one partition.
"""

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
INCIDENT_OCCUPANCY = (0.45, 0.75)  # vehicles standing over the loop behind the blockage
SPEED_NOISE_KMH = 2.5  # bound of the noise, so rush-hour speeds stay above 45 km/h
FIRST_INCIDENT_S = (75.0, 110.0)  # after every detector sent a free-flowing reading or two
INCIDENT_MINUTES = (4.0, 8.0)
INCIDENT_GAP_MINUTES = (8.0, 20.0)
INCIDENT = "incident"  # the kind processors.traffic.detectors raises
STATION_SPACING_M = 500.0  # the site table's nominal distance between stations
SITE_TABLE_STATIONS = 30  # stations per road the shipped site table lists (a rate of 200 events/s uses 23)


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
    station: int
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
            phase = layout.randrange(INTERVAL_MS)
            rng = sub_rng(seed, "traffic", index)
            position = (round(lon, 6), round(lat, 6))
            self.detectors.append(
                Detector(detector_id(road, station, lane), road, station, lane, *position, phase, rng)
            )
        self._stations = stations
        self._roads_in_use = sorted(stations)
        self._incident_rng = sub_rng(seed, "traffic", "incidents")
        self._incidents: dict[int, list[tuple[int, int, int]]] = {road: [] for road in self._roads_in_use}
        self._planned_until_ms = 0

    def emit(self, begin_ms: int, end_ms: int, out: list[RawEvent]) -> None:
        """Append every reading with begin_ms <= observed ms < end_ms to out."""
        self._plan_incidents(end_ms)
        for det in self.detectors:
            det.next_tick = max(det.next_tick, first_tick(det.phase_ms, INTERVAL_MS, begin_ms))
            while (ms := det.phase_ms + det.next_tick * INTERVAL_MS) < end_ms:
                out.append((ms, "traffic", ROADS[det.road].name, self._reading(det, ms)))
                det.next_tick += 1

    def _reading(self, det: Detector, ms: int) -> dict[str, object]:
        road, rng = ROADS[det.road], det.rng
        capacity = road.capacity_vph * INTERVAL_S / 3600
        blocked = self._in_incident(det, ms)
        if blocked:
            speed = rng.uniform(*INCIDENT_SPEED_KMH)
            mean_count = capacity * rng.uniform(0.15, 0.35)
        else:
            hour = self.clock.local_hour(ms)
            noise = max(-SPEED_NOISE_KMH, min(SPEED_NOISE_KMH, rng.gauss(0, 1.2)))
            speed = road.free_kmh * LANE_SPEED.get(det.lane, 1.0) * SPEED_CURVE(hour) + noise
            mean_count = capacity * LANE_FLOW.get(det.lane, 1.0) * FLOW_CURVE(hour)
        count = max(0, round(rng.gauss(mean_count, math.sqrt(mean_count))))
        occupancy = mean_count / INTERVAL_S * EFFECTIVE_VEHICLE_LENGTH_M / (speed / 3.6) * rng.uniform(0.95, 1.05)
        if blocked:
            occupancy = rng.uniform(*INCIDENT_OCCUPANCY)
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

    def _in_incident(self, det: Detector, ms: int) -> bool:
        for start, end, station in reversed(self._incidents[det.road]):
            if start <= ms:
                return ms < end and det.station == station
        return False

    def _plan_incidents(self, until_ms: int) -> None:
        rng = self._incident_rng
        while self._roads_in_use and self._planned_until_ms < until_ms:
            if not self.injected:
                start = round(rng.uniform(*FIRST_INCIDENT_S) * 1000)
            else:
                start = self._planned_until_ms + round(rng.uniform(*INCIDENT_GAP_MINUTES) * 60_000)
            end = start + round(rng.uniform(*INCIDENT_MINUTES) * 60_000)
            # A station with one upstream of it, when any road has two: then the incident rule can tell.
            roads = [r for r in self._roads_in_use if self._stations[r] > 1] or self._roads_in_use
            road = rng.choice(roads)
            station = rng.randrange(1, self._stations[road]) if self._stations[road] > 1 else 0
            self._incidents[road].append((start, end, station))
            at = [d for d in self.detectors if d.road == road and d.station == station]
            detail = {
                "sensor_ids": [d.sensor_id for d in at],
                "upstream_ids": [detector_id(road, station - 1, d.lane) for d in at] if station else [],
            }
            name = ROADS[road].name
            self.injected.append(
                Injected(INCIDENT, Domain.traffic, name, self.clock.at(start), self.clock.at(end), detail)
            )
            self._planned_until_ms = end


def detector_id(road: int, station: int, lane: int) -> str:
    """Return the id of the detector of one lane at one station (0-based) of a road."""
    return f"LD-{ROADS[road].name}-{station + 1:02d}-L{lane}"


def site_table(stations: int = SITE_TABLE_STATIONS) -> str:
    """Return the CSV site table of the simulator's detectors, `stations` per road (geo/data/binhaiwan_sites.csv)."""
    lines = [
        "# Measurement sites of the simulated loop detectors: one row per lane detector, in driving order.",
        "# position_m is the distance along the segment in the direction of travel (nominal: 500 m a station).",
        "# Generated by citystream.simulator.traffic.site_table(); tests/unit/test_sites.py checks it is current.",
        "sensor_id,road_segment,direction,position_m,lane",
    ]
    for road, spec in enumerate(ROADS):
        for station in range(stations):
            position = station * STATION_SPACING_M
            for lane in range(1, spec.lanes + 1):
                lines.append(f"{detector_id(road, station, lane)},{spec.name},forward,{position:.0f},{lane}")
    return "\n".join(lines) + "\n"


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
