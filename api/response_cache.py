"""Answers of the polled GET routes, kept in memory until Redis reports a change to what they read.

Dashboards and planners ask GET /alerts and GET /aggregates the same questions over and over. An answer is
kept under its path, query string and the caller's role (these routes answer every key of one role alike),
with the generations of the Redis key prefixes it depends on (`streams/changefeed.py`: the alerts version,
the windows versions), for at most `response_cache_s` and never past the `fresh_until` the route set on
request.state (a snooze ending). A request whose key checks out (as the routes check it:
`api/auth.authenticate`, trusted for `key_cache_s` without asking Redis), with the same path, query and
role, while none of those prefixes moved, gets the kept bytes: no routing or validation, and no Redis round
trip once its key is trusted. Everything else goes through the app as before (no or a bad key, the feed
down, `Cache-Control: no-cache`), and a 200 answer it gives is kept, under the generations read before it
ran.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import principal_of
from api.exceptions import UnauthorizedError

MAX_ENTRIES = 1024
MAX_BYTES = 64 << 20  # kept answers of one API process, in all
MAX_ANSWER_BYTES = 1 << 20  # a larger answer (a planner's 50,000 windows) is not kept


@dataclass(frozen=True)
class Kept:
    """One kept answer: the generations it was computed at, until when it holds, and the response."""

    stamp: tuple[int, ...]
    expires: float  # time.monotonic()
    start: Message
    body: bytes
    route: Any


class CacheCounts(dict[str, int]):
    """Requests of the cached routes by outcome: hit (a kept answer), joined (the answer another request was
    computing), miss (computed), bypass (the change feed down: computed)."""

    def __init__(self) -> None:
        super().__init__(hit=0, joined=0, miss=0, bypass=0)

    def render(self, name: str) -> list[str]:
        """Return the counts as one Prometheus counter family."""
        lines = [
            f"# HELP {name} requests of GET /alerts and /aggregates by how they were answered",
            f"# TYPE {name} counter",
        ]
        return lines + [f'{name}{{result="{result}"}} {count}' for result, count in self.items()]


class ResponseCache:
    """ASGI middleware keeping the 200 answers of some GET routes while their Redis prefixes do not change."""

    def __init__(
        self, app: ASGIApp, routes: Mapping[str, tuple[str, ...]], max_age_s: float, counts: CacheCounts
    ) -> None:
        self.app = app
        self.routes = dict(routes)
        self.max_age_s = max_age_s
        self.entries: dict[tuple[str, bytes, str], Kept] = {}
        self.kept_bytes = 0
        self.flights: dict[tuple[str, bytes, str], tuple[tuple[int, ...], asyncio.Future[Kept | None]]] = {}
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer from a kept response when it still holds, else run the app and keep its answer."""
        prefixes = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if prefixes is None or scope["method"] != "GET" or self.max_age_s <= 0:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        feed = getattr(state, "change_feed", None)
        stamp = feed.stamp(prefixes) if feed is not None else None
        if stamp is None:
            self.counts["bypass"] += 1
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        role = await _role(state, headers)
        key = None if role is None else (scope["path"], scope.get("query_string", b""), role)
        if key is not None and "no-cache" not in headers.get("cache-control", ""):
            kept = self.entries.get(key)
            if kept is not None and kept.stamp == stamp and kept.expires > time.monotonic():
                self.counts["hit"] += 1
                await _send_kept(kept, scope, send)
                return
            flight = self.flights.get(key)
            if flight is not None and flight[0] == stamp:
                # The same question is being answered at this generation: wait for that answer instead of
                # computing it again (after a write, every dashboard asks at once).
                kept = await asyncio.shield(flight[1])
                if kept is not None:
                    self.counts["joined"] += 1
                    await _send_kept(kept, scope, send)
                    return
        self.counts["miss"] += 1
        future: asyncio.Future[Kept | None] | None = None
        if key is not None:
            future = asyncio.get_running_loop().create_future()
            self.flights[key] = (stamp, future)
        kept = None
        try:
            kept = await self._run_and_keep(scope, receive, send, stamp)
        finally:
            if future is not None and key is not None:
                if key in self.flights and self.flights[key][1] is future:
                    del self.flights[key]
                future.set_result(kept)

    async def _run_and_keep(self, scope: Scope, receive: Receive, send: Send, stamp: tuple[int, ...]) -> Kept | None:
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0
        complete = False

        async def keeping_send(message: Message) -> None:
            nonlocal start, complete, size
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                size += len(body)
                if size <= MAX_ANSWER_BYTES:
                    chunks.append(body)
                complete = not message.get("more_body", False)
            await send(message)

        await self.app(scope, receive, keeping_send)
        state = scope.get("state") or {}
        principal = state.get("principal")
        if start is None or start["status"] != 200 or not complete or principal is None or size > MAX_ANSWER_BYTES:
            return None
        expires = time.monotonic() + self.max_age_s
        fresh_until: datetime | None = state.get("fresh_until")
        if fresh_until is not None:
            expires = min(expires, time.monotonic() + (fresh_until - datetime.now(UTC)).total_seconds())
        kept = Kept(stamp, expires, start, b"".join(chunks), scope.get("route"))
        self._keep((scope["path"], scope.get("query_string", b""), str(principal.role)), kept)
        return kept

    def _keep(self, key: tuple[str, bytes, str], kept: Kept) -> None:
        """Keep an answer, forgetting the oldest ones past MAX_ENTRIES or MAX_BYTES."""
        old = self.entries.pop(key, None)
        if old is not None:
            self.kept_bytes -= len(old.body)
        while self.entries and (len(self.entries) >= MAX_ENTRIES or self.kept_bytes + len(kept.body) > MAX_BYTES):
            self.kept_bytes -= len(self.entries.pop(next(iter(self.entries))).body)
        self.entries[key] = kept
        self.kept_bytes += len(kept.body)


async def _send_kept(kept: Kept, scope: Scope, send: Send) -> None:
    scope["route"] = kept.route  # requests are timed under their route, as on the app's path
    await send(kept.start)
    await send({"type": "http.response.body", "body": kept.body})


async def _role(state: Any, headers: Headers) -> str | None:
    """Return the role of the request's key, as the routes' key check finds it (None: no valid key; the app
    answers that request, with its 401)."""
    try:
        principal = await principal_of(state, headers)
    except (UnauthorizedError, RedisError):
        return None
    return str(principal.role)
