"""Feeder-level outage: one alert when most meters of a feeder lose supply together, not one per meter.

A feeder's meters are spread over every partition (they are keyed by meter), so its state lives in one
Redis key per feeder that every partition reads and writes inside its commit, guarded by WATCH: two
partitions changing the same feeder at once cannot both commit, and the loser redoes its batch on the
new state. Only supply transitions (a meter going dark or coming back, and a meter's first reading,
which tells the feeder it exists) touch the key, so normal batches never contend for it.

The state is pure data: `{"meters": {meter_id: dark_since_ms or 0}, "episode": {...} or None}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processors.alerts import ms_to_dt
from streams.models import Alert, AlertStatus, Domain, GeoPoint, Severity, alert_id
from streams.settings import EnergyRules

FEEDER_OUTAGE = "feeder_outage"


@dataclass(frozen=True)
class SupplyTransition:
    """A meter's supply changed (or the meter is new to its feeder), as seen in one in-order reading."""

    feeder_id: str
    meter_id: str
    observed_ms: int
    dark: bool
    lon: float
    lat: float
    zone_id: str


def supply_transition(
    state: dict[str, Any], feeder_id: str, meter_id: str, observed_ms: int, dark: bool, where: tuple[float, float, str]
) -> SupplyTransition | None:
    """Return the transition one reading makes to its meter's supply state (None when nothing changed)."""
    st = state.setdefault("supply", {})
    if st.get("feeder") == feeder_id and st.get("dark") == dark:
        return None
    st.update(feeder=feeder_id, dark=dark)
    lon, lat, zone_id = where
    return SupplyTransition(feeder_id, meter_id, observed_ms, dark, lon, lat, zone_id)


def feeder_step(
    feeder_id: str, state: dict[str, Any] | None, transitions: list[SupplyTransition], rules: EnergyRules
) -> tuple[dict[str, Any], list[Alert]]:
    """Apply one batch's transitions of one feeder in order; return the new state and the alerts it makes.

    An outage opens when at least `feeder_outage_min_meters` meters, and at least
    `feeder_outage_fraction` of the feeder's known meters, went dark within `feeder_outage_window_s` of
    each other. It lists every meter dark during it, and resolves, with its duration, when the dark
    meters fall below half that fraction (or below the minimum count).
    """
    state = {"meters": dict((state or {}).get("meters", {})), "episode": (state or {}).get("episode")}
    meters: dict[str, int] = state["meters"]
    alerts: dict[str, Alert] = {}
    window_ms = int(rules.feeder_outage_window_s * 1000)
    dark = {m: since for m, since in meters.items() if since > 0}  # kept up to date, not rebuilt per transition
    for t in transitions:
        since = t.observed_ms if t.dark else 0
        meters[t.meter_id] = since
        if since > 0:
            dark[t.meter_id] = since
        else:
            dark.pop(t.meter_id, None)
        episode = state["episode"]
        if episode is None:
            recent = {m: since for m, since in dark.items() if t.observed_ms - since <= window_ms}
            if len(recent) >= rules.feeder_outage_min_meters and len(recent) >= rules.feeder_outage_fraction * len(
                meters
            ):
                start = min(recent.values())
                episode = state["episode"] = {
                    "id": alert_id(FEEDER_OUTAGE, feeder_id, ms_to_dt(start)),
                    "start_ms": start,
                    "meters": sorted(recent),
                    "where": [t.lon, t.lat, t.zone_id],
                }
                alerts[episode["id"]] = _alert(feeder_id, episode, len(meters), t.observed_ms, resolved=False)
            continue
        if t.dark and t.meter_id not in episode["meters"]:
            episode["meters"] = sorted({*episode["meters"], t.meter_id})
            alerts[episode["id"]] = _alert(feeder_id, episode, len(meters), t.observed_ms, resolved=False)
        if len(dark) < rules.feeder_outage_min_meters or len(dark) < rules.feeder_outage_fraction / 2 * len(meters):
            alerts[episode["id"]] = _alert(feeder_id, episode, len(meters), t.observed_ms, resolved=True)
            state["episode"] = None
    return state, list(alerts.values())


def _alert(feeder_id: str, episode: dict[str, Any], known: int, now_ms: int, resolved: bool) -> Alert:
    lon, lat, zone_id = episode["where"]
    affected = episode["meters"]
    duration_s = (now_ms - episode["start_ms"]) / 1000
    if resolved:
        description = (
            f"Feeder {feeder_id}: supply restored after {duration_s:.0f} s; {len(affected)} of {known} meters were out"
        )
    else:
        description = f"Feeder {feeder_id}: {len(affected)} of {known} meters lost supply"
    return Alert(
        id=episode["id"],
        domain=Domain.energy,
        kind=FEEDER_OUTAGE,
        severity=Severity.critical,
        status=AlertStatus.resolved if resolved else AlertStatus.open,
        source_id=feeder_id,
        zone_id=zone_id,
        location=GeoPoint(coordinates=(lon, lat)),
        measured_value=float(len(affected)),
        expected_value=float(known),
        threshold=None,
        threshold_type=None,
        unit="meters",
        description=description,
        first_seen=ms_to_dt(episode["start_ms"]),
        last_seen=ms_to_dt(now_ms),
        count=len(affected),
        resolved_at=ms_to_dt(now_ms) if resolved else None,
        data={"feeder_id": feeder_id, "affected_meters": affected, "meters_on_feeder": known}
        | ({"outage_duration_s": duration_s} if resolved else {}),
    )
