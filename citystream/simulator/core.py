"""The city simulator: every domain's sensors on one simulated clock, deterministic for a seed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from citystream.simulator import drones, energy, traffic
from citystream.simulator.base import Generator, Injected, RawEvent, SimClock
from geo.metric import LocalProjection
from geo.zones import ZoneIndex

_EVENT_ORDER = itemgetter(0, 1, 2)
DRONE_DUTY_CYCLE = 0.78  # share of the time a drone broadcasts (flying or about to), measured over 2 hours


@dataclass(frozen=True)
class SimSize:
    """How many sensors of each domain the simulator runs (0 switches a domain off)."""

    traffic_sensors: int = 60
    drones: int = 20
    meters: int = 100

    def __post_init__(self) -> None:
        if min(self.traffic_sensors, self.drones, self.meters) < 0:
            raise ValueError(f"sensor counts must be >= 0, got {self}")

    def events_per_s(self) -> float:
        """Return the expected total event rate once every drone has started flying."""
        return (
            self.traffic_sensors / traffic.INTERVAL_S
            + self.drones * DRONE_DUTY_CYCLE * 1000 / drones.INTERVAL_MS
            + self.meters / energy.INTERVAL_S
        )


def size_for_rate(events_per_s: float) -> SimSize:
    """Scale the default fleet so the simulator produces about events_per_s events a second."""
    if not events_per_s > 0:
        raise ValueError(f"event rate must be > 0, got {events_per_s}")
    default = SimSize()
    factor = events_per_s / default.events_per_s()
    return SimSize(
        traffic_sensors=max(1, round(default.traffic_sensors * factor)),
        drones=max(1, round(default.drones * factor)),
        meters=max(1, round(default.meters * factor)),
    )


class CitySimulator:
    """Generate realistic traffic, drone and energy events for the pilot area, deterministic for a seed."""

    def __init__(self, zones: ZoneIndex, seed: int, start: datetime, sensors: SimSize | None = None) -> None:
        self.zones = zones
        self.seed = seed
        self.size = sensors or SimSize()
        self.clock = SimClock(start)
        self.start = self.clock.start
        self._build()

    def _build(self) -> None:
        west, south, east, north = _bounds(self.zones)
        projection = LocalProjection((west + east) / 2, (south + north) / 2)
        args = (self.zones, self.clock, projection)
        self._generators: list[Generator] = [
            traffic.TrafficGenerator(*args, self.size.traffic_sensors, self.seed),
            drones.DroneGenerator(*args, self.size.drones, self.seed),
            energy.EnergyGenerator(*args, self.size.meters, self.seed),
        ]
        self._cursor_ms = 0

    @property
    def injected(self) -> list[Injected]:
        """Return the incidents planned so far (up to the latest time generated), by start time."""
        return sorted((i for g in self._generators for i in g.injected), key=lambda i: (i.start, i.source))

    def events_between(self, t0: datetime, t1: datetime) -> list[tuple[str, str, dict[str, Any]]]:
        """Return every event observed in [t0, t1) as (domain, key, value), sorted by observed_at."""
        begin, end = max(0, self.clock.ms(t0)), max(0, self.clock.ms(t1))
        if begin < self._cursor_ms:
            self._build()  # going back in time: replay from the start, so the answer never depends on history
        if self._cursor_ms < begin:
            self._generate(self._cursor_ms, begin)
        return [(domain, key, value) for _, domain, key, value in self._generate(begin, end)]

    def _generate(self, begin_ms: int, end_ms: int) -> list[RawEvent]:
        out: list[RawEvent] = []
        if end_ms > begin_ms:
            for generator in self._generators:
                generator.emit(begin_ms, end_ms, out)
            self._cursor_ms = end_ms
            out.sort(key=_EVENT_ORDER)
        return out


def _bounds(zones: ZoneIndex) -> tuple[float, float, float, float]:
    boxes = [z.geometry.bounds for z in zones.zones("district")]
    if not boxes:
        raise ValueError("the zones file has no districts: the simulator places sensors inside districts")
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)
