"""Pure energy window aggregation: kWh from differences of the cumulative counter, in exact Wh.

Every window field is an integer, so any interleaving of partitions and replays adds up to the same
window: `n` readings, `wh` energy, `mv` summed milli-volts (mean voltage = mv / n) and `max_w`, the
highest active power in watts, which the sink keeps as a maximum instead of a sum (see `processors.metrics.MAX_FIELDS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streams.models import EnergyReading
from streams.settings import EnergyRules

COUNTER_RESET = "reset"
COUNTER_JUMP = "jump"
PEAK_FIELD = "max_w"


@dataclass(frozen=True)
class CounterStep:
    """How one reading moved its meter's cumulative counter, and the Wh the window may trust."""

    added_wh: int
    fault: str | None = None
    previous_wh: int | None = None
    step_wh: int = 0
    allowed_wh: float | None = None


def counter_step(reading: EnergyReading, state: dict[str, Any], rules: EnergyRules | None) -> CounterStep:
    """Advance the meter's counter state and classify the step.

    A counter that goes back (reset, replacement, tamper) adds 0 Wh and counts on from its new value.
    With rules, a step larger than the power allows (more than counter_jump_factor x the higher power
    of the two readings x the time between them, plus counter_jump_tolerance_kwh) is a jump: its energy
    is not trusted, so it adds 0 Wh too, and the counter counts on from the jumped value. A state
    written before the jump check existed (no `ms`) skips the check once.
    """
    wh, ms, kw = round(reading.energy_kwh * 1000), reading.observed_ms, reading.active_power_kw
    previous, previous_ms, previous_kw = state.get("wh"), state.get("ms"), state.get("kw")
    state.update(wh=wh, ms=ms, kw=kw)
    if previous is None:
        return CounterStep(0)
    if wh < previous:
        return CounterStep(0, COUNTER_RESET, previous, wh - previous)
    step = wh - previous
    if rules is not None and previous_ms is not None and previous_kw is not None:
        allowed = jump_allowance_wh(previous_kw, kw, ms - previous_ms, rules)
        if step > allowed:
            return CounterStep(0, COUNTER_JUMP, previous, step, allowed)
        return CounterStep(step, None, previous, step, allowed)
    return CounterStep(step, None, previous, step)


def jump_allowance_wh(previous_kw: float, kw: float, elapsed_ms: int, rules: EnergyRules) -> float:
    """Return the most Wh a counter may advance between two readings before it counts as a jump."""
    return max(previous_kw, kw, 0.0) * elapsed_ms / 3600 * rules.counter_jump_factor + (
        rules.counter_jump_tolerance_kwh * 1000
    )


def reading_sums(reading: EnergyReading, added_wh: int) -> dict[str, int]:
    """Return one reading's integer window fields, with the counter energy it adds."""
    return {"n": 1, "wh": added_wh, "mv": round(reading.voltage_v * 1000)}


def reading_maxima(reading: EnergyReading) -> dict[str, int]:
    """Return one reading's window maxima (active power in whole watts)."""
    return {PEAK_FIELD: round(reading.active_power_kw * 1000)}


def energy_increments(
    reading: EnergyReading, state: dict[str, Any], rules: EnergyRules | None = None
) -> dict[str, int]:
    """Return one reading's window sums; Wh since the meter's previous reading, 0 for a reset (or jump, with rules)."""
    return reading_sums(reading, counter_step(reading, state, rules).added_wh)


def energy_metrics(sums: Mapping[str, int], distinct: int, window_s: int = 60) -> dict[str, tuple[float, str]]:
    """Return metric -> (value, unit) of one zone window."""
    n = sums.get("n", 0)
    if n == 0:
        return {}
    return {
        "energy_kwh": (sums.get("wh", 0) / 1000, "kWh"),
        "readings": (float(n), "readings"),
        "peak_kw": (sums.get(PEAK_FIELD, 0) / 1000, "kW"),
        "mean_voltage_v": (sums.get("mv", 0) / n / 1000, "V"),
    }
