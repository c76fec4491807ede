"""Redis's change notices on a real server: writes by any client move a prefix's generation, a loss is seen."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import redis

from citystream.servers import RedisServer, redis_binary
from streams.changefeed import CLIENT_NAME, ChangeFeed


def _kill_feed(client: redis.Redis) -> int:
    return sum(client.client_kill_filter(_id=c["id"]) for c in client.client_list() if c["name"] == CLIENT_NAME)


def test_writes_under_a_prefix_by_other_clients_move_its_generation_at_once(redis_server: RedisServer) -> None:
    async def run() -> None:
        feed = ChangeFeed(redis_server.url, ["cf1:a", "cf1:w:"])
        feed.start()
        assert await feed.wait_live(5)
        writer = redis.Redis.from_url(redis_server.url)
        try:
            before = feed.stamp(["cf1:a", "cf1:w:"])
            assert before is not None
            # Read straight after each write returns, without yielding to the loop: the notice is already here.
            for round_ in range(200):
                a = feed.generation("cf1:a")
                writer.incr("cf1:a")
                assert feed.generation("cf1:a") == (a or 0) + 1, round_
            w = feed.generation("cf1:w:")
            writer.eval("redis.call('HINCRBY', KEYS[1], 'n', 1) return 1", 1, "cf1:w:traffic")
            with writer.pipeline(transaction=True) as pipe:
                pipe.incr("cf1:w:energy")
                pipe.set("cf1:other", 1)  # not under either prefix
                pipe.execute()
            assert feed.generation("cf1:w:") == (w or 0) + 2
            writer.set("cf1:other", 2)
            writer.set("cf1:b", 2)
            assert feed.stamp(["cf1:a", "cf1:w:"]) == (before[0] + 200, before[1] + 2)
        finally:
            writer.close()
            await feed.close()
        assert feed.generation("cf1:a") is None  # closed: nothing to trust

    asyncio.run(run())


def test_a_lost_connection_stops_trust_until_it_is_back_and_moves_every_generation(redis_server: RedisServer) -> None:
    async def run() -> None:
        feed = ChangeFeed(redis_server.url, ["cf2:a"], retry_s=0.1)
        feed.start()
        assert await feed.wait_live(5)
        admin = redis.Redis.from_url(redis_server.url)
        try:
            before = feed.generation("cf2:a")
            assert before is not None
            assert _kill_feed(admin) == 1
            await asyncio.sleep(0.05)  # the loop sees the socket close
            assert feed.generation("cf2:a") is None
            admin.incr("cf2:a")  # missed while down
            assert await feed.wait_live(5)
            after = feed.generation("cf2:a")
            assert after is not None and after > before
            assert feed.connects == 2
            admin.flushdb()  # Redis says "everything" (a null list): every prefix moves
            assert feed.generation("cf2:a") == after + 1
        finally:
            admin.close()
            await feed.close()

    asyncio.run(run())


def test_a_feed_for_an_unreachable_redis_is_not_live_and_retries() -> None:
    async def run() -> None:
        from citystream.servers import free_port

        feed = ChangeFeed(f"redis://127.0.0.1:{free_port()}/0", ["x"], connect_timeout_s=0.2, retry_s=0.05)
        feed.start()
        assert not await feed.wait_live(0.3)
        assert feed.generation("x") is None
        await feed.close()

    asyncio.run(run())


def test_tls_urls_leave_the_feed_off() -> None:
    feed = ChangeFeed("rediss://127.0.0.1:6390/0", ["x"])
    assert not feed.supported
    assert feed.stamp(["x"]) is None


def test_a_unix_socket_redis_with_a_password(tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    server = subprocess.Popen(
        [redis_binary(), "--port", "0", "--unixsocket", str(sock), "--requirepass", "s3cret", "--save", ""],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"unix://{sock}?password=s3cret"
        writer = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while not sock.exists() or not _answers(writer):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

        async def run() -> None:
            feed = ChangeFeed(url, ["u:"])
            feed.start()
            assert await feed.wait_live(5)
            before = feed.generation("u:")
            writer.set("u:1", 1)
            assert feed.generation("u:") == (before or 0) + 1
            await feed.close()
            wrong = ChangeFeed(f"unix://{sock}?password=wrong", ["u:"], retry_s=0.05)
            wrong.start()
            assert not await wrong.wait_live(0.3)  # AUTH refused: not live, retrying, logged
            await wrong.close()

        asyncio.run(run())
        writer.close()
    finally:
        server.terminate()
        server.wait(10)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
