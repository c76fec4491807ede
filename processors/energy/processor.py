"""Apply the energy detectors and aggregation to one meter reading."""

from __future__ import annotations

from typing import Any

from processors.energy.aggregations import counter_step, reading_maxima, reading_sums
from processors.energy.detectors import (
    counter_fault_detector,
    frequency_detector,
    is_interruption,
    load_spike_detector,
    power_factor_detector,
    voltage_detector,
)
from processors.energy.feeder import supply_transition
from processors.outcome import BatchOutcome
from processors.peers import OwnStateOnly, Peers
from processors.silence import SilenceRule, on_reading
from streams.models import Domain, EnergyReading, Severity
from streams.settings import Settings


class EnergyProcessor(OwnStateOnly):
    """Run every energy rule for one reading against its meter's state."""

    domain = Domain.energy

    def __init__(self, settings: Settings) -> None:
        self.rules = settings.energy
        self.silence = SilenceRule(
            "meter_offline", Domain.energy, Severity.medium, int(self.rules.offline_after_s * 1000), "meter"
        )

    def process(
        self,
        event: Any,
        zone_id: str,
        state: dict[str, Any],
        out: BatchOutcome,
        detect: bool = True,
        peers: Peers | None = None,
    ) -> None:
        """Add the reading to its zone window and run the detectors if it is in time order."""
        reading: EnergyReading = event
        groups = (f"meter:{reading.meter_id}", f"feeder:{reading.feeder_id}")
        if not detect:
            # An older reading than the meter's newest: counted, but its energy is already in the later difference.
            out.add_reading(
                zone_id, reading.observed_ms, reading_sums(reading, 0), reading_maxima(reading), None, groups
            )
            return
        on_reading(self.silence, reading, zone_id, state, out)
        where = (reading.lon, reading.lat, zone_id)
        dark = is_interruption(reading, self.rules)
        transition = supply_transition(state, reading.feeder_id, reading.meter_id, reading.observed_ms, dark, where)
        if transition is not None:
            out.supply_transitions.append(transition)
        step = counter_step(reading, state.setdefault("counter", {}), self.rules)
        sums = reading_sums(reading, step.added_wh)
        out.add_reading(zone_id, reading.observed_ms, sums, reading_maxima(reading), groups=groups)
        out.emit(counter_fault_detector(reading, step, zone_id))
        if not dark:  # a reading without supply says nothing about the meter's load: it must not teach the baseline
            out.emit(load_spike_detector(reading, state.setdefault("load", {}), self.rules, zone_id))
        for alert in (
            *voltage_detector(reading, state.setdefault("voltage", {}), self.rules, zone_id),
            *frequency_detector(reading, state.setdefault("frequency", {}), self.rules, zone_id),
            *power_factor_detector(reading, state.setdefault("power_factor", {}), self.rules, zone_id),
        ):
            out.emit(alert)
