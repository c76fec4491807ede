"""Metric definitions per domain, shared by the window emitter and the API."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from processors.alerts import ms_to_dt
from processors.drone.aggregations import drone_metrics
from processors.energy.aggregations import PEAK_FIELD, energy_metrics
from processors.traffic.aggregations import ANOMALY_MAX_FIELD, traffic_metrics
from streams.models import Aggregate, Domain

MetricFn = Callable[[Mapping[str, int], int, int], dict[str, tuple[float, str]]]  # sums, distinct, window_s

METRICS: dict[Domain, MetricFn] = {
    Domain.traffic: traffic_metrics,
    Domain.drone: drone_metrics,
    Domain.energy: energy_metrics,
}
HAS_MEMBERS = {Domain.drone}
MAX_FIELDS = (PEAK_FIELD, ANOMALY_MAX_FIELD)  # window fields kept as maxima, never summed
METRIC_NAMES: dict[Domain, tuple[str, ...]] = {
    Domain.traffic: (
        "avg_speed_kmh",
        "vehicle_count",
        "flow_veh_h",
        "occupancy",
        "congestion_minutes",
        "readings",
        "anomalous_readings",
        "anomaly_score_max",
    ),
    Domain.drone: ("drones_airborne", "fixes", "violations"),
    Domain.energy: ("energy_kwh", "readings", "peak_kw", "mean_voltage_v"),
}


@dataclass(frozen=True)
class WindowSums:
    """One stored window: its integer sums and, for drones, how many distinct members it counted."""

    domain: Domain
    window_s: int
    zone_id: str
    start_ms: int
    sums: Mapping[str, int]
    distinct: int = 0

    @property
    def end_ms(self) -> int:
        """Return the window's end (exclusive), epoch ms."""
        return self.start_ms + self.window_s * 1000


def window_aggregates(window: WindowSums) -> list[Aggregate]:
    """Return every metric of one window as Aggregates."""
    start, end = ms_to_dt(window.start_ms), ms_to_dt(window.end_ms)
    return [
        Aggregate(
            domain=window.domain,
            metric=metric,
            zone_id=window.zone_id,
            window_start=start,
            window_end=end,
            value=value,
            unit=unit,
            samples=window.sums.get("n", 0),
        )
        for metric, (value, unit) in METRICS[window.domain](window.sums, window.distinct, window.window_s).items()
    ]


def combine_windows(windows: Iterable[WindowSums]) -> tuple[dict[str, int], int]:
    """Return the sums of several windows of one domain combined, and the most distinct members of any one.

    Sums add (readings, vehicles, speed in micro-km/h, Wh, milli-volts), so ratios are taken of the
    totals: average speed = total speed / total readings, mean voltage = total mV / total readings.
    Maxima (`MAX_FIELDS`: peak power, the top anomaly score) take the maximum. Distinct members (airborne
    drones) are counted per window, so the combination is the most drones airborne in any one window, not
    a distinct count over the range.
    """
    sums: dict[str, int] = {}
    distinct = 0
    for window in windows:
        for name, value in window.sums.items():
            if name in MAX_FIELDS:
                sums[name] = max(sums.get(name, value), value)
            else:
                sums[name] = sums.get(name, 0) + value
        distinct = max(distinct, window.distinct)
    return sums, distinct
