"""Apply the drone detectors and aggregation to one Remote ID fix."""

from __future__ import annotations

from typing import Any

from geo.zones import ZoneIndex
from processors.drone.aggregations import drone_increments, is_airborne
from processors.drone.detectors import nofly_detector
from processors.outcome import BatchOutcome, window_start_ms
from streams.models import Domain, DroneTelemetry
from streams.settings import Settings


class DroneProcessor:
    """Run every drone rule for one fix against its drone's state."""

    domain = Domain.drone

    def __init__(self, settings: Settings, zones: ZoneIndex) -> None:
        self.rules = settings.drone
        self.zones = zones

    def process(self, event: Any, zone_id: str, state: dict[str, Any], out: BatchOutcome, detect: bool = True) -> None:
        """Add the fix to its zone window and run the detectors if it is in time order."""
        fix: DroneTelemetry = event
        start = window_start_ms(fix.observed_ms, out.window_s)
        out.add_sums(zone_id, start, drone_increments(fix))
        if is_airborne(fix):
            out.add_member(zone_id, start, fix.drone_id)
        if not detect:
            return
        nofly = self.zones.zones_at(fix.lon, fix.lat, "nofly")
        for alert in nofly_detector(fix, state.setdefault("nofly", {}), nofly, self.rules, zone_id):
            out.emit(alert)
