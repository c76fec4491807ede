"""Where the airborne drones are: the latest fix of each, read from what the worker already keeps.

The worker keeps, per drone topic partition, a sorted set of the drones whose silence would be an alarm
(airborne, not yet reported silent) scored by their last fix (event ms), and each drone's state, whose
`silence` part holds that fix's position and zone. So this reads a few sorted-set ranges and one HMGET:
no scan of all drones, and no extra write on the worker's path.
"""

from __future__ import annotations

from typing import Any, cast

import orjson
from redis.asyncio import Redis

from api.models import DronePosition
from processors.alerts import ms_to_dt
from streams.keys import Keys


async def airborne_drones(
    client: Redis, keys: Keys, drone_topic: str, partitions: int, since_ms: int, limit: int
) -> list[DronePosition]:
    """Return the latest fix of each airborne drone heard from at or after `since_ms`, newest first."""
    async with client.pipeline(transaction=False) as pipe:
        for partition in range(partitions):
            pipe.zrevrangebyscore(
                keys.silence_index(drone_topic, partition), "+inf", since_ms, start=0, num=limit, withscores=True
            )
        ranges = cast(list[list[tuple[bytes, float]]], await pipe.execute())
    newest = sorted(((m.decode(), int(s)) for r in ranges for m, s in r), key=lambda p: (-p[1], p[0]))[:limit]
    if not newest:
        return []
    raws = await client.hmget(keys.state("drone"), [drone_id for drone_id, _ in newest])
    out = []
    for (drone_id, _), raw in zip(newest, raws, strict=True):
        fix = _last_fix(raw)
        if fix is not None:
            out.append(
                DronePosition(
                    drone_id=drone_id,
                    lon=fix["lon"],
                    lat=fix["lat"],
                    zone_id=fix.get("zone"),
                    observed_at=ms_to_dt(fix["last_ms"]),
                )
            )
    return out


def _last_fix(raw: bytes | str | None) -> dict[str, Any] | None:
    """Return the drone state's last fix (`silence`: last_ms, lon, lat, zone), if it has one."""
    if raw is None:
        return None
    fix = orjson.loads(raw).get("silence") or {}
    return fix if {"last_ms", "lon", "lat"} <= fix.keys() else None
