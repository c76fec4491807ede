"""Apply the energy detectors and aggregation to one meter reading."""

from __future__ import annotations

from typing import Any

from processors.energy.aggregations import energy_increments
from processors.energy.detectors import load_spike_detector
from processors.outcome import BatchOutcome, window_start_ms
from streams.models import Domain, EnergyReading
from streams.settings import Settings


class EnergyProcessor:
    """Run every energy rule for one reading against its meter's state."""

    domain = Domain.energy

    def __init__(self, settings: Settings) -> None:
        self.rules = settings.energy

    def process(self, event: Any, zone_id: str, state: dict[str, Any], out: BatchOutcome, detect: bool = True) -> None:
        """Add the reading's energy to its zone window and run the detectors if it is in time order."""
        reading: EnergyReading = event
        start = window_start_ms(reading.observed_ms, out.window_s)
        if not detect:
            # An older reading than the meter's newest: counted, but its energy is already in the later difference.
            out.add_sums(zone_id, start, {"n": 1, "wh": 0})
            return
        out.add_sums(zone_id, start, energy_increments(reading, state.setdefault("counter", {})))
        out.emit(load_spike_detector(reading, state.setdefault("load", {}), self.rules, zone_id))
