"""Pure drone detectors over explicit per-drone state (JSON-able dicts, no I/O).

Every rule is one alert per episode: it opens on the first fix that breaks the rule, its `count` grows with
each further fix that does, and it resolves on the first fix that no longer does (a crossing between two
fixes is an episode of its own, opened and resolved at once). Ids come from rule + drone + episode start
(+ fence id where a drone can break the rule at several fences at once), so a replay finds the same alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import shapely
from shapely.geometry import LineString

from geo.fences import Fence, FenceEvent
from geo.zones import Zone
from processors.alerts import episode_alert
from processors.drone.airspace import Airspace
from streams.models import Alert, Domain, DroneStatus, DroneTelemetry, Severity
from streams.settings import DroneRules

NOFLY_BREACH = "nofly_breach"
NOFLY_CROSS = "nofly_cross"
RESTRICTED_NO_PERMIT = "restricted_no_permit"
LEFT_OPERATING_AREA = "left_operating_area"
HEIGHT_LIMIT = "height_limit"
SPEED_LIMIT = "speed_limit"
DRONE_EMERGENCY = "drone_emergency"
REMOTE_ID_FAILURE = "remote_id_failure"
# Rule breaches of one drone, counted per zone and hour as `violations` (exact: decided per drone, in order).
VIOLATIONS = frozenset(
    {NOFLY_BREACH, NOFLY_CROSS, RESTRICTED_NO_PERMIT, LEFT_OPERATING_AREA, HEIGHT_LIMIT, SPEED_LIMIT}
)
UNKNOWN_SPEED_MPS = 255.0  # Remote ID's "unknown" horizontal speed
UNKNOWN_HEIGHT_M = -1000.0


@dataclass
class Findings:
    """The alerts one fix produced, and how many rule violations it opened."""

    alerts: list[Alert] = field(default_factory=list)
    opened: int = 0


def _fence_data(fence_id: str, kind: str, name: str) -> dict[str, Any]:
    return {"fence_id": fence_id, "fence_kind": kind, "fence_name": name}


def _breaches(
    fix: DroneTelemetry,
    open_episodes: dict[str, dict[str, Any]],
    inside: dict[str, tuple[float, str]],
    zone_id: str | None,
    found: Findings,
) -> None:
    """Open, count and resolve one no-fly breach per zone in `inside` ({zone id: (floor m, name)})."""
    for nofly_id in sorted(set(inside) | set(open_episodes)):
        resolved = nofly_id not in inside
        episode = open_episodes.get(nofly_id)
        if episode is None:
            floor, name = inside[nofly_id]
            episode = open_episodes[nofly_id] = {
                "start_ms": fix.observed_ms,
                "count": 0,
                "floor_m": floor,
                "name": name,
            }
            found.opened += 1
        if not resolved:
            episode["count"] += 1
        found.alerts.append(
            episode_alert(
                kind=NOFLY_BREACH,
                domain=Domain.drone,
                severity=Severity.critical,
                event=fix,
                zone_id=zone_id,
                episode=episode,
                measured_value=fix.height_agl_m,
                threshold=episode["floor_m"],
                threshold_type="UPPER",
                unit="m AGL",
                description=f"Drone {fix.drone_id} ({fix.operator_id}) inside no-fly zone {nofly_id}",
                resolved=resolved,
                scope=nofly_id,
                data={"nofly_zone_id": nofly_id, "operator_id": fix.operator_id, "status": fix.status.value}
                | _fence_data(nofly_id, "no_fly", episode.get("name", nofly_id)),
            )
        )
        if resolved:
            del open_episodes[nofly_id]


def nofly_detector(
    fix: DroneTelemetry, state: dict[str, Any], nofly_zones: Sequence[Zone], rules: DroneRules, zone_id: str | None
) -> list[Alert]:
    """Raise one breach per entry of a flying drone into a no-fly zone; resolve it when the drone leaves."""
    flying = fix.status.value in rules.nofly_statuses
    inside = {z.id: (z.floor_m or 0.0, z.name) for z in nofly_zones if flying and z.covers_height(fix.height_agl_m)}
    found = Findings()
    _breaches(fix, state.setdefault("open", {}), inside, zone_id, found)
    return found.alerts


def _step(
    episodes: dict[str, dict[str, Any]], key: str, active: bool, fix: DroneTelemetry, found: Findings, **extra: Any
) -> tuple[dict[str, Any] | None, bool]:
    """Advance one episode: return (episode, resolved), or (None, False) when there is none."""
    episode = episodes.get(key)
    if active:
        if episode is None:
            episode = episodes[key] = {"start_ms": fix.observed_ms, "count": 0, **extra}
            found.opened += 1
        episode["count"] += 1
        return episode, False
    if episode is None:
        return None, False
    del episodes[key]
    return episode, True


def _alert(
    fix: DroneTelemetry,
    zone_id: str | None,
    episode: dict[str, Any],
    resolved: bool,
    *,
    kind: str,
    severity: Severity,
    measured: float,
    threshold: float,
    threshold_type: Literal["UPPER", "LOWER"],
    unit: str,
    description: str,
    scope: str = "",
    data: dict[str, Any] | None = None,
) -> Alert:
    return episode_alert(
        kind=kind,
        domain=Domain.drone,
        severity=severity,
        event=fix,
        zone_id=zone_id,
        episode=episode,
        measured_value=measured,
        threshold=threshold,
        threshold_type=threshold_type,
        unit=unit,
        description=description,
        resolved=resolved,
        scope=scope,
        data={"operator_id": fix.operator_id, "status": fix.status.value} | (data or {}),
    )


def _path_inside_m(airspace: Airspace, fence: Fence, previous: Sequence[Any], fix: DroneTelemetry) -> float:
    """Return how many metres of the straight path from the previous fix to this one lie inside the fence."""
    projection = airspace.fence_set.projection
    inside = fence.polygon.intersection(LineString([(previous[0], previous[1]), (fix.lon, fix.lat)]))
    if projection is None or inside.is_empty:
        return 0.0
    return float(shapely.transform(inside, projection.forward).length)


def airspace_detector(
    fix: DroneTelemetry,
    state: dict[str, Any],
    events: Sequence[FenceEvent],
    previous: Sequence[Any] | None,
    airspace: Airspace,
    rules: DroneRules,
    zone_id: str | None,
) -> Findings:
    """Judge one in-order fix against the airspace, given the tracker's fence events for it.

    `previous` is the drone's last fix before this one (`[lon, lat, height, t_ms]`, None for its first).
    """
    found = Findings()
    flying = fix.status.value in rules.nofly_statuses
    fences = airspace.fence_set
    episodes: dict[str, dict[str, Any]] = state.setdefault("episodes", {})
    # No-fly: the breach of the zone-list detector, with the tracker deciding what is inside.
    inside = {}
    for e in events:
        fence = fences.get(e.fence_id)
        if fence is not None and flying and e.fence_kind == "no_fly" and e.detect in ("enter", "inside"):
            inside[e.fence_id] = (fence.floor_m or 0.0, fence.name)
    _breaches(fix, state.setdefault("nofly", {}).setdefault("open", {}), inside, zone_id, found)
    _crossings(fix, events, previous, airspace, zone_id, found, flying)
    _restricted(fix, events, episodes, airspace, zone_id, found, flying)
    _operating_area(fix, episodes, airspace, zone_id, found, flying, state)
    _height(fix, episodes, airspace, rules, zone_id, found, flying, state)
    _speed(fix, episodes, rules, zone_id, found, flying)
    _status(fix, episodes, zone_id, found)
    return found


def _crossings(
    fix: DroneTelemetry,
    events: Sequence[FenceEvent],
    previous: Sequence[Any] | None,
    airspace: Airspace,
    zone_id: str | None,
    found: Findings,
    flying: bool,
) -> None:
    """One resolved alert per no-fly zone (or restricted zone without permit) crossed between two fixes."""
    if previous is None or not flying:
        return
    for e in events:
        fence = airspace.fence_set.get(e.fence_id)
        if e.detect != "cross" or e.alert not in ("no_fly", "restricted") or fence is None:
            continue
        episode = {"start_ms": int(previous[3]), "count": 1}
        metres = _path_inside_m(airspace, fence, previous, fix)
        gap_s = (fix.observed_ms - int(previous[3])) / 1000
        kind, severity = (
            (NOFLY_CROSS, Severity.critical) if e.alert == "no_fly" else (RESTRICTED_NO_PERMIT, Severity.high)
        )
        found.opened += 1
        found.alerts.append(
            _alert(
                fix,
                zone_id,
                episode,
                True,
                kind=kind,
                severity=severity,
                measured=round(metres, 1),
                threshold=0.0,
                threshold_type="UPPER",
                unit="m inside",
                description=f"Drone {fix.drone_id} ({fix.operator_id}) crossed {fence.kind.replace('_', '-')} zone "
                f"{fence.id}: {metres:.0f} m inside between two fixes {gap_s:.0f} s apart",
                scope=fence.id,
                data=_fence_data(fence.id, fence.kind, fence.name)
                | {"detect": "cross", "previous_fix": [previous[0], previous[1], previous[2], int(previous[3])]},
            )
        )


def _restricted(
    fix: DroneTelemetry,
    events: Sequence[FenceEvent],
    episodes: dict[str, dict[str, Any]],
    airspace: Airspace,
    zone_id: str | None,
    found: Findings,
    flying: bool,
) -> None:
    """One alert per stay of a flying drone in a restricted zone whose operator holds no permit in force."""
    now = {e.fence_id for e in events if flying and e.alert == "restricted" and e.detect in ("enter", "inside")}
    keys = {f"{RESTRICTED_NO_PERMIT}|{fid}" for fid in now} | {
        k for k in episodes if k.startswith(RESTRICTED_NO_PERMIT)
    }
    for key in sorted(keys):
        fence_id = key.partition("|")[2]
        fence = airspace.fence_set.get(fence_id)
        name = fence.name if fence is not None else fence_id
        episode, resolved = _step(episodes, key, fence_id in now, fix, found, name=name)
        if episode is None:
            continue
        found.alerts.append(
            _alert(
                fix,
                zone_id,
                episode,
                resolved,
                kind=RESTRICTED_NO_PERMIT,
                severity=Severity.high,
                measured=fix.height_agl_m,
                threshold=0.0,
                threshold_type="UPPER",
                unit="m AGL",
                description=f"Drone {fix.drone_id} ({fix.operator_id}) in restricted zone {fence_id} without a permit",
                scope=fence_id,
                data=_fence_data(fence_id, "restricted", episode["name"]) | {"permit": False},
            )
        )


def _operating_area(
    fix: DroneTelemetry,
    episodes: dict[str, dict[str, Any]],
    airspace: Airspace,
    zone_id: str | None,
    found: Findings,
    flying: bool,
    state: dict[str, Any],
) -> None:
    """One alert while a flying drone is outside every operating area declared for its operator."""
    declared = airspace.declared_areas(fix.operator_id, fix.observed_ms) if flying else []
    held = set(state.get("fences", {}).get("inside", ()))
    outside = bool(declared) and not any(f.id in held for f in declared)
    episode, resolved = _step(episodes, LEFT_OPERATING_AREA, outside, fix, found)
    if episode is None:
        return
    distance = 0.0
    projection = airspace.fence_set.projection
    if outside and projection is not None:
        x, y = projection.to_xy(fix.lon, fix.lat)
        point = shapely.Point(x, y)
        distance = min(float(shapely.transform(f.polygon, projection.forward).distance(point)) for f in declared)
    areas = [f.id for f in declared]
    if outside:
        episode["areas"] = areas
    found.alerts.append(
        _alert(
            fix,
            zone_id,
            episode,
            resolved,
            kind=LEFT_OPERATING_AREA,
            severity=Severity.high,
            measured=round(distance, 1),
            threshold=0.0,
            threshold_type="UPPER",
            unit="m outside",
            description=f"Drone {fix.drone_id} ({fix.operator_id}) outside its declared operating area"
            + (f" by {distance:.0f} m" if outside else ": back inside or landed"),
            data={"fence_kind": "operating_area", "declared_areas": episode.get("areas", areas)},
        )
    )


def _height(
    fix: DroneTelemetry,
    episodes: dict[str, dict[str, Any]],
    airspace: Airspace,
    rules: DroneRules,
    zone_id: str | None,
    found: Findings,
    flying: bool,
    state: dict[str, Any],
) -> None:
    """One alert while a flying drone is above the height limit: a fence's `max_height_agl_m`, else the default."""
    overrides = sorted(
        (fence.max_height_agl_m, fence.id)
        for fence_id in state.get("fences", {}).get("inside", ())
        if (fence := airspace.fence_set.get(fence_id)) is not None and fence.max_height_agl_m is not None
    )
    limit, source = overrides[0] if overrides else (rules.max_height_agl_m, "default")
    known = fix.height_agl_m > UNKNOWN_HEIGHT_M
    episode, resolved = _step(episodes, HEIGHT_LIMIT, flying and known and fix.height_agl_m > limit, fix, found)
    if episode is None:
        return
    episode["max_m"] = max(episode.get("max_m", 0.0), fix.height_agl_m) if not resolved else episode.get("max_m", 0.0)
    found.alerts.append(
        _alert(
            fix,
            zone_id,
            episode,
            resolved,
            kind=HEIGHT_LIMIT,
            severity=Severity.high,
            measured=fix.height_agl_m,
            threshold=limit,
            threshold_type="UPPER",
            unit="m AGL",
            description=f"Drone {fix.drone_id} ({fix.operator_id}) at {fix.height_agl_m:.0f} m above ground "
            f"(limit {limit:.0f} m)",
            data={"limit_from": source, "highest_m": episode["max_m"]},
        )
    )


def _speed(
    fix: DroneTelemetry,
    episodes: dict[str, dict[str, Any]],
    rules: DroneRules,
    zone_id: str | None,
    found: Findings,
    flying: bool,
) -> None:
    """One alert while a flying drone reports a horizontal speed above the limit (255 m/s means unknown)."""
    known = fix.speed_h_mps < UNKNOWN_SPEED_MPS
    over = flying and known and fix.speed_h_mps > rules.max_speed_mps
    episode, resolved = _step(episodes, SPEED_LIMIT, over, fix, found)
    if episode is None:
        return
    if not resolved:
        episode["max_mps"] = max(episode.get("max_mps", 0.0), fix.speed_h_mps)
    found.alerts.append(
        _alert(
            fix,
            zone_id,
            episode,
            resolved,
            kind=SPEED_LIMIT,
            severity=Severity.medium,
            measured=fix.speed_h_mps,
            threshold=rules.max_speed_mps,
            threshold_type="UPPER",
            unit="m/s",
            description=f"Drone {fix.drone_id} ({fix.operator_id}) at {fix.speed_h_mps:.1f} m/s "
            f"(limit {rules.max_speed_mps:.1f} m/s)",
            data={"fastest_mps": episode.get("max_mps", fix.speed_h_mps)},
        )
    )


def _status(fix: DroneTelemetry, episodes: dict[str, dict[str, Any]], zone_id: str | None, found: Findings) -> None:
    """One alert per episode of a drone declaring an emergency or a Remote ID system failure."""
    for kind, status, severity in (
        (DRONE_EMERGENCY, DroneStatus.emergency, Severity.critical),
        (REMOTE_ID_FAILURE, DroneStatus.remote_id_failure, Severity.high),
    ):
        before = found.opened
        episode, resolved = _step(episodes, kind, fix.status is status, fix, found)
        found.opened = before  # the drone's own status is not a rule violation
        if episode is None:
            continue
        found.alerts.append(
            _alert(
                fix,
                zone_id,
                episode,
                resolved,
                kind=kind,
                severity=severity,
                measured=fix.height_agl_m,
                threshold=0.0,
                threshold_type="UPPER",
                unit="m AGL",
                description=f"Drone {fix.drone_id} ({fix.operator_id}) reports status {status.value}"
                + ("" if not resolved else f"; now {fix.status.value}"),
                data={"reported_status": status.value},
            )
        )
