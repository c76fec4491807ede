"""Where the airborne drones are now, for the dashboard's map."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import require
from api.deps import KeysDep, RedisDep, SettingsDep
from api.models import DronePage
from api.roles import Role
from api.services.drones import airborne_drones
from streams.topics import Topics

router = APIRouter(prefix="/drones", tags=["drones"], dependencies=[Depends(require(Role.operator, Role.planner))])


@router.get("", response_model=DronePage)
async def drones(
    redis: RedisDep,
    keys: KeysDep,
    settings: SettingsDep,
    max_age_s: Annotated[int, Query(ge=1, le=3600, description="only drones with a fix this recent (event time)")] = 60,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> DronePage:
    """Return the latest fix of each airborne drone, newest first."""
    since_ms = int(time.time() * 1000) - max_age_s * 1000
    topic = Topics(settings.kafka.topic_namespace).drone
    return DronePage(items=await airborne_drones(redis, keys, topic, settings.kafka.partitions, since_ms, limit))
