"""The operators' list as JSON, with recent answers kept while no alert, operator state or snooze changed.

Every writer raises the alerts version in the same atomic step as its write (the sink's INDEX_ALERTS,
the operator actions' script, snooze create/delete, the re-indexing of older data), so an answer computed
at version v is the answer of any later request that reads v. Snoozes also end by time: an answer is kept
no longer than the first active snooze's end. A request reads the version and the index sizes in one
round trip and, on a hit, nothing else.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from api.options import ApiOptions
from api.services.alert_reindex import index_missing
from api.services.alert_view import rows_json
from api.services.alerts import AlertFilter, SortField, SortOrder, list_alerts, new_reader
from streams.keys import Keys

CACHE_ENTRIES = 256


@dataclasses.dataclass
class PageCache:
    """Answers of GET /alerts by query: (alerts version, valid until, JSON)."""

    max_entries: int = CACHE_ENTRIES
    entries: dict[tuple[Any, ...], tuple[int, datetime | None, bytes]] = dataclasses.field(default_factory=dict)

    def get(self, key: tuple[Any, ...], version: int, now: datetime) -> tuple[bytes, datetime | None] | None:
        """Return the answer kept for this query at this version, if still valid, and until when it is."""
        entry = self.entries.get(key)
        if entry is None or entry[0] != version or (entry[1] is not None and now >= entry[1]):
            return None
        return entry[2], entry[1]

    def put(self, key: tuple[Any, ...], version: int, until: datetime | None, body: bytes) -> None:
        """Keep an answer, forgetting the oldest past max_entries (0: keep none)."""
        if self.max_entries <= 0:
            return
        if len(self.entries) >= self.max_entries:
            del self.entries[next(iter(self.entries))]
        self.entries[key] = (version, until, body)


async def _version(client: Redis, keys: Keys) -> int:
    """Return the alerts version, first indexing alerts an older writer left out of the indexes (which raises it)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.get(keys.alerts_version)
        pipe.zcard(keys.alert_index)
        pipe.hlen(keys.alert_facets)
        version, total, indexed = await pipe.execute()
    if int(total) != int(indexed):
        await index_missing(client, keys)
        version = await client.get(keys.alerts_version)
    return int(version or 0)


async def alerts_page_json(
    client: Redis,
    keys: Keys,
    options: ApiOptions,
    cache: PageCache,
    flt: AlertFilter,
    limit: int,
    cursor: str | None,
    sort: SortField = SortField.first_seen,
    order: SortOrder = SortOrder.desc,
) -> tuple[bytes, datetime | None]:
    """Return the AlertReadPage of list_alerts as JSON bytes (the bytes of its model_dump_json), and until when it
    holds if no alert changes (the first active snooze's end; None: until a change)."""
    version = await _version(client, keys)
    key = (dataclasses.replace(flt, now=datetime.min), limit, cursor, sort, order)
    kept = cache.get(key, version, flt.now)
    if kept is not None:
        return kept
    reader = new_reader(client, keys, options, flt)
    page = await list_alerts(client, keys, options, flt, limit, cursor, sort, order, reader)
    body = b'{"items":' + rows_json(page.items) + b',"next_cursor":' + orjson.dumps(page.next_cursor) + b"}"
    snoozes = await reader.snoozes()
    until = min((s.until for s in snoozes), default=None)
    cache.put(key, version, until, body)
    return body, until
