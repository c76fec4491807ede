"""Apply the drone detectors and aggregation to one Remote ID fix."""

from __future__ import annotations

from typing import Any

from geo.grid import cell_id, cell_of
from geo.zones import ZoneIndex
from processors.drone.aggregations import drone_increments, is_airborne
from processors.drone.airspace import Airspace, load_permits_file, zone_file_collections
from processors.drone.detectors import airspace_detector
from processors.drone.separation import Position
from processors.outcome import BatchOutcome
from processors.peers import OwnStateOnly, Peers
from processors.silence import SilenceRule, on_reading
from streams.models import Domain, DroneTelemetry, Severity
from streams.settings import Settings


class DroneProcessor(OwnStateOnly):
    """Run every drone rule for one fix against its drone's state and the current airspace."""

    domain = Domain.drone

    def __init__(self, settings: Settings, zones: ZoneIndex, airspace: Airspace | None = None) -> None:
        self.rules = settings.drone
        self.silence = SilenceRule(
            "telemetry_loss", Domain.drone, Severity.high, int(self.rules.telemetry_loss_s * 1000), "drone"
        )
        self.zones = zones
        self.airspace = airspace or Airspace.build(
            zone_file_collections(zones), load_permits_file(self.rules.permits_file), 0
        )

    def use(self, airspace: Airspace) -> None:
        """Judge the next fixes against a new airspace (fences changed at run time)."""
        self.airspace = airspace

    def process(
        self,
        event: Any,
        zone_id: str,
        state: dict[str, Any],
        out: BatchOutcome,
        detect: bool = True,
        peers: Peers | None = None,
    ) -> None:
        """Add the fix to its zone and corridor windows and, if it is in time order, run the detectors."""
        fix: DroneTelemetry = event
        airborne = is_airborne(fix)
        sums = drone_increments(fix)
        if detect:
            on_reading(self.silence, fix, zone_id, state, out, armed=fix.status != "ground")
            fences = state.setdefault("fences", {})
            previous = fences.get("fix")
            events = self.airspace.track(
                fences, fix.drone_id, fix.operator_id, fix.lon, fix.lat, fix.height_agl_m, fix.observed_ms
            )
            found = airspace_detector(fix, state, events, previous, self.airspace, self.rules, zone_id)
            for alert in found.alerts:
                out.emit(alert)
            if found.opened:
                sums["violations"] = found.opened
            height = fix.height_agl_m if fix.height_agl_m > -1000 else None
            out.positions.append(
                Position(fix.drone_id, fix.operator_id, fix.lon, fix.lat, height, fix.observed_ms, airborne, zone_id)
            )
        size = self.rules.corridor_cell_m
        corridor = (cell_id(*cell_of(fix.lon, fix.lat, size), size),) if airborne else ()
        out.add_reading(zone_id, fix.observed_ms, sums, member=fix.drone_id if airborne else None, groups=corridor)
