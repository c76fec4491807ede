"""Fences set at run time, kept in Redis: one FeatureCollection per kind and a version counter.

The API writes a kind and bumps the version in one transaction; each worker checks the version at most once
per `CITY_DRONE__FENCE_REFRESH_S` (at the start of a drone batch) and rebuilds its airspace when it moved. A
kind never set at run time keeps the zones file's fences.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import orjson
from redis.asyncio import Redis

from geo.fences import FenceError
from geo.zones import ZoneIndex
from processors.drone.airspace import (
    AIRSPACE_KINDS,
    Airspace,
    AirspaceKind,
    load_permits_file,
    validate_collection,
    zone_file_collections,
)
from streams.keys import Keys

log = logging.getLogger(__name__)


async def read_collections(
    redis: Redis, keys: Keys, zones: ZoneIndex
) -> tuple[int, dict[AirspaceKind, dict[str, Any]], set[AirspaceKind]]:
    """Return the fence version, each kind's fences (Redis's, else the zones file's) and the kinds set at run time."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(keys.fences_version)
        for kind in AIRSPACE_KINDS:
            pipe.get(keys.fences(kind))
        version, *raws = await pipe.execute()
    collections = zone_file_collections(zones)
    runtime: set[AirspaceKind] = set()
    for kind, raw in zip(AIRSPACE_KINDS, raws, strict=True):
        if raw is not None:
            collections[kind] = orjson.loads(raw)
            runtime.add(kind)
    return (0 if version is None else int(version)), collections, runtime


async def write_collection(
    redis: Redis, keys: Keys, zones: ZoneIndex, kind: AirspaceKind, body: Any
) -> tuple[int, int]:
    """Validate and store one kind's fences, bumping the version; return (version, fence count).

    Raises FenceError (with the reason) for an invalid collection, or one whose ids clash with another
    kind's fences; nothing is stored then.
    """
    collection = validate_collection(kind, body)
    _, collections, _ = await read_collections(redis, keys, zones)
    Airspace.build({**collections, kind: collection}, {}, 0)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.fences(kind), orjson.dumps(collection))
        pipe.incr(keys.fences_version)
        _, version = await pipe.execute()
    return int(version), len(collection["features"])


class FenceSource:
    """A worker's view of the fences: checks the version now and then and rebuilds the airspace when it moved."""

    def __init__(self, redis: Redis, keys: Keys, zones: ZoneIndex, permits_file: Path | None, refresh_s: float) -> None:
        self.redis, self.keys, self.zones = redis, keys, zones
        self.permits = load_permits_file(permits_file)
        self.refresh_s = refresh_s
        self.version = 0
        self.checked = float("-inf")

    async def changed(self) -> Airspace | None:
        """Return a new airspace if the fences changed since the last check (at most one check per refresh_s)."""
        now = time.monotonic()
        if now - self.checked < self.refresh_s:
            return None
        self.checked = now
        raw = await self.redis.get(self.keys.fences_version)
        version = 0 if raw is None else int(raw)
        if version == self.version:
            return None
        version, collections, runtime = await read_collections(self.redis, self.keys, self.zones)
        try:
            airspace = Airspace.build(collections, self.permits, version)
        except FenceError as exc:  # stored fences were validated alone; together they may clash (a shared id)
            log.error(
                'fences unusable, keeping version=%d new_version=%d error="%s": fix them with PUT /zones/{kind}',
                self.version,
                version,
                exc,
            )
            self.version = version
            return None
        log.info(
            'fences changed version=%d kinds_set="%s" fences=%d',
            version,
            ",".join(sorted(runtime)),
            len(airspace.fence_set),
        )
        self.version = version
        return airspace
