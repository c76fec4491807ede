"""Silent sources: a sensor offline, a meter offline, an airborne drone whose telemetry stopped.

A silence is judged two ways that agree on the alert they make:
- live, by the worker's silence check, which asks each caught-up partition for sources silent longer
  than the timeout (`silent_alert`, open), so the alert fires although no message arrives at all;
- in the stream, when the source's next reading comes after a gap longer than the timeout
  (`on_reading`): the open alert is resolved with the silence's length, or, if nobody saw the silence
  live (a replay, a backlog), it is raised already resolved.
The alert id comes from the rule, the source and the time of the last reading before the silence, so
both ways find the same alert and a replay makes no second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processors.alerts import ms_to_dt
from processors.outcome import BatchOutcome
from streams.models import Alert, AlertStatus, Domain, GeoPoint, SensorEvent, Severity, alert_id


@dataclass(frozen=True)
class SilenceRule:
    """What silence means for one domain's sources."""

    kind: str
    domain: Domain
    severity: Severity
    timeout_ms: int
    what: str  # "sensor", "meter", "drone" in the description


def on_reading(
    rule: SilenceRule, event: SensorEvent, zone_id: str, state: dict[str, Any], out: BatchOutcome, armed: bool = True
) -> None:
    """Account for an in-order reading: close a silence it ends, then remember it as the source's last sign of life.

    `armed` says whether silence after this reading is an alarm (a drone on the ground may go quiet).
    """
    st = state.setdefault("silence", {})
    last_ms = st.get("last_ms")
    now_ms = event.observed_ms
    if last_ms is not None and (st.get("open") or (st.get("armed") and now_ms - last_ms > rule.timeout_ms)):
        out.emit(_alert(rule, event.source_id, st, now_ms, resolved=True))
    st.update(last_ms=now_ms, armed=armed, open=False, zone=zone_id, lon=event.lon, lat=event.lat)
    out.silence_watch[event.source_id] = now_ms if armed else None


def silent_alert(rule: SilenceRule, source_id: str, state: dict[str, Any], now_ms: int, out: BatchOutcome) -> bool:
    """Raise the open alert of a source silent past the timeout at `now_ms`; return whether it did."""
    st = state.get("silence") or {}
    last_ms = st.get("last_ms")
    if last_ms is None or not st.get("armed") or st.get("open") or now_ms - last_ms <= rule.timeout_ms:
        return False
    st["open"] = True
    out.emit(_alert(rule, source_id, st, now_ms, resolved=False))
    out.silence_watch[source_id] = None  # alerted: the live check need not look at it again
    out.dirty_sources.add(source_id)
    return True


def _alert(rule: SilenceRule, source_id: str, st: dict[str, Any], now_ms: int, resolved: bool) -> Alert:
    last_ms = st["last_ms"]
    silent_s = (now_ms - last_ms) / 1000
    timeout_s = rule.timeout_ms / 1000
    if resolved:
        description = f"{rule.what} {source_id} was silent for {silent_s:.0f} s (limit {timeout_s:.0f} s)"
    else:
        description = f"{rule.what} {source_id} silent for {silent_s:.0f} s (limit {timeout_s:.0f} s)"
    return Alert(
        id=alert_id(rule.kind, source_id, ms_to_dt(last_ms)),
        domain=rule.domain,
        kind=rule.kind,
        severity=rule.severity,
        status=AlertStatus.resolved if resolved else AlertStatus.open,
        source_id=source_id,
        zone_id=st.get("zone"),
        location=GeoPoint(coordinates=(st["lon"], st["lat"])) if "lon" in st else None,
        # The evidence of a resolved silence is its whole length; of an open one, the length so far.
        measured_value=silent_s,
        expected_value=None,
        threshold=timeout_s,
        threshold_type="UPPER",
        unit="s",
        description=description,
        first_seen=ms_to_dt(last_ms),
        last_seen=ms_to_dt(now_ms),
        count=1,
        resolved_at=ms_to_dt(now_ms) if resolved else None,
        data={"last_reading_at": ms_to_dt(last_ms).isoformat()},
    )
