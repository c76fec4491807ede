"""Asyncio Redis clients whose commands are packed by hiredis, in C.

redis-py's synchronous client packs commands with hiredis when it is installed; its asyncio client packs
them in Python, argument by argument. A worker's batch sends thousands of arguments (window increments,
states, alerts) and the API's pages hundreds, so packing was a tenth of a live worker's CPU. The pools here
build their connections from classes that pack with `hiredis.pack_command` (the sync client's serializer)
and are otherwise redis-py's own: TCP, TLS (`rediss://`) and Unix sockets alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import hiredis
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection, UnixDomainSocketConnection
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE

_PACKER = HiredisRespSerializer()

# Lua for scripts that pass thousands of arguments to one command: Lua's `unpack` has a stack limit, so
# `call_chunked` sends ARGV[first..last] in runs of `per` (a multiple of the command's arguments per item).
LUA_CALL_CHUNKED = """
local function call_chunked(command, key, first, last, per)
  for i = first, last, per do
    redis.call(command, key, unpack(ARGV, i, math.min(i + per - 1, last)))
  end
end
"""


def _pack(args: tuple[Any, ...]) -> bytes:
    """Return one command in the Redis protocol, packed by hiredis.

    The common case goes to hiredis as it is; a command name of several words ("SCRIPT LOAD"), bytearray or
    memoryview arguments, and the types hiredis refuses (DataError) take redis-py's serializer.
    """
    first = args[0]
    if " " not in first if isinstance(first, str) else b" " not in first:
        try:
            return hiredis.pack_command(args)  # type: ignore[no-any-return]
        except TypeError:
            pass
    return _PACKER.pack(*args)[0]  # type: ignore[no-any-return]


class _HiredisPacking:
    """Pack commands with hiredis (as redis-py's sync client does) instead of in Python."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return [_pack(args)]

    def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[bytes]:
        return [b"".join(_pack(tuple(command)) for command in commands)]


class PackedConnection(_HiredisPacking, Connection):
    """A TCP connection packing with hiredis."""


class PackedSSLConnection(_HiredisPacking, SSLConnection):
    """A TLS connection packing with hiredis."""


class PackedUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    """A Unix socket connection packing with hiredis."""


PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: PackedConnection,
    SSLConnection: PackedSSLConnection,
    UnixDomainSocketConnection: PackedUnixConnection,
}


def packed_pool(pool: ConnectionPool) -> ConnectionPool:
    """Make a pool's new connections pack with hiredis (unchanged if hiredis or the class is not known)."""
    if HIREDIS_AVAILABLE:
        pool.connection_class = PACKED.get(pool.connection_class, pool.connection_class)
    return pool


def redis_client(url: str, *, blocking_max: int | None = None, **options: Any) -> Redis:
    """Return an asyncio client for `url` whose connections pack with hiredis; it closes its own pool.

    With `blocking_max`, a BlockingConnectionPool of that many connections: under a burst, callers wait
    (up to `timeout` in options) for a connection instead of failing with "Too many connections".
    """
    if blocking_max is not None:
        pool: ConnectionPool = BlockingConnectionPool.from_url(url, max_connections=blocking_max, **options)
    else:
        pool = ConnectionPool.from_url(url, **options)
    return Redis.from_pool(packed_pool(pool))
