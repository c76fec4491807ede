"""Which Redis keys changed, pushed by Redis itself: server-assisted client-side caching in broadcast mode.

One connection asks Redis (`CLIENT TRACKING ON REDIRECT <itself> BCAST PREFIX ...`) to tell it of every write
to a key under the given prefixes, by any client, command, script or expiry, and subscribes to the
`__redis__:invalidate` channel those notices arrive on. A reader of the feed keeps, per prefix, a generation
that each notice raises; an answer computed at generation g stays valid while the generation is still g.

Redis queues the notices of a write before it sends the writer its reply (broadcast notices go out in the same
pass, first), so `generation()` first takes whatever already arrived on the socket: a client that saw its
write succeed and then asks a question is answered after that write. While the connection is down, or before
it is up, `generation()` returns None: there is nothing to trust, and callers must read Redis. A lost
connection also raises every generation, since notices may have been missed.

Plain TCP (`redis://`) and Unix sockets (`unix://`) are supported; for TLS the feed stays off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterable, Sequence
from typing import Any

import hiredis
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url

log = logging.getLogger(__name__)
CHANNEL = b"__redis__:invalidate"
CLIENT_NAME = "citystream-change-feed"


class ChangeFeed:
    """Generations of key prefixes, raised whenever Redis reports a write under them."""

    def __init__(self, url: str, prefixes: Iterable[str], connect_timeout_s: float = 2.0, retry_s: float = 1.0) -> None:
        self.prefixes = tuple(dict.fromkeys(prefixes))
        self._encoded = [(p, p.encode()) for p in self.prefixes]
        self._generations = dict.fromkeys(self.prefixes, 0)
        self.connect_timeout_s = connect_timeout_s
        self.retry_s = retry_s
        self.connects = 0
        self._options = parse_url(url)
        self._sock: socket.socket | None = None
        self._reader: Any = None
        self._live = False
        self._task: asyncio.Task[None] | None = None
        self._lost: asyncio.Event | None = None
        self._up = asyncio.Event()
        self.supported = self._options.get("connection_class") is not SSLConnection

    def generation(self, prefix: str) -> int | None:
        """Return the prefix's generation after taking the notices already received (None: the feed is down)."""
        stamp = self.stamp([prefix])
        return None if stamp is None else stamp[0]

    def stamp(self, prefixes: Sequence[str]) -> tuple[int, ...] | None:
        """Return the generations of several prefixes at once (None: the feed is down)."""
        if not self._live:
            return None
        self._drain()
        return tuple(self._generations[p] for p in prefixes) if self._live else None

    def start(self) -> None:
        """Connect in the background, and reconnect after a loss, until close()."""
        if not self.supported:
            log.warning("change feed off: it needs redis:// or unix://, not TLS; API answers are read from Redis")
            return
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="redis-change-feed")

    async def close(self) -> None:
        """Stop the feed and close its connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._drop()

    async def wait_live(self, timeout_s: float) -> bool:
        """Wait until the feed is live (True) or timeout_s passed (False)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), timeout_s)
        return self._live

    async def _run(self) -> None:
        while True:
            try:
                await self._connect()
            except (OSError, TimeoutError, RuntimeError) as exc:
                self._drop()
                log.warning(
                    'change feed cannot connect error="%s"; retrying in %.1f s (answers are read from Redis meanwhile)',
                    exc,
                    self.retry_s,
                )
                await asyncio.sleep(self.retry_s)
                continue
            assert self._lost is not None
            await self._lost.wait()
            await asyncio.sleep(self.retry_s)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        options = self._options
        if options.get("connection_class") is UnixDomainSocketConnection:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: Any = options["path"]
        else:
            host, port = options.get("host", "localhost"), int(options.get("port", 6379))
            info = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            family, _, _, _, address = info[0]
            sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        self._sock, self._reader = sock, hiredis.Reader()
        async with asyncio.timeout(self.connect_timeout_s):
            await loop.sock_connect(sock, address)
            if options.get("password"):
                auth = [options["username"]] if options.get("username") else []
                await self._call(loop, "AUTH", *auth, options["password"])
            await self._call(loop, "CLIENT", "SETNAME", CLIENT_NAME)  # so CLIENT LIST shows what it is
            client_id = await self._call(loop, "CLIENT", "ID")
            tracking = ["CLIENT", "TRACKING", "ON", "REDIRECT", str(client_id), "BCAST"]
            for prefix in self.prefixes:
                tracking += ["PREFIX", prefix]
            await self._call(loop, *tracking)
            await self._call(loop, "SUBSCRIBE", CHANNEL)
        self._lost = asyncio.Event()
        self._bump_all()  # whatever was kept before this connection may have missed notices
        self._live = True
        self._up.set()
        self.connects += 1
        loop.add_reader(sock.fileno(), self._drain)
        log.info('change feed live prefixes="%s"', ",".join(self.prefixes))

    async def _call(self, loop: asyncio.AbstractEventLoop, *args: Any) -> Any:
        assert self._sock is not None
        await loop.sock_sendall(self._sock, hiredis.pack_command(args))
        while (reply := self._reader.gets()) is False:
            data = await loop.sock_recv(self._sock, 65536)
            if not data:
                raise ConnectionError("Redis closed the connection")
            self._reader.feed(data)
        if isinstance(reply, hiredis.ReplyError):
            raise RuntimeError(f"Redis refused {args[0]} {args[1] if len(args) > 1 else ''}: {reply}")
        return reply

    def _drain(self) -> None:
        """Take every notice already on the socket; on EOF or an error, mark the feed down."""
        sock = self._sock
        if sock is None:
            return
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("Redis closed the connection")
                self._reader.feed(data)
                if len(data) < 65536:
                    break
        except BlockingIOError:
            pass
        except OSError as exc:
            log.warning('change feed lost error="%s"; answers are read from Redis until it is back', exc)
            self._drop()
            return
        while (message := self._reader.gets()) is not False:
            self._notice(message)

    def _notice(self, message: Any) -> None:
        if not (isinstance(message, list) and len(message) == 3 and message[0] == b"message"):
            return
        changed = message[2]
        if changed is None:  # FLUSHDB / FLUSHALL, or Redis dropped the tracking table
            self._bump_all()
            return
        for key in changed:
            for prefix, encoded in self._encoded:
                if key.startswith(encoded):
                    self._generations[prefix] += 1

    def _bump_all(self) -> None:
        for prefix in self._generations:
            self._generations[prefix] += 1

    def _drop(self) -> None:
        was_live, self._live = self._live, False
        self._up.clear()
        if was_live:
            self._bump_all()
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()
        if self._lost is not None:
            self._lost.set()
