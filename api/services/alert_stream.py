"""Live push of alert changes as Server-Sent Events, read from the alert change stream in Redis.

Each client has its own XREAD cursor and holds at most `sse_batch` entries: it reads the next batch
only once the previous one is written to its socket, so a slow client falls behind in Redis (which
keeps ALERT_EVENTS_MAX changes) and never slows other clients or the workers. The SSE `id:` is the
stream entry id; a client resuming with Last-Event-ID gets every change after it exactly once, or an
`error` event when the stream no longer holds the changes after that id. Each event carries the
alert as it is when sent (the stream records that it changed, not each version).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from api.exceptions import BadRequestError
from api.options import ApiOptions
from api.services.alert_view import AlertReader
from api.services.alerts import AlertFilter
from streams.keys import Keys

ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def parse_entry_id(value: str) -> tuple[int, int]:
    """Return a stream entry id as a comparable pair, or raise BadRequestError."""
    if not ENTRY_ID.match(value):
        raise BadRequestError(f"Last-Event-ID {value!r} is not a stream entry id like 1700000000000-0")
    ms, seq = value.split("-")
    return int(ms), int(seq)


async def start_position(client: Redis, keys: Keys, last_event_id: str | None) -> str:
    """Return the entry id to read after: Last-Event-ID if given (checked), else the newest entry."""
    if last_event_id is not None:
        parse_entry_id(last_event_id)
        return last_event_id
    newest = cast(list[tuple[bytes, Any]], await client.xrevrange(keys.alert_events, count=1))
    return newest[0][0].decode() if newest else "0-0"


async def _trimmed_past(client: Redis, keys: Keys, cursor: str) -> bool:
    """Return whether changes after `cursor` may have been trimmed from the stream already."""
    if cursor == "0-0":
        return False
    oldest = cast(list[tuple[bytes, Any]], await client.xrange(keys.alert_events, count=1))
    return bool(oldest) and parse_entry_id(oldest[0][0].decode()) > parse_entry_id(cursor)


def _entries(answer: Any) -> list[tuple[str, dict[str, str]]]:
    """Return XREAD's entries of the one stream read, decoded."""
    if not answer:
        return []
    return [(_text(i), {_text(k): _text(v) for k, v in fields.items()}) for i, fields in answer[0][1]]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _event(entry_id: str, name: str, data: bytes) -> bytes:
    return b"id: " + entry_id.encode() + b"\nevent: " + name.encode() + b"\ndata: " + data + b"\n\n"


async def alert_events(
    client: Redis, keys: Keys, options: ApiOptions, flt: AlertFilter, cursor: str
) -> AsyncIterator[bytes]:
    """Yield SSE frames: matching alert changes after `cursor`, and a comment when idle for a heartbeat."""
    yield b": connected\n\n"
    if await _trimmed_past(client, keys, cursor):
        detail = f"changes after {cursor} are no longer kept; reload the list with GET /alerts and reconnect without it"
        yield b"event: error\ndata: " + orjson.dumps({"detail": detail, "last_event_id": cursor}) + b"\n\n"
        return
    block_ms = int(options.sse_heartbeat_s * 1000)
    last_sent = time.monotonic()
    while True:
        answer = await client.xread({keys.alert_events: cursor}, count=options.sse_batch, block=block_ms)
        entries = _entries(answer)
        if entries and await _trimmed_past(client, keys, cursor):
            detail = "this client fell behind what the stream keeps; reload GET /alerts and reconnect"
            yield b"event: error\ndata: " + orjson.dumps({"detail": detail}) + b"\n\n"
            return
        reader = AlertReader(client, keys, options, datetime.now(UTC))
        changed = [fields.get("id", "") for _, fields in entries]
        alerts = await reader.load(changed)
        await reader.ensure_episodes([a for a in alerts if a is not None and flt.matches(a)])
        for (entry_id, fields), alert in zip(entries, alerts, strict=True):
            cursor = entry_id
            if alert is None or not flt.matches(alert):
                continue
            body = reader.with_flapping(alert).model_dump(mode="json")
            body["changed_by"] = fields.get("by", "")
            yield _event(entry_id, "alert", orjson.dumps(body))
            last_sent = time.monotonic()
        if time.monotonic() - last_sent >= options.sse_heartbeat_s:
            yield b": heartbeat\n\n"
            last_sent = time.monotonic()
