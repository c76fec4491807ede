"""Read alerts from Redis: filters, newest first, cursor pagination stable under inserts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from redis.asyncio import Redis

from api.exceptions import BadCursorError, NotFoundError
from streams.keys import Keys
from streams.models import Alert, AlertPage, AlertStatus, Domain, Severity

SCAN_CHUNK = 500
SCAN_LIMIT = 200_000


@dataclass(frozen=True)
class AlertFilter:
    """What an operator asked for; None means any."""

    domain: Domain | None = None
    kind: str | None = None
    severity: frozenset[Severity] | None = None
    status: frozenset[AlertStatus] | None = None
    zone_id: str | None = None
    since: datetime | None = None

    def matches(self, alert: Alert) -> bool:
        """Return whether an alert passes every filter."""
        return (
            (self.domain is None or alert.domain == self.domain)
            and (self.kind is None or alert.kind == self.kind)
            and (self.severity is None or alert.severity in self.severity)
            and (self.status is None or alert.status in self.status)
            and (self.zone_id is None or alert.zone_id == self.zone_id)
            and (self.since is None or alert.last_seen >= self.since)
        )


def _parse_cursor(cursor: str) -> tuple[int, str]:
    score, sep, alert_id = cursor.partition(":")
    if not sep or not score.lstrip("-").isdigit() or not alert_id:
        raise BadCursorError(f"cursor {cursor!r} is not one this API issued; start again without a cursor")
    return int(score), alert_id


async def get_alert(redis: Redis, keys: Keys, alert_id: str) -> Alert:
    """Return one alert or raise NotFoundError."""
    raw = await redis.get(keys.alert(alert_id))
    if raw is None:
        raise NotFoundError(f"no alert with id {alert_id!r}")
    return Alert.model_validate_json(raw)


async def list_alerts(redis: Redis, keys: Keys, flt: AlertFilter, limit: int, cursor: str | None) -> AlertPage:
    """Return up to `limit` matching alerts, newest first_seen first, and the cursor of the next page."""
    max_score: float = float("inf")
    after: tuple[int, str] | None = None
    if cursor:
        after = _parse_cursor(cursor)
        max_score = after[0]
    items: list[Alert] = []
    scanned = 0
    offset = 0
    while len(items) < limit and scanned < SCAN_LIMIT:
        chunk = cast(
            list[tuple[bytes | str, float]],
            await redis.zrevrangebyscore(
                keys.alert_index, max_score, "-inf", start=offset, num=SCAN_CHUNK, withscores=True
            ),
        )
        if not chunk:
            return AlertPage(items=items)
        offset += len(chunk)
        scanned += len(chunk)
        ids = [(m.decode() if isinstance(m, bytes) else m, int(s)) for m, s in chunk]
        if after is not None:
            # Same-score members come in reverse lexicographic order; skip up to and including the cursor's.
            ids = [(i, s) for i, s in ids if s < after[0] or i < after[1]]
        raws = await redis.mget([keys.alert(i) for i, _ in ids]) if ids else []
        for (alert_id, score), raw in zip(ids, raws, strict=True):
            if raw is None:
                continue
            alert = Alert.model_validate_json(raw)
            if flt.matches(alert):
                items.append(alert)
                if len(items) == limit:
                    return AlertPage(items=items, next_cursor=f"{score}:{alert_id}")
    return AlertPage(items=items, next_cursor=None)
