"""Snoozes: hide one rule's alerts of one source until a time; kept in one Redis hash."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from api.exceptions import NotFoundError
from api.models import Snooze, SnoozeCreate
from streams.keys import Keys
from streams.models import Alert

SNOOZE_ID = re.compile(r"^[0-9a-f]{16}$")


async def create_snooze(client: Redis, keys: Keys, request: SnoozeCreate, by: str) -> Snooze:
    """Store a snooze lasting request.minutes from now."""
    now = datetime.now(UTC)
    snooze = Snooze(
        id=uuid.uuid4().hex[:16],
        kind=request.kind,
        source_id=request.source_id,
        until=now + timedelta(minutes=request.minutes),
        by=by,
        created_at=now,
    )
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(keys.snoozes, snooze.id, snooze.model_dump_json())
        pipe.incr(keys.alerts_version)  # cached alert lists hid nothing of it yet
        await pipe.execute()
    return snooze


async def active_snoozes(client: Redis, keys: Keys, now: datetime) -> list[Snooze]:
    """Return the snoozes not yet over, soonest to end first, forgetting the ended ones."""
    return await settle_snoozes(client, keys, await client.hgetall(keys.snoozes), now)  # type: ignore[misc]


async def settle_snoozes(client: Redis, keys: Keys, raw: Mapping[Any, bytes | str], now: datetime) -> list[Snooze]:
    """Return the snoozes of an HGETALL reply not yet over, soonest to end first, forgetting the ended ones."""
    snoozes = [Snooze.model_validate_json(v) for v in raw.values()]
    ended = [s.id for s in snoozes if s.until <= now]
    if ended:
        await client.hdel(keys.snoozes, *ended)  # type: ignore[misc]
    return sorted((s for s in snoozes if s.until > now), key=lambda s: (s.until, s.id))


async def delete_snooze(client: Redis, keys: Keys, snooze_id: str) -> None:
    """End a snooze now, or raise NotFoundError."""
    if not SNOOZE_ID.match(snooze_id) or not await client.hdel(keys.snoozes, snooze_id):  # type: ignore[misc]
        raise NotFoundError(f"no snooze with id {snooze_id!r}; GET /snoozes lists the active ones")
    await client.incr(keys.alerts_version)  # cached alert lists hid its alerts


def snoozed_until(snoozes: list[Snooze], alert: Alert) -> datetime | None:
    """Return when the last snooze covering this alert's rule and source ends, if any does."""
    ends = [s.until for s in snoozes if s.kind == alert.kind and s.source_id == alert.source_id]
    return max(ends) if ends else None
