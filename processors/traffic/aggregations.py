"""Pure traffic window aggregation: integer sums in, metrics out (exact in any order)."""

from __future__ import annotations

from collections.abc import Mapping

from streams.models import TrafficReading

MICRO = 1_000_000


CONGESTED_STEP_MAX_MS = 300_000  # a gap longer than this between readings is not counted as congested time


ANOMALY_MAX_FIELD = "anom_milli"  # highest anomaly score of a window's readings, in thousandths (a maximum)


def traffic_increments(reading: TrafficReading, congested_ms: int = 0, anomalous: bool = False) -> dict[str, int]:
    """Return one reading's contribution to its windows, as integers so sums are exact.

    `congested_ms` is the time since the detector's previous reading when this reading finds it congested;
    `anomalous` whether its anomaly score reached the detector's alarm score.
    """
    return {
        "n": 1,
        "speed_micro": round(reading.avg_speed_kmh * MICRO),
        "vehicles": reading.vehicle_count,
        "occ_micro": round(reading.occupancy * MICRO),
        "cong_ms": congested_ms,
        "anom_n": int(anomalous),
    }


def anomaly_milli(score: float) -> int:
    """Return an anomaly score in [0, 1] as whole thousandths, the unit windows keep its maximum in."""
    return round(score * 1000)


def traffic_metrics(sums: Mapping[str, int], distinct: int, window_s: int = 60) -> dict[str, tuple[float, str]]:
    """Return metric -> (value, unit) of one window of a zone or a detector."""
    n = sums.get("n", 0)
    if n == 0:
        return {}
    vehicles = sums.get("vehicles", 0)
    return {
        "avg_speed_kmh": (sums.get("speed_micro", 0) / (n * MICRO), "km/h"),  # one exact int division
        "vehicle_count": (float(vehicles), "vehicles"),
        "flow_veh_h": (vehicles * 3600 / window_s, "vehicles/h"),
        "occupancy": (sums.get("occ_micro", 0) / (n * MICRO), "fraction"),
        "congestion_minutes": (sums.get("cong_ms", 0) / 60_000, "min"),
        "readings": (float(n), "readings"),
        "anomalous_readings": (float(sums.get("anom_n", 0)), "readings"),
        "anomaly_score_max": (sums.get(ANOMALY_MAX_FIELD, 0) / 1000, "score"),
    }
