"""Apply the energy detectors and aggregation to one meter reading."""

from __future__ import annotations

from typing import Any

from processors.energy.aggregations import counter_step, reading_maxima, reading_sums
from processors.energy.detectors import (
    counter_fault_detector,
    frequency_detector,
    load_spike_detector,
    power_factor_detector,
    voltage_detector,
)
from processors.outcome import BatchOutcome, window_start_ms
from streams.models import Domain, EnergyReading
from streams.settings import Settings


class EnergyProcessor:
    """Run every energy rule for one reading against its meter's state."""

    domain = Domain.energy

    def __init__(self, settings: Settings) -> None:
        self.rules = settings.energy

    def process(self, event: Any, zone_id: str, state: dict[str, Any], out: BatchOutcome, detect: bool = True) -> None:
        """Add the reading to its zone window and run the detectors if it is in time order."""
        reading: EnergyReading = event
        start = window_start_ms(reading.observed_ms, out.window_s)
        out.add_max(zone_id, start, reading_maxima(reading))
        if not detect:
            # An older reading than the meter's newest: counted, but its energy is already in the later difference.
            out.add_sums(zone_id, start, reading_sums(reading, 0))
            return
        step = counter_step(reading, state.setdefault("counter", {}), self.rules)
        out.add_sums(zone_id, start, reading_sums(reading, step.added_wh))
        out.emit(counter_fault_detector(reading, step, zone_id))
        out.emit(load_spike_detector(reading, state.setdefault("load", {}), self.rules, zone_id))
        for alert in (
            *voltage_detector(reading, state.setdefault("voltage", {}), self.rules, zone_id),
            *frequency_detector(reading, state.setdefault("frequency", {}), self.rules, zone_id),
            *power_factor_detector(reading, state.setdefault("power_factor", {}), self.rules, zone_id),
        ):
            out.emit(alert)
