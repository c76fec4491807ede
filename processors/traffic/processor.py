"""Apply the traffic detectors and aggregation to one reading."""

from __future__ import annotations

from typing import Any

from processors.outcome import BatchOutcome
from processors.silence import SilenceRule, on_reading
from processors.traffic.aggregations import CONGESTED_STEP_MAX_MS, traffic_increments
from processors.traffic.detectors import congestion_detector, stuck_detector
from streams.models import Domain, Severity, TrafficReading
from streams.settings import Settings


class TrafficProcessor:
    """Run every traffic rule for one reading against its sensor's state."""

    domain = Domain.traffic

    def __init__(self, settings: Settings) -> None:
        self.rules = settings.traffic
        self.silence = SilenceRule(
            "sensor_offline", Domain.traffic, Severity.medium, int(self.rules.offline_after_s * 1000), "detector"
        )

    def process(self, event: Any, zone_id: str, state: dict[str, Any], out: BatchOutcome, detect: bool = True) -> None:
        """Add the reading to its zone window and run the detectors if it is in time order."""
        reading: TrafficReading = event
        groups = (f"sensor:{reading.sensor_id}",)
        if not detect:  # an older reading than the detector's newest: counted, no congested time
            out.add_reading(zone_id, reading.observed_ms, traffic_increments(reading), groups=groups)
            return
        previous_ms = state.get("silence", {}).get("last_ms")
        on_reading(self.silence, reading, zone_id, state, out)
        congestion = state.setdefault("congestion", {})
        out.emit(congestion_detector(reading, congestion, self.rules, zone_id))
        out.emit(stuck_detector(reading, state.setdefault("stuck", {}), self.rules, zone_id))
        congested_ms = 0
        if "open" in congestion and previous_ms is not None:
            congested_ms = min(reading.observed_ms - previous_ms, CONGESTED_STEP_MAX_MS)
        out.add_reading(zone_id, reading.observed_ms, traffic_increments(reading, congested_ms), groups=groups)
