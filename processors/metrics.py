"""Metric definitions per domain, shared by the window emitter and the API."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from processors.drone.aggregations import drone_metrics
from processors.energy.aggregations import energy_metrics
from processors.traffic.aggregations import traffic_metrics
from streams.models import Domain

MetricFn = Callable[[Mapping[str, int], int, int], dict[str, tuple[float, str]]]  # sums, distinct, window_s

METRICS: dict[Domain, MetricFn] = {
    Domain.traffic: traffic_metrics,
    Domain.drone: drone_metrics,
    Domain.energy: energy_metrics,
}
HAS_MEMBERS = {Domain.drone}
METRIC_NAMES: dict[Domain, tuple[str, ...]] = {
    Domain.traffic: ("avg_speed_kmh", "vehicle_count", "flow_veh_h", "occupancy", "congestion_minutes", "readings"),
    Domain.drone: ("drones_airborne", "fixes", "violations"),
    Domain.energy: ("energy_kwh", "readings", "peak_kw", "mean_voltage_v"),
}
