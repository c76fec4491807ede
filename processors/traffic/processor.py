"""Apply the traffic detectors and aggregation to one reading."""

from __future__ import annotations

from typing import Any

from processors.outcome import BatchOutcome, window_start_ms
from processors.traffic.aggregations import traffic_increments
from processors.traffic.detectors import congestion_detector
from streams.models import Domain, TrafficReading
from streams.settings import Settings


class TrafficProcessor:
    """Run every traffic rule for one reading against its sensor's state."""

    domain = Domain.traffic

    def __init__(self, settings: Settings) -> None:
        self.rules = settings.traffic

    def process(self, event: Any, zone_id: str, state: dict[str, Any], out: BatchOutcome, detect: bool = True) -> None:
        """Add the reading to its zone window and run the detectors if it is in time order."""
        reading: TrafficReading = event
        out.add_sums(zone_id, window_start_ms(reading.observed_ms, out.window_s), traffic_increments(reading))
        if detect:
            out.emit(congestion_detector(reading, state.setdefault("congestion", {}), self.rules, zone_id))
