"""Pure drone detectors over explicit per-drone state (JSON-able dicts, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from geo.zones import Zone
from processors.alerts import episode_alert
from streams.models import Alert, Domain, DroneTelemetry, Severity
from streams.settings import DroneRules

NOFLY_BREACH = "nofly_breach"


def nofly_detector(
    fix: DroneTelemetry, state: dict[str, Any], nofly_zones: Sequence[Zone], rules: DroneRules, zone_id: str | None
) -> list[Alert]:
    """Raise one breach per entry of a flying drone into a no-fly zone; resolve it when the drone leaves."""
    flying = fix.status.value in rules.nofly_statuses
    inside = {z.id: z for z in nofly_zones if flying and z.covers_height(fix.height_agl_m)}
    open_episodes: dict[str, dict[str, Any]] = state.setdefault("open", {})
    alerts = []
    for nofly_id in sorted(set(inside) | set(open_episodes)):
        resolved = nofly_id not in inside
        episode = open_episodes.get(nofly_id)
        if episode is None:
            floor = inside[nofly_id].floor_m
            episode = open_episodes[nofly_id] = {"start_ms": fix.observed_ms, "count": 0, "floor_m": floor or 0.0}
        if not resolved:
            episode["count"] += 1
        alerts.append(
            episode_alert(
                kind=NOFLY_BREACH,
                domain=Domain.drone,
                severity=Severity.critical,
                event=fix,
                zone_id=zone_id,
                episode=episode,
                measured_value=fix.height_agl_m,
                threshold=episode["floor_m"],
                threshold_type="UPPER",
                unit="m AGL",
                description=f"Drone {fix.drone_id} ({fix.operator_id}) inside no-fly zone {nofly_id}",
                resolved=resolved,
                scope=nofly_id,
                data={"nofly_zone_id": nofly_id, "operator_id": fix.operator_id, "status": fix.status.value},
            )
        )
        if resolved:
            del open_episodes[nofly_id]
    return alerts
