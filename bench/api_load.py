"""Latency and throughput of the HTTP API over real sockets, on a real Redis filled like a busy city.

Starts redis-server and fills it, through pipelines in the workers' key layout (streams.keys), with
100,000 alerts and 1,000,000 aggregate windows (48 hours of district windows of every kept size, and
15-minute settlement windows of meters and feeders); starts the API (uvicorn, one process) with one
extra route only this bench mounts (`GET /bench/trivial`, the FastAPI floor); then, from a separate
load process (pure asyncio, HTTP/1.1 keep-alive), measures for each endpoint:

1. open loop: requests sent on a fixed schedule at --rate per second for --seconds; latency counts from
   the scheduled send time, so a slow server cannot slow the load down (queueing shows as latency);
2. closed loop: the most requests per second with --connections concurrent connections, once the
   server has worked off what the open loop left it (it answers a trivial request within 20 ms again).

Not a timed test: it prints one table (append it to bench/RESULTS.md).

    .venv/bin/python bench/api_load.py [--rate 1000] [--seconds 20] [--connections 32] [--windows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from citystream.servers import RedisServer, free_port  # noqa: E402
from streams.keys import Keys  # noqa: E402

PREFIX = "cs"
HOURS = 48
DISTRICTS = ["binhaiwan-core", "changan", "humen-port", "humen-town", "shatian", "weiyuan-island"]
ZONE_SIZES = {"traffic": (60, 900, 3600), "drone": (60, 3600), "energy": (60, 900)}
KINDS = {
    "traffic": ["congestion", "sensor_offline", "speed_anomaly"],
    "drone": ["nofly_breach", "telemetry_loss", "altitude_ceiling"],
    "energy": ["load_spike", "voltage_sag", "meter_offline", "low_power_factor"],
}
SEVERITIES = ["critical", "high", "medium", "low", "informational"]


# ---------------------------------------------------------------- filling Redis


def fill_alerts(client: redis.Redis, keys: Keys, count: int, now_ms: int, rng: random.Random) -> None:
    """Write `count` alerts as RedisSink does: the alert JSON under its key, its id in the indexes."""
    from processors.alert_index import INDEX_ALERTS, index_alerts_args
    from streams.codec import encode
    from streams.models import Alert

    pipe = client.pipeline(transaction=False)
    batch: list[Alert] = []
    for i in range(count):
        domain = rng.choice(list(KINDS))
        first = now_ms - rng.randrange(HOURS * 3_600_000)
        alert = Alert(
            id=f"bench-{i:06d}",
            domain=domain,
            kind=rng.choice(KINDS[domain]),
            severity=rng.choice(SEVERITIES),
            status=rng.choice(["open", "open", "acknowledged", "resolved"]),
            source_id=f"{domain[:3].upper()}-{rng.randrange(20_000):05d}",
            zone_id=rng.choice(DISTRICTS),
            measured_value=rng.random() * 100,
            threshold=50.0,
            unit="x",
            description="bench alert",
            first_seen=datetime.fromtimestamp(first / 1000, UTC),
            last_seen=datetime.fromtimestamp((first + rng.randrange(600_000)) / 1000, UTC),
        )
        pipe.set(keys.alert(alert.id), encode(alert))
        pipe.zadd(keys.alert_index, {alert.id: first})
        batch.append(alert)
        if i % 5000 == 4999 or i == count - 1:
            index_keys, index_args = index_alerts_args(keys, batch)
            pipe.eval(INDEX_ALERTS, len(index_keys), *index_keys, *index_args)
            pipe.execute()
            batch = []
    pipe.execute()


def window_plan(total: int) -> list[tuple[str, int, str]]:
    """Return (domain, window_s, zone_or_group) series: every district size for 48 h, then meters to `total`."""
    series = [(d, s, z) for d, sizes in ZONE_SIZES.items() for s in sizes for z in DISTRICTS]
    used = sum(HOURS * 3600 // s for _, s, _ in series)
    per_group = HOURS * 3600 // 900
    groups = max(0, -(-(total - used) // per_group))  # rounded up: the last series is cut at `total`
    feeders = groups // 40
    series += [("energy", 900, f"feeder:F{i:03d}") for i in range(feeders)]
    series += [("energy", 900, f"meter:M{i:05d}") for i in range(groups - feeders)]
    return series


def fill_windows(client: redis.Redis, keys: Keys, total: int, now_ms: int, rng: random.Random) -> int:
    """Write window hashes of integer sums and their index entries, as RedisSink does; return how many."""
    written = 0
    pipe = client.pipeline(transaction=False)
    for domain, size, zone in window_plan(total):
        step = size * 1000
        last = now_ms // step * step
        index: dict[str, int] = {}
        for k in range(HOURS * 3600 // size):
            if written >= total:
                break
            start = last - k * step
            n = rng.randrange(1, 60) * size // 60
            if domain == "traffic":
                sums = {"n": n, "speed_micro": n * rng.randrange(20, 80) * 1_000_000, "vehicles": n * 9}
            elif domain == "drone":
                sums = {"n": n}
                pipe.sadd(keys.window_members(domain, size, zone, start), *[f"D{j}" for j in range(1 + n % 7)])
            else:
                sums = {"n": n, "wh": n * 40, "mv": n * 220_000, "max_w": rng.randrange(500, 9000)}
            pipe.hset(keys.window(domain, size, zone, start), mapping=sums)
            index[f"{zone}|{start}"] = start
            written += 1
            if written % 5000 == 0:
                pipe.zadd(keys.window_index(domain, size), index)
                index = {}
                pipe.execute()
        if index:
            pipe.zadd(keys.window_index(domain, size), index)
    pipe.execute()
    return written


class LiveWriter:
    """A thread standing in for a live worker: `per_s` commits a second, each adding a reading to the newest
    changan traffic window (raising the windows version, as RedisSink does) and raising the alerts version
    (as an alert update does), so every kept API answer is stale after each commit."""

    def __init__(self, url: str, keys: Keys, now_ms: int, per_s: float) -> None:
        self.client = redis.Redis.from_url(url)
        self.keys, self.per_s = keys, per_s
        self.window = keys.window("traffic", 60, "changan", now_ms // 60_000 * 60_000)
        self.commits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-writer", daemon=True)

    def __enter__(self) -> LiveWriter:
        if self.per_s > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.client.close()

    def _run(self) -> None:
        while not self._stop.wait(1 / self.per_s):
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hincrby(self.window, "n", 1)
                pipe.hincrby(self.window, "vehicles", 1)
                pipe.hincrby(self.window, "speed_micro", 50_000_000)
                pipe.incr(self.keys.windows_version("traffic"))
                pipe.incr(self.keys.alerts_version)
                pipe.execute()
            self.commits += 1


# ---------------------------------------------------------------- the server process


def bench_app(redis_url: str) -> Any:
    """Return the API on the bench's Redis with one extra route, `GET /bench/trivial` (the FastAPI floor)."""
    from api.app import create_app
    from streams.settings import KafkaSettings, RedisSettings, Settings

    settings = Settings(
        environment="development",
        log_level="WARNING",
        redis=RedisSettings(url=redis_url, key_prefix=PREFIX),
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
    )
    app = create_app(settings)

    @app.get("/bench/trivial", include_in_schema=False)
    async def trivial() -> dict[str, bool]:
        return {"ok": True}

    return app


def serve(redis_url: str, port: int) -> None:
    """Run the API with the bench's trivial route on 127.0.0.1:port (one uvicorn process)."""
    import uvicorn

    app = bench_app(redis_url)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---------------------------------------------------------------- the load process


class Connection:
    """One HTTP/1.1 keep-alive connection: send a GET, read the answer whole."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def get(self, request: bytes) -> int:
        """Send one request; return the status code once the body is read."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        return status


def request_bytes(path: str, key: str) -> bytes:
    """Return a GET request for path with the API key."""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n".encode()


async def open_loop(
    port: int, request: bytes, rate: float, seconds: float, max_connections: int = 256, drain_s: float = 5.0
) -> dict[str, float]:
    """Send at a fixed rate; return latency percentiles from scheduled send times, and the errors.

    At most `max_connections` are open; a request finding none free waits for one (that wait is latency).
    Requests still unanswered `drain_s` after the last send count as errors and as infinite latency.
    """
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    every: list[Connection] = []
    opened = 0
    latencies: list[float] = []
    lags: list[float] = []
    errors = 0
    tasks: set[asyncio.Task[None]] = set()

    async def one(scheduled: float) -> None:
        nonlocal errors, opened
        if idle.empty() and opened < max_connections:
            opened += 1
            conn = await Connection.open(port)
            every.append(conn)
        else:
            conn = await idle.get()
        try:
            status = await conn.get(request)
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
            opened -= 1
            return
        latencies.append(time.perf_counter() - scheduled)
        if status != 200:
            errors += 1
        idle.put_nowait(conn)

    count = int(rate * seconds)
    start = time.perf_counter() + 0.1
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(time.perf_counter() - scheduled)
        task = asyncio.create_task(one(scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks), timeout=drain_s)
    unfinished = len(tasks)
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter() - start
    for conn in every:  # busy ones too: requests still queued on them are dropped with the connection
        conn.writer.close()
    answered = len(latencies)
    latencies += [math.inf] * unfinished
    latencies.sort()
    lags.sort()
    return {
        "p50_ms": pct(latencies, 50) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
        "max_ms": latencies[-1] * 1000 if latencies else math.nan,
        "done_per_s": answered / elapsed,
        "errors": errors + unfinished,
        "send_lag_p99_ms": pct(lags, 99) * 1000,
    }


async def closed_loop(port: int, request: bytes, connections: int, seconds: float) -> dict[str, float]:
    """Keep `connections` requests in flight for `seconds`; return the completed requests per second."""
    done = errors = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        conn = await Connection.open(port)
        while time.perf_counter() < stop:
            if await conn.get(request) == 200:
                done += 1
            else:
                errors += 1
        conn.writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return {"max_per_s": done / (time.perf_counter() - began), "closed_errors": errors}


async def settle(port: int, request: bytes, timeout_s: float = 60.0) -> float:
    """Wait until the server answers a trivial request within 20 ms twice in a row; return the seconds waited.

    After an overloaded open loop the server still works off what it had accepted; measuring the next
    loop before that is done would charge the backlog to it.
    """
    began = time.perf_counter()
    fast = 0
    while fast < 2 and time.perf_counter() - began < timeout_s:
        conn = await Connection.open(port)
        sent = time.perf_counter()
        await conn.get(request)
        conn.writer.close()
        fast = fast + 1 if time.perf_counter() - sent < 0.02 else 0
        await asyncio.sleep(0.1)
    return time.perf_counter() - began


def pct(values: list[float], p: float) -> float:
    """Return the p-th percentile of sorted values (nearest rank)."""
    if not values:
        return math.nan
    return values[min(len(values) - 1, max(0, math.ceil(p / 100 * len(values)) - 1))]


def load(port: int, key: str, paths: dict[str, str], rate: float, seconds: float, connections: int) -> None:
    """Measure each endpoint open loop then closed loop; print one JSON line per endpoint."""

    async def run() -> None:
        for name, path in paths.items():
            request = request_bytes(path, key)
            warm = await Connection.open(port)
            for _ in range(50):
                await warm.get(request)
            warm.writer.close()
            opened = await open_loop(port, request, rate, seconds)
            settled = await settle(port, request_bytes("/bench/trivial", key))
            closed = await closed_loop(port, request, connections, min(seconds, 10))
            await settle(port, request_bytes("/bench/trivial", key))
            print(json.dumps({"endpoint": name, "path": path, **opened, **closed, "settle_s": settled}), flush=True)

    asyncio.run(run())


# ---------------------------------------------------------------- the run


def endpoint_paths(now_ms: int) -> dict[str, str]:
    """Return the measured endpoints by name: the operators' page, the planners' hour, the FastAPI floor."""
    hour_ago = datetime.fromtimestamp(now_ms / 1000, UTC) - timedelta(hours=1)
    span = f"from={hour_ago:%Y-%m-%dT%H:%M:%SZ}&to={datetime.fromtimestamp(now_ms / 1000, UTC):%Y-%m-%dT%H:%M:%SZ}"
    return {
        "GET /alerts (domain, severity, limit 50)": "/alerts?domain=energy&severity=high&limit=50",
        "GET /aggregates (zone, 1 h, 60 s windows)": f"/aggregates?zone=changan&window=60&{span}",
        "GET /bench/trivial (FastAPI floor)": "/bench/trivial",
    }


def main() -> None:
    """Fill Redis, start the API, drive it from a load process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--windows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument(
        "--commits-per-s",
        type=float,
        default=5.0,
        help="writes a second changing a window and the alerts version, as a live worker's commits (0: none)",
    )
    parser.add_argument("--serve", nargs=2, metavar=("REDIS_URL", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    if args.load:
        spec = json.loads(args.load)
        load(spec["port"], spec["key"], spec["paths"], args.rate, args.seconds, args.connections)
        return

    from api.auth import create_key
    from api.roles import Role

    rng = random.Random(args.seed)
    now_ms = int(time.time() * 1000)
    with tempfile.TemporaryDirectory() as workdir, RedisServer(workdir=workdir) as server:
        client = redis.Redis.from_url(server.url)
        keys = Keys(PREFIX)
        began = time.perf_counter()
        fill_alerts(client, keys, args.alerts, now_ms, rng)
        alerts_s = time.perf_counter() - began
        written = fill_windows(client, keys, args.windows, now_ms, rng)
        fill_s = time.perf_counter() - began - alerts_s
        memory = client.info("memory")["used_memory"] / 2**20
        key = create_key(client, keys, Role.admin, "bench")
        client.close()
        print(
            f"filled Redis: {args.alerts:,} alerts in {alerts_s:.1f} s, {written:,} windows in {fill_s:.1f} s "
            f"(used_memory {memory:,.0f} MiB)",
            flush=True,
        )
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        api = subprocess.Popen([sys.executable, __file__, "--serve", server.url, str(port)], env=env, cwd=ROOT)
        try:
            wait_for(port)
            spec = json.dumps({"port": port, "key": key, "paths": endpoint_paths(now_ms)})
            with LiveWriter(server.url, keys, now_ms, args.commits_per_s) as writer:
                loader = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--load",
                        spec,
                        "--rate",
                        str(args.rate),
                        "--seconds",
                        str(args.seconds),
                        "--connections",
                        str(args.connections),
                    ],
                    env=env,
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                )
            answers = answer_counts(port)
        finally:
            api.terminate()
            api.wait(10)
    rows = [json.loads(line) for line in loader.stdout.splitlines() if line.startswith("{")]
    print_table(rows, args, written)
    if not any(answers.values()):
        print(
            f"live writer: {writer.commits:,} commits ({args.commits_per_s:g}/s); kept answers off (response_cache_s 0)"
        )
        return
    print(
        f"live writer: {writer.commits:,} commits ({args.commits_per_s:g}/s), each making every kept answer stale; "
        f"GET /alerts and /aggregates answered {answers.get('hit', 0):,} times from kept answers, "
        f"{answers.get('joined', 0):,} by joining a request computing the same answer, "
        f"{answers.get('miss', 0):,} computed, {answers.get('bypass', 0):,} computed with the change feed down or off"
    )


def answer_counts(port: int) -> dict[str, int]:
    """Return the API's kept-answer counters from its /metrics."""
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    found = re.findall(r'^citystream_api_answers_total\{result="(\w+)"\} (\d+)', text, re.MULTILINE)
    return {result: int(count) for result, count in found}


def ms(value: float) -> str:
    """Return a latency in ms for the table; infinite (never answered within the drain) as `>drain`."""
    return ">drain" if math.isinf(value) else f"{value:.1f}"


def wait_for(port: int, timeout_s: float = 30.0) -> None:
    """Wait until the API answers /health (any status)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"the API did not answer on port {port} in {timeout_s} s")


def print_table(rows: list[dict[str, float]], args: argparse.Namespace, windows: int) -> None:
    """Print the results as one Markdown table with the run's conditions."""
    floor = next((r["max_per_s"] for r in rows if "trivial" in str(r["endpoint"])), math.nan)
    print()
    print(
        f"citystream API, {datetime.now(UTC):%Y-%m-%d}: one uvicorn process, redis-server and the load process on one "
        f"machine with {os.cpu_count()} cores shared with other work; {args.alerts:,} alerts, {windows:,} windows"
    )
    print(
        f"open loop {args.rate:,.0f} req/s for {args.seconds:.0f} s (latency from the scheduled send time); "
        f"closed loop {args.connections} connections for {min(args.seconds, 10):.0f} s"
    )
    print()
    print("| endpoint | p50 ms | p99 ms | max ms | done req/s | errors | max req/s | of trivial |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| `{r['endpoint']}` | {ms(r['p50_ms'])} | {ms(r['p99_ms'])} | {ms(r['max_ms'])} | {r['done_per_s']:,.0f} "
            f"| {int(r['errors'])} | {r['max_per_s']:,.0f} | {r['max_per_s'] / floor:.2f} |"
        )
    lag = max(r["send_lag_p99_ms"] for r in rows)
    print()
    print(f"load process send lag p99 (how late it sent against its schedule): {lag:.1f} ms")
    backlog = ", ".join(f"{str(r['endpoint']).split(' (')[0]} {r.get('settle_s', math.nan):.1f} s" for r in rows)
    print(f"time the server took to work off each open loop's backlog before the closed loop: {backlog}")
    print("errors: non-200 answers and requests unanswered 5 s after the last send (>drain: never answered)")


if __name__ == "__main__":
    main()
