"""API keys: create, list and revoke them (stored hashed), and the per-router dependency that checks them.

A key is `cs_` + 32 random bytes (URL-safe base64). Redis holds only its sha256, so a Redis dump
does not leak usable keys; the key itself is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import redis
from fastapi import Request
from pydantic import BaseModel
from redis.asyncio import Redis

from api.exceptions import BadRequestError, ConflictError, ForbiddenError, NotFoundError, UnauthorizedError
from api.roles import Role
from streams.keys import Keys

KEY_PREFIX = "cs_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ANONYMOUS = "anonymous"


class ApiKey(BaseModel):
    """What Redis keeps about one key: never the key itself."""

    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None


class Principal(BaseModel):
    """Who is calling: the key's name and role."""

    name: str
    role: Role


def digest(token: str) -> str:
    """Return the sha256 hex of an API key, the form Redis stores."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(client: redis.Redis, keys: Keys, role: Role | str, name: str) -> str:
    """Store a new key of this role under a unique name and return it; it cannot be shown again."""
    if not NAME_PATTERN.match(name):
        raise BadRequestError(f"key name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    try:
        role = Role(role)
    except ValueError:
        raise BadRequestError(f"no role {role!r}; roles: {', '.join(Role)}") from None
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(name=name, role=role, created_at=datetime.now(UTC))
    with client.pipeline(transaction=True) as pipe:
        pipe.watch(keys.api_key_names)
        existing = pipe.hget(keys.api_key_names, name)
        if existing is not None and ApiKey.model_validate_json(existing).revoked_at is None:
            raise ConflictError(f"a key named {name!r} exists; revoke it first or pick another name")
        pipe.multi()
        pipe.hset(keys.api_keys, digest(token), record.model_dump_json())
        pipe.hset(keys.api_key_names, name, record.model_dump_json())
        pipe.hset(keys.api_key_digests, name, digest(token))
        pipe.execute()
    return token


def list_keys(client: redis.Redis, keys: Keys) -> list[ApiKey]:
    """Return every key's record, revoked ones included, by name."""
    raw = client.hgetall(keys.api_key_names)
    return sorted((ApiKey.model_validate_json(v) for v in raw.values()), key=lambda k: k.name)


def revoke_key(client: redis.Redis, keys: Keys, name: str) -> ApiKey:
    """Revoke the key of this name: it answers 401 once the API's key cache forgets it (CITY_API__KEY_CACHE_S)."""
    raw = client.hget(keys.api_key_names, name)
    if raw is None:
        raise NotFoundError(f"no key named {name!r}; `citystream keys list` shows them")
    record = ApiKey.model_validate_json(raw)
    if record.revoked_at is not None:
        return record
    record.revoked_at = datetime.now(UTC)
    key_digest = client.hget(keys.api_key_digests, name)
    with client.pipeline(transaction=True) as pipe:
        if key_digest is not None:
            pipe.hdel(keys.api_keys, key_digest)
        pipe.hset(keys.api_key_names, name, record.model_dump_json())
        pipe.execute()
    return record


def key_in_headers(headers: Mapping[str, str]) -> str | None:
    """Return the key of `Authorization: Bearer <key>` or `X-API-Key` among request headers, if any."""
    header = headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return headers.get("x-api-key") or None


class KeyCache:
    """Keys checked recently, by digest, trusted for `ttl_s` without asking Redis (so a revoked key works that long).

    Only known keys are kept (an unknown key is asked about every time), at most MAX_ENTRIES of them.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[Principal, float]] = {}

    def get(self, key_digest: str) -> Principal | None:
        """Return the principal of a key checked less than ttl_s ago, if any."""
        entry = self._entries.get(key_digest)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    def put(self, key_digest: str, principal: Principal) -> None:
        """Remember a key found in Redis."""
        if self.ttl_s <= 0:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[key_digest] = (principal, time.monotonic() + self.ttl_s)


async def authenticate(client: Redis, keys: Keys, token: str | None, cache: KeyCache | None = None) -> Principal:
    """Return who holds this key (from the cache if checked within its ttl), or raise UnauthorizedError."""
    if not token:
        raise UnauthorizedError("no API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`")
    key_digest = digest(token)
    cached = cache.get(key_digest) if cache is not None else None
    if cached is not None:
        return cached
    raw = await client.hget(keys.api_keys, key_digest)
    if raw is None:
        raise UnauthorizedError("unknown or revoked API key; ask an admin for one (`citystream keys create`)")
    record = ApiKey.model_validate_json(raw)
    principal = Principal(name=record.name, role=record.role)
    if cache is not None:
        cache.put(key_digest, principal)
    return principal


def require(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """Return a router dependency admitting keys of these roles (and admin), keeping the caller in request.state."""
    allowed = {*roles, Role.admin}
    needed = " or ".join(r.value for r in (*roles, Role.admin))

    async def check(request: Request) -> Principal:
        principal = await principal_of(request.app.state, request.headers)
        if principal.role not in allowed:  # admin, and everyone when auth is off, is always allowed
            raise ForbiddenError(f"this route needs role {needed}; key {principal.name!r} has role {principal.role}")
        request.state.principal = principal
        return principal

    return check


async def principal_of(state: Any, headers: Mapping[str, str]) -> Principal:
    """Return who sends a request with these headers to the app with this state (admin when auth is off), or
    raise UnauthorizedError."""
    if not state.options.auth_enabled:
        return Principal(name=ANONYMOUS, role=Role.admin)
    return await authenticate(state.redis, state.keys, key_in_headers(headers), state.key_cache)
