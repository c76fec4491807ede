"""Pure traffic detectors over explicit per-sensor state (JSON-able dicts, no I/O)."""

from __future__ import annotations

from typing import Any

from processors.alerts import episode_alert
from processors.baselines import local_hours, teach
from streams.models import Alert, Domain, Severity, TrafficReading
from streams.settings import TrafficRules

CONGESTION = "congestion"
STUCK_SENSOR = "stuck_sensor"


def normal_flow(state: dict[str, Any], local_hour: int, rules: TrafficRules) -> tuple[float, float, str] | None:
    """Return the sensor's normal (speed km/h, occupancy, basis) at this hour, or None while it has no history."""
    enough = rules.baseline_min_samples
    hour = state.get("hours", {}).get(str(local_hour))
    if hour is not None and hour[2] >= enough:
        return hour[0], hour[1], "this hour of the day"
    overall = state.get("overall")
    if overall is not None and overall[2] >= enough:
        return overall[0], overall[1], "its readings so far"
    return None


def congestion_detector(
    reading: TrafficReading, state: dict[str, Any], rules: TrafficRules, zone_id: str | None
) -> Alert | None:
    """Raise congestion after N consecutive slow, dense readings; resolve once speed recovers.

    Slow and dense are judged against what is normal for this sensor at this local hour of the day,
    learned online (EWMAs of speed and occupancy per hour, then overall): slow is below
    `congestion_onset_ratio` x the normal speed with occupancy at least `congestion_occupancy_rise`
    above normal, recovery is at `congestion_recover_ratio` x the normal speed. A sensor without history
    yet uses the fixed `congestion_speed_kmh` / `congestion_recover_kmh`. Free-flowing readings teach the
    normal; congested ones teach their hour at most once a day, so a jam that comes every day at the same
    hour becomes that hour's normal, and a long jam does not teach itself away.
    """
    speed, occupancy = reading.avg_speed_kmh, reading.occupancy
    local_hour = local_hours(reading.observed_ms, rules.local_utc_offset_h) % 24
    normal = normal_flow(state, local_hour, rules)
    if normal is None:
        onset, recover, expected, basis = rules.congestion_speed_kmh, rules.congestion_recover_kmh, None, None
        slow = speed < onset
    else:
        expected, normal_occupancy, basis = normal
        onset, recover = expected * rules.congestion_onset_ratio, expected * rules.congestion_recover_ratio
        slow = speed < onset and occupancy >= normal_occupancy + rules.congestion_occupancy_rise
    episode = state.get("open")

    def alert(resolved: bool = False) -> Alert:
        data: dict[str, Any] = {"road_segment": reading.road_segment, "lane": reading.lane, "occupancy": occupancy}
        if basis is not None:
            data |= {"normal": basis, "normal_occupancy": round(normal[1], 3) if normal else None}
        return episode_alert(
            kind=CONGESTION,
            domain=Domain.traffic,
            severity=Severity.medium,
            event=reading,
            zone_id=zone_id,
            episode=episode or {},
            measured_value=speed,
            expected_value=None if expected is None else round(expected, 1),
            threshold=round(onset, 1),
            threshold_type="LOWER",
            unit="km/h",
            description=(
                f"Sustained low speed on {reading.road_segment} lane {reading.lane}: "
                f"{speed:.1f} km/h below {onset:.1f} km/h"
                + ("" if expected is None else f" (normal {expected:.1f} km/h at this hour)")
            ),
            resolved=resolved,
            data=data,
        )

    _learn(state, local_hour, reading, rules, congested=slow or episode is not None)
    if episode is not None:
        if speed >= recover:
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


def _learn(
    state: dict[str, Any], local_hour: int, reading: TrafficReading, rules: TrafficRules, congested: bool
) -> None:
    """Teach the detector's normal speed and occupancy for this hour, and overall while it flows freely."""
    day = local_hours(reading.observed_ms, rules.local_utc_offset_h) // 24
    values = [reading.avg_speed_kmh, reading.occupancy]
    tables = [(state.setdefault("hours", {}), str(local_hour))] + ([] if congested else [(state, "overall")])
    for table, key in tables:
        teach(table, key, values, day=day, abnormal=congested, alpha=rules.baseline_alpha, digits=(3, 4))


def stuck_detector(
    reading: TrafficReading, state: dict[str, Any], rules: TrafficRules, zone_id: str | None
) -> Alert | None:
    """Raise a stuck sensor when it repeats the same reading far longer than its own history allows.

    The same (speed, occupancy, vehicles) repeated is counted as a run. The sensor's history is the longest
    run it showed that ended by itself; a run longer than `stuck_factor` x that (and at least
    `stuck_min_readings`) is stuck. One alert per episode, resolved when the value changes; a stuck run
    does not teach the history.
    """
    value = [reading.avg_speed_kmh, reading.occupancy, reading.vehicle_count]
    episode = state.get("open")
    if state.get("value") != value:
        resolved = None
        if episode is not None:
            resolved = _stuck_alert(reading, episode, state, rules, zone_id, resolved=True)
            state.pop("open")
        else:
            state["longest"] = max(state.get("longest", 1), state.get("run", 0))
        state.update(value=value, run=1, run_start_ms=reading.observed_ms)
        return resolved
    state["run"] = state.get("run", 0) + 1
    allowed = max(rules.stuck_min_readings, rules.stuck_factor * state.get("longest", 1))
    if episode is None and state["run"] <= allowed:
        return None
    if episode is None:
        episode = state["open"] = {"start_ms": state["run_start_ms"], "count": 0}
    episode["count"] = state["run"]
    return _stuck_alert(reading, episode, state, rules, zone_id, resolved=False)


def _stuck_alert(
    reading: TrafficReading,
    episode: dict[str, Any],
    state: dict[str, Any],
    rules: TrafficRules,
    zone_id: str | None,
    resolved: bool,
) -> Alert:
    longest = state.get("longest", 1)
    allowed = max(rules.stuck_min_readings, rules.stuck_factor * longest)
    return episode_alert(
        kind=STUCK_SENSOR,
        domain=Domain.traffic,
        severity=Severity.low,
        event=reading,
        zone_id=zone_id,
        episode=episode,
        measured_value=float(episode["count"]),
        expected_value=float(longest),
        threshold=float(allowed),
        threshold_type="UPPER",
        unit="readings",
        description=(
            f"Detector {reading.sensor_id} on {reading.road_segment} repeated the same reading "
            f"{episode['count']} times; its longest run so far was {longest}"
        ),
        resolved=resolved,
        data={"road_segment": reading.road_segment, "lane": reading.lane, "repeated": state.get("value")},
    )
