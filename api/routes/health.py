"""GET /health: are Kafka and Redis reachable?"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import RedisDep, SettingsDep
from api.services.health import kafka_ok, redis_ok

router = APIRouter(tags=["health"])


@router.get("/health", responses={503: {"description": "a dependency is down; `unavailable` names it"}})
async def health(settings: SettingsDep, redis: RedisDep) -> JSONResponse:
    """Report each dependency; 503 names what is down."""
    kafka, red = await asyncio.gather(kafka_ok(settings), redis_ok(redis, settings))
    checks = {"kafka": "ok" if kafka else "down", "redis": "ok" if red else "down"}
    down = [name for name, state in checks.items() if state != "ok"]
    body: dict[str, object] = {"status": "ok" if not down else "degraded", "checks": checks}
    if down:
        body["unavailable"] = down
        body["detail"] = (
            f"unavailable: {', '.join(down)}; "
            "check the servers named by CITY_KAFKA__BOOTSTRAP_SERVERS / CITY_REDIS__URL"
        )
    return JSONResponse(status_code=503 if down else 200, content=body)
