"""Apply the drone detectors and aggregation to one Remote ID fix."""

from __future__ import annotations

from typing import Any

from geo.zones import ZoneIndex
from processors.drone.aggregations import drone_increments, is_airborne
from processors.drone.detectors import nofly_detector
from processors.outcome import BatchOutcome
from processors.silence import SilenceRule, on_reading
from streams.models import Domain, DroneTelemetry, Severity
from streams.settings import Settings


class DroneProcessor:
    """Run every drone rule for one fix against its drone's state."""

    domain = Domain.drone

    def __init__(self, settings: Settings, zones: ZoneIndex) -> None:
        self.rules = settings.drone
        self.silence = SilenceRule(
            "telemetry_loss", Domain.drone, Severity.high, int(self.rules.telemetry_loss_s * 1000), "drone"
        )
        self.zones = zones

    def process(self, event: Any, zone_id: str, state: dict[str, Any], out: BatchOutcome, detect: bool = True) -> None:
        """Add the fix to its zone window and run the detectors if it is in time order."""
        fix: DroneTelemetry = event
        out.add_reading(
            zone_id, fix.observed_ms, drone_increments(fix), member=fix.drone_id if is_airborne(fix) else None
        )
        if not detect:
            return
        on_reading(self.silence, fix, zone_id, state, out, armed=fix.status != "ground")
        nofly = self.zones.zones_at(fix.lon, fix.lat, "nofly")
        for alert in nofly_detector(fix, state.setdefault("nofly", {}), nofly, self.rules, zone_id):
            out.emit(alert)
