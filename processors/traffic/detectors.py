"""Pure traffic detectors over explicit per-sensor state (JSON-able dicts, no I/O)."""

from __future__ import annotations

from typing import Any

from processors.alerts import episode_alert, ms_to_dt
from processors.baselines import local_hours, teach
from processors.traffic.sites import Site
from streams.models import Alert, AlertStatus, Domain, GeoPoint, Severity, TrafficReading, alert_id
from streams.settings import TrafficRules

CONGESTION = "congestion"
STUCK_SENSOR = "stuck_sensor"
INCIDENT = "incident"


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


def incident_detector(
    reading: TrafficReading,
    state: dict[str, Any],
    normal: tuple[float, float, str] | None,
    site: Site | None,
    upstream: tuple[Site, dict[str, Any] | None] | None,
    segment: dict[str, Any],
    rules: TrafficRules,
    zone_id: str | None,
) -> Alert | None:
    """Raise an incident when a detector's speed collapses suddenly while its upstream neighbour flows freely.

    `state` is this detector's incident state, `normal` its normal (speed, occupancy, basis) at this hour
    before this reading taught it, `upstream` the site just upstream and that detector's incident state,
    `segment` the episode state of the detector's road segment and direction. A collapse is a speed below
    `incident_onset_ratio` x normal with occupancy `congestion_occupancy_rise` above normal, reached while
    one of the detector's last `incident_sudden_readings` readings was still free-flowing (at least
    `incident_free_ratio` x normal). It is an incident only if the upstream detector's latest reading, at most
    `incident_max_age_s` away in event time, is free-flowing: a queue growing back from downstream slows the
    upstream detector too, and that is congestion. Other detectors of the segment that collapse the same way
    join the open episode: one alert per segment and direction, resolved when every one of them recovered.
    Without a learned normal, the fixed congestion speeds are used, as the congestion detector does.
    """
    speed = reading.avg_speed_kmh
    expected = None if normal is None else normal[0]
    free = speed >= _speed_line(expected, rules.incident_free_ratio, rules.congestion_recover_kmh)
    onset = _speed_line(expected, rules.incident_onset_ratio, rules.congestion_speed_kmh)
    collapsed = speed < onset and (normal is None or reading.occupancy >= normal[1] + rules.congestion_occupancy_rise)
    max_age_ms = rules.incident_max_age_s * 1000
    recent = state.get("ms") is not None and 0 < reading.observed_ms - state["ms"] <= max_age_ms
    was_free = recent and any(state.get("free", [])[-rules.incident_sudden_readings :])
    flags = [*state.get("free", []), free][-rules.incident_sudden_readings :]
    state.update(ms=reading.observed_ms, speed=speed, free=flags)
    state["expected"] = None if expected is None else round(expected, 1)
    episode = segment.get("open")
    if episode is not None and reading.sensor_id in episode["members"]:
        if speed < _speed_line(expected, rules.incident_recover_ratio, rules.congestion_recover_kmh):
            episode["count"] += 1
            return _incident_alert(reading, episode, expected, onset, zone_id, resolved=False)
        episode["members"].remove(reading.sensor_id)
        if episode["members"]:
            return None
        segment.pop("open")
        return _incident_alert(reading, episode, expected, onset, zone_id, resolved=True)
    if site is None or upstream is None or not (collapsed and was_free):
        return None
    up_site, up_state = upstream
    if up_state is None or not _flows_freely(up_state, reading, max_age_ms):
        return None
    if episode is None:
        episode = segment["open"] = _new_episode(reading, site, up_site, up_state, zone_id)
    episode["members"].append(reading.sensor_id)
    if reading.sensor_id not in episode["detectors"]:
        episode["detectors"].append(reading.sensor_id)
    episode["count"] += 1
    return _incident_alert(reading, episode, expected, onset, zone_id, resolved=False)


def _new_episode(
    reading: TrafficReading, site: Site, upstream: Site, upstream_state: dict[str, Any], zone_id: str | None
) -> dict[str, Any]:
    """Return a segment's new incident episode, with the evidence of the moment it began."""
    return {
        "start_ms": reading.observed_ms,
        "count": 0,
        "members": [],
        "detectors": [],
        "road_segment": reading.road_segment,
        "direction": site.direction,
        "lon": reading.lon,
        "lat": reading.lat,
        "zone": zone_id,
        "detector": reading.sensor_id,
        "position_m": site.position_m,
        "upstream_detector": upstream.sensor_id,
        "upstream_speed_kmh": upstream_state["speed"],
        "upstream_expected_kmh": upstream_state.get("expected"),
        "upstream_age_s": round((reading.observed_ms - upstream_state["ms"]) / 1000, 1),
    }


def in_incident(segment: dict[str, Any], sensor_id: str) -> bool:
    """Return whether the detector is one of its segment's open incident episode's collapsed detectors."""
    episode = segment.get("open")
    return episode is not None and sensor_id in episode["members"]


def _speed_line(expected: float | None, ratio: float, fixed: float) -> float:
    """Return `ratio` x the normal speed, or the fixed speed for a detector without a normal yet."""
    return fixed if expected is None else ratio * expected


def _flows_freely(upstream: dict[str, Any], reading: TrafficReading, max_age_ms: float) -> bool:
    """Return whether the upstream detector's latest reading was recent and free-flowing."""
    if "ms" not in upstream:
        return False
    return abs(reading.observed_ms - upstream["ms"]) <= max_age_ms and bool(upstream["free"][-1])


def _incident_alert(
    reading: TrafficReading,
    episode: dict[str, Any],
    expected: float | None,
    onset: float,
    zone_id: str | None,
    resolved: bool,
) -> Alert:
    segment, direction = episode["road_segment"], episode["direction"]
    start = ms_to_dt(episode["start_ms"])
    up_speed, up_expected = episode["upstream_speed_kmh"], episode["upstream_expected_kmh"]
    normal = "" if expected is None else f" (normal {expected:.1f} km/h at this hour)"
    return Alert(
        id=alert_id(INCIDENT, segment, start, direction),
        domain=Domain.traffic,
        kind=INCIDENT,
        severity=Severity.high,
        status=AlertStatus.resolved if resolved else AlertStatus.open,
        source_id=segment,
        zone_id=episode["zone"] or zone_id,
        location=GeoPoint(coordinates=(episode["lon"], episode["lat"])),
        measured_value=reading.avg_speed_kmh,
        expected_value=None if expected is None else round(expected, 1),
        threshold=round(onset, 1),
        threshold_type="LOWER",
        unit="km/h",
        description=(
            f"Sudden speed collapse on {segment} ({direction}) at {episode['position_m']:.0f} m, detector "
            f"{episode['detector']}, while upstream detector {episode['upstream_detector']} flowed at "
            f"{up_speed:.1f} km/h"
            + ("" if up_expected is None else f" (normal {up_expected:.1f} km/h)")
            + f"; {reading.sensor_id} now {reading.avg_speed_kmh:.1f} km/h, threshold {onset:.1f} km/h{normal}"
        ),
        first_seen=start,
        last_seen=reading.observed_at,
        count=episode["count"],
        resolved_at=reading.observed_at if resolved else None,
        data={
            "road_segment": segment,
            "direction": direction,
            "detector": episode["detector"],
            "position_m": episode["position_m"],
            "reading_detector": reading.sensor_id,
            "lane": reading.lane,
            "occupancy": reading.occupancy,
            "upstream_detector": episode["upstream_detector"],
            "upstream_speed_kmh": up_speed,
            "upstream_expected_kmh": up_expected,
            "upstream_age_s": episode["upstream_age_s"],
            "detectors": list(episode["detectors"]),
        },
    )
