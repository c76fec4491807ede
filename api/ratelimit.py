"""Ingest rate limit: one token bucket per API key in Redis, so every API replica shares it."""

from __future__ import annotations

import math

from fastapi import Request
from redis.asyncio import Redis

from api.auth import Principal
from api.exceptions import RateLimitedError
from streams.keys import Keys
from streams.settings import RateLimit

# Refill by the time elapsed (Redis' clock, so replicas agree), then take one token or say how long to wait.
TOKEN_BUCKET = """
redis.replicate_commands()
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local held = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(held[1]) or burst
local ts = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""


async def take_token(client: Redis, keys: Keys, key_name: str, limit: RateLimit) -> float:
    """Take one request from the key's bucket; return 0 if allowed, else the seconds until one is."""
    wait = await client.eval(TOKEN_BUCKET, 1, keys.rate_bucket(key_name), limit.per_s, limit.burst)  # type: ignore[misc]
    return float(wait)


async def ingest_rate_limit(request: Request) -> None:
    """Refuse with 429 and Retry-After when the caller's key is over its role's ingest rate."""
    state = request.app.state
    principal: Principal = request.state.principal
    limit = state.options.ingest_rate.get(principal.role)
    if limit is None:
        return
    wait = await take_token(state.redis, state.keys, principal.name, limit)
    if wait > 0:
        retry = max(1, math.ceil(wait))
        raise RateLimitedError(
            f"key {principal.name!r} is over its ingest rate of {limit.per_s:g}/s (bursts of {limit.burst}); "
            f"retry after {retry} s",
            retry,
        )
