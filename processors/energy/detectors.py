"""Pure energy detectors over explicit per-meter state (JSON-able dicts, no I/O)."""

from __future__ import annotations

from typing import Any, Literal

from processors.alerts import episode_alert
from processors.baselines import hour_of_week, local_hours, teach
from processors.energy.aggregations import COUNTER_RESET, CounterStep
from streams.models import Alert, Domain, EnergyReading, Severity
from streams.settings import EnergyRules

LOAD_SPIKE = "load_spike"
MIN_BASELINE_KW = 0.1


def load_spike_detector(
    reading: EnergyReading, state: dict[str, Any], rules: EnergyRules, zone_id: str | None
) -> Alert | None:
    """Raise a spike when power exceeds factor x what is normal for the meter at this hour of the week.

    Normal is learned online, as EWMAs: per local hour of the week once that hour has
    `spike_min_hour_samples` readings (weeks of history), else per local hour of the day once it has
    that many (days of history), else the meter's overall EWMA. A reading during a spike does not teach
    the overall baseline, and teaches its hours once a day at most (averaged over their first readings,
    then EWMA): a load that comes back at the same hour every day becomes that hour's normal, while a
    spike that lasts does not teach its own hour to accept it.
    """
    power = reading.active_power_kw
    week_hour = hour_of_week(reading.observed_ms, rules.local_utc_offset_h)
    hour, day_hour = str(week_hour), str(week_hour % 24)
    # hour -> [EWMA kW, readings taught, local day a spike last taught it (-1: none)]
    hours: dict[str, list[float]] = state.setdefault("hours", {})
    day_hours: dict[str, list[float]] = state.setdefault("day_hours", {})
    overall = state.get("baseline_kw")
    samples = state.get("samples", 0)
    enough = rules.spike_min_hour_samples
    learned, learned_day = hours.get(hour), day_hours.get(day_hour)
    baseline: float | None
    if learned is not None and learned[1] >= enough:
        baseline, basis = learned[0], "this hour of the week"
    elif learned_day is not None and learned_day[1] >= enough:
        baseline, basis = learned_day[0], "this hour of the day"
    else:
        baseline, basis = overall, "its readings so far"
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
            f"{rules.spike_factor:g}x above its usual {baseline or 0:.2f} kW ({basis})",
            resolved=resolved,
            data={"feeder_id": reading.feeder_id, "hour_of_week": week_hour, "baseline": basis},
        )

    alpha = rules.baseline_alpha
    day = local_hours(reading.observed_ms, rules.local_utc_offset_h) // 24
    for table, key in ((hours, hour), (day_hours, day_hour)):
        # Rounded to 0.1 W: a week of hours is 192 entries of state per meter, kept short.
        teach(table, key, [power], day=day, abnormal=spiking, alpha=alpha, digits=(4,))
    if spiking:
        if episode is None:
            episode = state["open"] = {"start_ms": reading.observed_ms, "count": 0}
        episode["count"] += 1
        return alert(resolved=False)
    resolved = alert(resolved=True) if episode is not None else None
    state.pop("open", None)
    state["baseline_kw"] = power if overall is None else overall + alpha * (power - overall)
    state["samples"] = samples + 1
    return resolved


# --- power quality: sustained conditions, one episode (one alert id) each -----------------------

VOLTAGE_SAG = "voltage_sag"
VOLTAGE_SWELL = "voltage_swell"
FREQUENCY_DEVIATION = "frequency_deviation"
LOW_POWER_FACTOR = "low_power_factor"
COUNTER_FAULT = "counter_fault"
ENERGY_KINDS = (LOAD_SPIKE, VOLTAGE_SAG, VOLTAGE_SWELL, FREQUENCY_DEVIATION, LOW_POWER_FACTOR, COUNTER_FAULT)

Side = Literal["UPPER", "LOWER"]


def sustained_episodes(
    state: dict[str, Any], condition: str | None, observed_ms: int, min_duration_s: float
) -> list[tuple[dict[str, Any], bool]]:
    """Advance one condition's run and return the (episode, resolved) versions to report.

    A run starts at the first reading in a condition; it becomes an episode (state "open": start_ms,
    count, condition) once the condition has lasted at least min_duration_s of event time, measured
    from that first reading to the current one. Each reading in the condition adds to the episode;
    the first reading out of it (or in another condition) resolves it. A shorter run reports nothing.
    """
    out: list[tuple[dict[str, Any], bool]] = []
    episode = state.get("open")
    if episode is not None:
        if condition == episode["condition"]:
            episode["count"] += 1
            return [(episode, False)]
        out.append((state.pop("open"), True))
    if condition is None:
        state.pop("run", None)
        return out
    run = state.get("run")
    if run is None or run["condition"] != condition:
        run = state["run"] = {"condition": condition, "start_ms": observed_ms, "count": 0}
    run["count"] += 1
    if observed_ms - run["start_ms"] >= min_duration_s * 1000:
        opened = state["open"] = state.pop("run")
        out.append((opened, False))
    return out


def is_interruption(reading: EnergyReading, rules: EnergyRules) -> bool:
    """Return whether the supply voltage says the meter has no supply (an outage, not a sag)."""
    return reading.voltage_v < rules.interruption_v


def voltage_detector(
    reading: EnergyReading, state: dict[str, Any], rules: EnergyRules, zone_id: str | None
) -> list[Alert]:
    """Raise a sag (below the band) or swell (above it) sustained for voltage_min_duration_s; resolve inside.

    An interruption (below interruption_pct of nominal) is an outage, not a sag: it raises nothing and
    ends an open sag or swell episode (the outage itself is reported by feeder-level detection).
    """
    low, high = rules.voltage_band_v
    volts = reading.voltage_v
    condition = None
    if not is_interruption(reading, rules):
        condition = VOLTAGE_SAG if volts < low else VOLTAGE_SWELL if volts > high else None
    alerts = []
    for episode, resolved in sustained_episodes(state, condition, reading.observed_ms, rules.voltage_min_duration_s):
        sag = episode["condition"] == VOLTAGE_SAG
        alerts.append(
            episode_alert(
                kind=episode["condition"],
                domain=Domain.energy,
                severity=Severity.medium,
                event=reading,
                zone_id=zone_id,
                episode=episode,
                measured_value=volts,
                expected_value=rules.nominal_voltage_v,
                threshold=low if sag else high,
                threshold_type="LOWER" if sag else "UPPER",
                unit="V",
                description=f"Meter {reading.meter_id} on feeder {reading.feeder_id} at {volts:.1f} V, "
                f"{'below' if sag else 'above'} the {low:.1f}-{high:.1f} V band "
                f"for at least {rules.voltage_min_duration_s:g} s",
                resolved=resolved,
                data={"feeder_id": reading.feeder_id},
            )
        )
    return alerts


def frequency_detector(
    reading: EnergyReading, state: dict[str, Any], rules: EnergyRules, zone_id: str | None
) -> list[Alert]:
    """Raise a frequency deviation outside nominal +/- band sustained for frequency_min_duration_s.

    A reading during an interruption says nothing about the grid frequency: it leaves the state alone.
    """
    if is_interruption(reading, rules):
        return []
    hz, nominal, band = reading.frequency_hz, rules.nominal_frequency_hz, rules.frequency_band_hz
    side: Side | None = "UPPER" if hz > nominal + band else "LOWER" if hz < nominal - band else None
    alerts = []
    for episode, resolved in sustained_episodes(state, side, reading.observed_ms, rules.frequency_min_duration_s):
        upper = episode["condition"] == "UPPER"
        alerts.append(
            episode_alert(
                kind=FREQUENCY_DEVIATION,
                domain=Domain.energy,
                severity=Severity.high,
                event=reading,
                zone_id=zone_id,
                episode=episode,
                measured_value=hz,
                expected_value=nominal,
                threshold=nominal + band if upper else nominal - band,
                threshold_type="UPPER" if upper else "LOWER",
                unit="Hz",
                description=f"Meter {reading.meter_id} on feeder {reading.feeder_id} measured {hz:.3f} Hz, "
                f"outside {nominal:g} +/- {band:g} Hz for at least {rules.frequency_min_duration_s:g} s",
                resolved=resolved,
                data={"feeder_id": reading.feeder_id},
            )
        )
    return alerts


def power_factor_detector(
    reading: EnergyReading, state: dict[str, Any], rules: EnergyRules, zone_id: str | None
) -> list[Alert]:
    """Raise a low power factor sustained for power_factor_min_duration_s while the meter draws real load.

    |power_factor| is compared (a leading factor may be reported negative). A reading below
    power_factor_min_load_kw is not low: light load ends the run and resolves an open episode.
    """
    pf = abs(reading.power_factor)
    loaded = reading.active_power_kw >= rules.power_factor_min_load_kw
    condition = LOW_POWER_FACTOR if loaded and pf < rules.power_factor_min else None
    alerts = []
    for episode, resolved in sustained_episodes(
        state, condition, reading.observed_ms, rules.power_factor_min_duration_s
    ):
        alerts.append(
            episode_alert(
                kind=LOW_POWER_FACTOR,
                domain=Domain.energy,
                severity=Severity.low,
                event=reading,
                zone_id=zone_id,
                episode=episode,
                measured_value=pf,
                threshold=rules.power_factor_min,
                threshold_type="LOWER",
                unit="PF",
                description=f"Meter {reading.meter_id} on feeder {reading.feeder_id} ran at power factor "
                f"{pf:.2f} under {reading.active_power_kw:.2f} kW load, below {rules.power_factor_min:g} "
                f"for at least {rules.power_factor_min_duration_s:g} s",
                resolved=resolved,
                data={"feeder_id": reading.feeder_id, "active_power_kw": reading.active_power_kw},
            )
        )
    return alerts


def counter_fault_detector(reading: EnergyReading, step: CounterStep, zone_id: str | None) -> Alert | None:
    """Report a counter that went back or jumped beyond what the power allows, once per fault.

    Each fault is its own episode, opened and resolved at the faulty reading (status resolved, count 1,
    id from the reading's time), so the operator sees it once and nothing stays open. The window
    energy of the step is 0 Wh either way (see processors.energy.aggregations.counter_step).
    """
    if step.fault is None or step.previous_wh is None:
        return None
    reset = step.fault == COUNTER_RESET
    previous_kwh, kwh = step.previous_wh / 1000, reading.energy_kwh
    side: Side
    if reset:
        measured, expected, threshold, side, what = kwh, previous_kwh, previous_kwh, "LOWER", "went back"
    else:
        allowed_kwh = (step.allowed_wh or 0.0) / 1000
        measured, expected, threshold, side = step.step_wh / 1000, allowed_kwh, allowed_kwh, "UPPER"
        what = f"jumped {measured:.3f} kWh, more than the {allowed_kwh:.3f} kWh its power allows"
    return episode_alert(
        kind=COUNTER_FAULT,
        domain=Domain.energy,
        severity=Severity.high,
        event=reading,
        zone_id=zone_id,
        episode={"start_ms": reading.observed_ms, "count": 1},
        measured_value=measured,
        expected_value=expected,
        threshold=threshold,
        threshold_type=side,
        unit="kWh",
        description=f"Meter {reading.meter_id} on feeder {reading.feeder_id}: energy counter {what} "
        f"({previous_kwh:.3f} -> {kwh:.3f} kWh); the step adds no energy to the zone total",
        resolved=True,
        data={"feeder_id": reading.feeder_id, "fault": step.fault, "previous_kwh": previous_kwh},
    )
