"""Pure drone window aggregation: fixes counted, airborne drones counted once per window, violations opened.

The same sums are kept per district and per corridor grid cell (`cell<size>:<row>:<column>`, airborne
fixes only).
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.models import DroneStatus, DroneTelemetry


def drone_increments(fix: DroneTelemetry) -> dict[str, int]:
    """Return one fix's contribution to its zone window."""
    return {"n": 1}


def is_airborne(fix: DroneTelemetry) -> bool:
    """Return whether a fix counts its drone as airborne (anything but on the ground)."""
    return fix.status is not DroneStatus.ground


def drone_metrics(sums: Mapping[str, int], distinct: int, window_s: int = 60) -> dict[str, tuple[float, str]]:
    """Return metric -> (value, unit) of one zone window."""
    n = sums.get("n", 0)
    if n == 0:
        return {}
    return {
        "drones_airborne": (float(distinct), "drones"),
        "fixes": (float(n), "fixes"),
        "violations": (float(sums.get("violations", 0)), "alerts"),
    }
