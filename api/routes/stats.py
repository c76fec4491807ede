"""GET /stats: exact event and dead-letter counters per input topic."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from api.auth import require
from api.deps import KeysDep, RedisDep
from api.roles import Role

router = APIRouter(tags=["health"], dependencies=[Depends(require(Role.operator, Role.planner))])


class TopicCounters(BaseModel):
    """Events applied and values dead-lettered, per input topic, since the deployment started."""

    events: dict[str, int]
    deadletters: dict[str, int]


@router.get("/stats", response_model=TopicCounters)
async def stats(redis: RedisDep, keys: KeysDep) -> TopicCounters:
    """Return the workers' exact counters (committed with the results, so they never double count)."""
    raw = await redis.hgetall(keys.stats)
    counters = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
    return TopicCounters(
        events={k.removeprefix("events:"): v for k, v in counters.items() if k.startswith("events:")},
        deadletters={k.removeprefix("deadletter:"): v for k, v in counters.items() if k.startswith("deadletter:")},
    )
