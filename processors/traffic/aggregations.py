"""Pure traffic window aggregation: integer sums in, metrics out (exact in any order)."""

from __future__ import annotations

from collections.abc import Mapping

from streams.models import TrafficReading

MICRO = 1_000_000


def traffic_increments(reading: TrafficReading) -> dict[str, int]:
    """Return one reading's contribution to its zone window, as integers so sums are exact."""
    return {"n": 1, "speed_micro": round(reading.avg_speed_kmh * MICRO), "vehicles": reading.vehicle_count}


def traffic_metrics(sums: Mapping[str, int], distinct: int) -> dict[str, tuple[float, str]]:
    """Return metric -> (value, unit) of one zone window."""
    n = sums.get("n", 0)
    if n == 0:
        return {}
    return {
        "avg_speed_kmh": (sums.get("speed_micro", 0) / (n * MICRO), "km/h"),  # one exact int division
        "vehicle_count": (float(sums.get("vehicles", 0)), "vehicles"),
        "readings": (float(n), "readings"),
    }
