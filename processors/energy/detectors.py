"""Pure energy detectors over explicit per-meter state (JSON-able dicts, no I/O)."""

from __future__ import annotations

from typing import Any

from processors.alerts import episode_alert
from streams.models import Alert, Domain, EnergyReading, Severity
from streams.settings import EnergyRules

LOAD_SPIKE = "load_spike"
MIN_BASELINE_KW = 0.1


def load_spike_detector(
    reading: EnergyReading, state: dict[str, Any], rules: EnergyRules, zone_id: str | None
) -> Alert | None:
    """Raise a spike when power exceeds factor x the meter's learned baseline (EWMA); spikes don't teach it."""
    power = reading.active_power_kw
    baseline = state.get("baseline_kw")
    samples = state.get("samples", 0)
    episode = state.get("open")
    limit = None if baseline is None else max(baseline * rules.spike_factor, baseline + rules.spike_min_kw)
    spiking = (
        limit is not None
        and samples >= rules.spike_min_samples
        and baseline is not None
        and baseline >= MIN_BASELINE_KW
        and power > limit
    )

    def alert(resolved: bool) -> Alert:
        return episode_alert(
            kind=LOAD_SPIKE,
            domain=Domain.energy,
            severity=Severity.medium,
            event=reading,
            zone_id=zone_id,
            episode=episode or {},
            measured_value=power,
            expected_value=baseline,
            threshold=limit or 0.0,
            threshold_type="UPPER",
            unit="kW",
            description=f"Meter {reading.meter_id} on feeder {reading.feeder_id} drew {power:.2f} kW, "
            f"{rules.spike_factor:g}x above its usual {baseline or 0:.2f} kW",
            resolved=resolved,
            data={"feeder_id": reading.feeder_id},
        )

    if spiking:
        if episode is None:
            episode = state["open"] = {"start_ms": reading.observed_ms, "count": 0}
        episode["count"] += 1
        return alert(resolved=False)
    resolved = alert(resolved=True) if episode is not None else None
    state.pop("open", None)
    state["baseline_kw"] = power if baseline is None else baseline + rules.baseline_alpha * (power - baseline)
    state["samples"] = samples + 1
    return resolved
