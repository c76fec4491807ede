"""Commands packed by hiredis are byte for byte what redis-py's own asyncio packer sends."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from streams.redisio import PackedConnection, PackedSSLConnection, PackedUnixConnection, redis_client

COMMANDS: list[tuple[Any, ...]] = [
    ("SET", "cs:alert:1", b'{"id": "1"}'),
    ("HINCRBY", "cs:win", "speed_micro", 12_345_678),
    ("ZADD", "cs:idx", 0.1 + 0.2, "m"),
    ("GEOADD", "cs:sep", 113.70123456789, 22.85, "drone|1"),
    ("EVALSHA", "a" * 40, 2, "k1", "k2", 172_800, -5, 1e20),
    ("SCRIPT LOAD", "return 1"),  # a command name of two words is sent as two
    (b"CLIENT SETNAME", b"worker"),
    ("SET", b"k", memoryview(b"value")),
    ("SET", "k", bytearray(b"value")),
    ("HSET", "k", "f", "\u4e1c\u839e"),  # Dongguan: UTF-8, as redis-py encodes
]


def test_each_command_packs_as_redis_py_packs_it() -> None:
    ours, theirs = PackedConnection(host="127.0.0.1"), Connection(host="127.0.0.1")
    for command in COMMANDS:
        assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command)), command


def test_a_pipeline_packs_as_redis_py_packs_it() -> None:
    ours, theirs = PackedConnection(host="127.0.0.1"), Connection(host="127.0.0.1")
    assert b"".join(ours.pack_commands(COMMANDS)) == b"".join(theirs.pack_commands(COMMANDS))


@pytest.mark.parametrize("value", [True, None, object()])
def test_a_value_redis_cannot_take_is_a_data_error(value: object) -> None:
    with pytest.raises(DataError):
        PackedConnection(host="127.0.0.1").pack_command("SET", "k", value)


@pytest.mark.parametrize(
    ("url", "plain", "packed"),
    [
        ("redis://127.0.0.1:6379/0", Connection, PackedConnection),
        ("rediss://127.0.0.1:6380/0", SSLConnection, PackedSSLConnection),
        ("unix:///tmp/redis.sock", UnixDomainSocketConnection, PackedUnixConnection),
    ],
)
def test_clients_keep_the_urls_transport_and_pack_with_hiredis(url: str, plain: type, packed: type) -> None:
    pool = redis_client(url).connection_pool
    assert pool.connection_class is packed
    assert issubclass(packed, plain)


def test_a_blocking_pool_has_its_size() -> None:
    pool = redis_client("redis://127.0.0.1:6379/0", blocking_max=7, timeout=1).connection_pool
    assert pool.max_connections == 7
    assert pool.connection_class is PackedConnection
