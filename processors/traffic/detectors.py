"""Pure traffic detectors over explicit per-sensor state (JSON-able dicts, no I/O)."""

from __future__ import annotations

from typing import Any

from processors.alerts import episode_alert
from streams.models import Alert, Domain, Severity, TrafficReading
from streams.settings import TrafficRules

CONGESTION = "congestion"


def congestion_detector(
    reading: TrafficReading, state: dict[str, Any], rules: TrafficRules, zone_id: str | None
) -> Alert | None:
    """Raise congestion after N consecutive slow readings; resolve once speed recovers above the recovery speed."""
    speed = reading.avg_speed_kmh
    slow = speed < rules.congestion_speed_kmh
    episode = state.get("open")

    def alert(resolved: bool = False) -> Alert:
        return episode_alert(
            kind=CONGESTION,
            domain=Domain.traffic,
            severity=Severity.medium,
            event=reading,
            zone_id=zone_id,
            episode=episode or {},
            measured_value=speed,
            threshold=rules.congestion_speed_kmh,
            threshold_type="LOWER",
            unit="km/h",
            description=(
                f"Sustained low speed on {reading.road_segment} lane {reading.lane}: "
                f"{speed:.1f} km/h below {rules.congestion_speed_kmh:g} km/h"
            ),
            resolved=resolved,
            data={"road_segment": reading.road_segment, "lane": reading.lane, "occupancy": reading.occupancy},
        )

    if episode is not None:
        if speed >= rules.congestion_recover_kmh:
            resolved = alert(resolved=True)
            state.pop("open")
            state["run"] = 0
            return resolved
        if slow:
            episode["count"] += 1
            return alert()
        return None
    if not slow:
        state["run"] = 0
        state.pop("run_start_ms", None)
        return None
    state["run"] = state.get("run", 0) + 1
    state.setdefault("run_start_ms", reading.observed_ms)
    if state["run"] < rules.congestion_min_readings:
        return None
    episode = state["open"] = {"start_ms": state.pop("run_start_ms"), "count": state["run"]}
    return alert()
