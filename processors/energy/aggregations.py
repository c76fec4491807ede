"""Pure energy window aggregation: kWh from differences of the cumulative counter, in exact Wh."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.models import EnergyReading


def energy_increments(reading: EnergyReading, state: dict[str, Any]) -> dict[str, int]:
    """Return one reading's Wh since the meter's previous reading; a counter that goes back adds nothing."""
    wh = round(reading.energy_kwh * 1000)
    previous = state.get("wh")
    state["wh"] = wh
    delta = wh - previous if previous is not None and wh >= previous else 0
    return {"n": 1, "wh": delta}


def energy_metrics(sums: Mapping[str, int], distinct: int) -> dict[str, tuple[float, str]]:
    """Return metric -> (value, unit) of one zone window."""
    n = sums.get("n", 0)
    if n == 0:
        return {}
    return {"energy_kwh": (sums.get("wh", 0) / 1000, "kWh"), "readings": (float(n), "readings")}
