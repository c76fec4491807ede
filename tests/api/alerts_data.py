"""Alerts written the way workers write them: through the real RedisSink (SET, ZADD, XADD in one transaction)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from processors.outcome import BatchOutcome
from processors.sink import RedisSink
from streams.keys import Keys
from streams.models import Alert, AlertStatus, Domain, Severity
from streams.settings import Settings

NOW = datetime.now(UTC).replace(microsecond=0)


def make_alert(
    alert_id: str,
    *,
    minutes_ago: float = 30,
    kind: str = "congestion",
    source_id: str = "loop-1",
    severity: Severity = Severity.medium,
    status: AlertStatus = AlertStatus.open,
    domain: Domain = Domain.traffic,
    zone_id: str = "changan",
    count: int = 1,
) -> Alert:
    """Return an alert first seen `minutes_ago`, last seen a minute later."""
    first = NOW - timedelta(minutes=minutes_ago)
    return Alert(
        id=alert_id,
        domain=domain,
        kind=kind,
        severity=severity,
        status=status,
        source_id=source_id,
        zone_id=zone_id,
        first_seen=first,
        last_seen=first + timedelta(minutes=1),
        count=count,
        resolved_at=first + timedelta(minutes=1) if status == AlertStatus.resolved else None,
    )


def write_alerts(settings: Settings, *alerts: Alert) -> None:
    """Commit alerts as one worker batch."""

    async def commit() -> None:
        client = Redis.from_url(settings.redis.url.get_secret_value())
        try:
            outcome = BatchOutcome(alerts[0].domain, 60)
            for alert in alerts:
                outcome.alerts[alert.id] = alert
            result = await RedisSink(client, Keys(settings.redis.key_prefix)).commit(
                f"t-{uuid.uuid4().hex[:6]}", 0, -1, 0, outcome, {}
            )
            assert result.applied
        finally:
            await client.aclose()

    asyncio.run(commit())
