"""Index alerts that older versions wrote without the facet and episode indexes (see processors.alert_index).

Runs when the API starts, and again whenever a request sees the facets hash and alert_index differ in
size (an older worker still writing during an upgrade, or alerts restored from a dump), so a filtered page
never misses an alert. Each chunk is indexed from the JSON Redis holds at that moment, in one script.
"""

from __future__ import annotations

import logging
import time
from typing import cast

from redis.asyncio import Redis

from processors.alert_index import REINDEX_ALERTS, reindex_args
from streams.keys import Keys

log = logging.getLogger(__name__)
CHUNK = 1000
PROGRESS_EVERY_S = 5.0


async def index_gap(client: Redis, keys: Keys) -> int:
    """Return how many alerts of alert_index have no facet recorded (0 when the indexes are complete)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.alert_index)
        pipe.hlen(keys.alert_facets)
        total, indexed = await pipe.execute()
    return int(total) - int(indexed)


async def index_missing(client: Redis, keys: Keys) -> int:
    """Index every alert of alert_index without a facet; return how many were indexed, logging progress."""
    total = int(await client.zcard(keys.alert_index))
    began = last_log = time.monotonic()
    done = start = 0
    while True:
        members = cast(list[bytes | str], await client.zrange(keys.alert_index, start, start + CHUNK - 1))
        if not members:
            break
        ids = [m.decode() if isinstance(m, bytes) else m for m in members]
        present = await client.hmget(keys.alert_facets, ids)  # type: ignore[misc]
        missing = [i for i, facet in zip(ids, present, strict=True) if facet is None]
        if missing:
            script_keys, args = reindex_args(keys, missing)
            done += int(await client.eval(REINDEX_ALERTS, len(script_keys), *script_keys, *args))  # type: ignore[misc]
        start += len(ids)
        if time.monotonic() - last_log >= PROGRESS_EVERY_S:
            log.info("indexing alerts read=%d of=%d indexed=%d", start, total, done)
            last_log = time.monotonic()
    if done:
        log.info("indexed alerts indexed=%d read=%d seconds=%.1f", done, start, time.monotonic() - began)
    return done


async def ensure_indexed(client: Redis, keys: Keys) -> None:
    """Index the alerts missing from the facet indexes, if any are."""
    if await index_gap(client, keys) != 0:
        await index_missing(client, keys)
