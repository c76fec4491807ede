"""Throughput of consumers side by side on the same Apache Kafka and the same pre-loaded input (issue #9).

    python bench/throughput.py [--events 1000000] [--cases a,b,c,d,e,latency,rss] [--latency-rate 20000]
                               [--pairs 1] [--keep-workdir]

Pre-loads N mixed traffic/drone/energy events from the city simulator into 8-partition topics of a
local Apache Kafka 4.1, then measures, one after the other on that same input, each consumer as its own
process: (a) a raw aiokafka `getmany` loop with orjson decoding and nothing else (the ceiling for Python
here), (b) a Quix Streams application doing a stateless pass-through (in its own venv: see quix_python),
(c) a plain Faust agent (`async for` over the three topics), (d) one citystream worker doing the whole job
(decode and validate, zone lookup, all detectors, all windowed aggregates, results committed to Redis),
and (e) two citystream workers in one group. Rates count from the first event consumed to the last, so
start-up and group joins are excluded. It prints a table with each process's CPU seconds.

Then, on fresh topics: `latency`, the end-to-end alert latency (event produced -> alert in Redis) of one
worker while an open-loop producer holds --latency-rate events/s (bench/throughput_latency.py; if the
worker falls behind, a second run at half of (d)'s rate); and `rss`, the peak RSS of one worker applying
an input from --sensors distinct sources in the simulator's fleet mix.
With --pairs N, (d) and (e) are measured N times on the same input, alternating which goes first, and the
e/d target is judged on the median of the pairs (the machine's speed drifts between cases). The work dir (the
broker's data, every process's log) is removed after a run that succeeds, unless --keep-workdir.
A benchmark, not a test: compare the ratios of one run; the machine is shared with the broker and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import throughput_workers  # noqa: E402
from bench.redis_memory import fleet_for  # noqa: E402
from bench.throughput_latency import Latency, measure_latency  # noqa: E402
from bench.throughput_report import (  # noqa: E402
    Pair,
    print_latency,
    print_pairs,
    print_rss,
    print_targets,
    print_throughput,
)
from bench.throughput_workers import PeakRss, measure_rss, measure_workers  # noqa: E402
from citystream.servers import KafkaServer, RedisServer  # noqa: E402
from citystream.simulator import CitySimulator, SimSize, size_for_rate  # noqa: E402
from geo.zones import ZoneIndex  # noqa: E402
from streams.gateway import GatewayProducer  # noqa: E402
from streams.models import Domain  # noqa: E402
from streams.settings import DEFAULT_ZONES_FILE, KafkaSettings  # noqa: E402
from streams.topics import Topics, ensure_topics  # noqa: E402

PARTITIONS = 8


def preload(kafka: KafkaSettings, events: int) -> int:
    """Publish `events` simulator events (the last hours of a large fleet) and return how many."""
    zones = ZoneIndex.from_file(DEFAULT_ZONES_FILE)
    start = datetime.now(UTC) - timedelta(hours=6)
    sim = CitySimulator(zones, 7, start, size_for_rate(2000))
    producer = GatewayProducer(kafka, linger_ms=50)
    sent, cursor, step = 0, start, timedelta(minutes=2)
    began = time.monotonic()
    while sent < events:
        for domain, key, value in sim.events_between(cursor, cursor + step):
            producer.send(Domain(domain), key, orjson.dumps(value))
            sent += 1
            if sent == events:
                break
        cursor += step
        print(f"\rpreloading: {sent:,}/{events:,} events", end="", file=sys.stderr, flush=True)
    producer.flush(120)
    producer.close()
    print(f"\rpreloaded {sent:,} events in {time.monotonic() - began:.0f}s", file=sys.stderr)
    return sent


# --- the consumers, each run as `python bench/throughput.py --case NAME ...` in its own process ---


async def raw_consumer(bootstrap: str, namespace: str, events: int) -> tuple[float, float]:
    """Consume everything with aiokafka getmany and orjson, nothing else; return (first, last) timestamps."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topics = Topics(namespace)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    parts = [TopicPartition(topics.for_domain(d), p) for d in Domain for p in range(PARTITIONS)]
    consumer.assign(parts)
    await consumer.seek_to_beginning(*parts)
    seen, first = 0, 0.0
    while seen < events:
        batches = await consumer.getmany(timeout_ms=1000, max_records=20_000)
        for records in batches.values():
            if not first:
                first = time.monotonic()
            for record in records:
                orjson.loads(record.value)
            seen += len(records)
    last = time.monotonic()
    await consumer.stop()
    return first, last


def faust_agent(bootstrap: str, namespace: str, events: int) -> None:
    """Consume everything with a plain Faust agent, print the timings as JSON and exit."""
    import faust

    topics = Topics(namespace)
    name = f"bench-faust-{uuid.uuid4().hex[:6]}"
    app = faust.App(
        name,
        datadir=os.path.join(tempfile.gettempdir(), f"{name}-data"),  # not ./<name>-data in the repo
        broker=f"kafka://{bootstrap}",
        value_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_partitions=PARTITIONS,
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
    )
    topic = app.topic(*(topics.for_domain(d) for d in Domain), value_serializer="raw")
    first = 0.0
    count = 0

    @app.agent(topic)
    async def consume(stream):  # type: ignore[no-untyped-def]
        nonlocal count, first
        async for _value in stream:
            count += 1
            if count == 1:
                first = time.monotonic()
            if count == events:
                seconds = time.monotonic() - first
                print(orjson.dumps({"seconds": seconds, "cpu": time.process_time()}).decode(), flush=True)
                os._exit(0)  # the measurement is done; skip Faust's shutdown

    faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False).execute_from_commandline()


def run_case(case: str, bootstrap: str, namespace: str, events: int) -> None:
    """Run one consumer case in this process and print its timings as JSON."""
    if case == "faust":
        faust_agent(bootstrap, namespace, events)
        return
    first, last = asyncio.run(raw_consumer(bootstrap, namespace, events))
    cpu = time.process_time()
    print(orjson.dumps({"seconds": last - first, "cpu": cpu}).decode(), flush=True)


# --- the driver ---

QUIX_VERSION = "3.28.1"
CASES = ("a", "b", "c", "d", "e", "latency", "rss")
LABELS = {
    "a": "(a) aiokafka getmany + orjson, nothing else",
    "b": "(b) Quix Streams app, stateless pass-through",
    "c": "(c) faust-streaming agent, plain async for",
    "d": "(d) citystream worker, the whole job",
    "e": "(e) two citystream workers, one group",
}


def quix_python() -> Path:
    """Return the python of a venv holding quixstreams, creating it under the user's cache dir the first time.

    quixstreams 3.x pins pydantic < 2.14 and pydantic-settings < 2.16, below what citystream installs, so it
    gets its own venv rather than a place in the project's (case (b) imports nothing of citystream).
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "citystream" / f"bench-quix-{QUIX_VERSION}"
    python = venv / "bin" / "python"
    ready = (
        python.exists() and subprocess.run([python, "-c", "import quixstreams"], capture_output=True).returncode == 0
    )
    if not ready:
        print(f"installing quixstreams=={QUIX_VERSION} into {venv} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", f"quixstreams=={QUIX_VERSION}"], check=True)
    return python


def case_command(case: str, bootstrap: str, namespace: str, events: int) -> list[str | Path]:
    """Return the argv that runs one consumer case in its own process."""
    if case == "b":
        topics = Topics(namespace)
        script = Path(__file__).with_name("quix_passthrough.py")
        names = [topics.for_domain(d) for d in Domain]
        return [quix_python(), script, "--bootstrap", bootstrap, "--events", str(events), *names]
    name = {"a": "raw", "c": "faust"}[case]
    return [
        sys.executable, __file__, "--case", name, "--bootstrap", bootstrap, "--namespace", namespace,
        "--events", str(events),
    ]  # fmt: skip


def measure_subprocess(case: str, bootstrap: str, namespace: str, events: int) -> tuple[float, float]:
    """Run a consumer case in a child process; return (events/s, CPU seconds)."""
    out = subprocess.run(
        case_command(case, bootstrap, namespace, events), capture_output=True, text=True, timeout=1800, check=True
    )
    lines = re.findall(r'\{"seconds".*?\}', out.stdout)
    if not lines:
        raise RuntimeError(f"case {case} printed no result:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    result = orjson.loads(lines[-1])
    return events / result["seconds"], result["cpu"]


def preload_fleet(kafka: KafkaSettings, sensors: int) -> tuple[int, Counter[Domain]]:
    """Publish two readings (one for a detector) of each of `sensors` sources in the default fleet mix.

    Return the event count and the distinct sources per domain. Not every simulated drone flies in the
    30 s used, so the simulator gets 40 % more drones and only the first of them seen are kept.
    """
    fleet = fleet_for(sensors)
    zones = ZoneIndex.from_file(DEFAULT_ZONES_FILE)
    start = datetime.now(UTC) - timedelta(hours=1)
    size = SimSize(fleet[Domain.traffic], round(fleet[Domain.drone] * 1.4), fleet[Domain.energy])
    sim = CitySimulator(zones, 7, start, size)
    producer = GatewayProducer(kafka, linger_ms=50)
    per_source: Counter[str] = Counter()
    sources: dict[Domain, set[str]] = {d: set() for d in Domain}
    sent, step = 0, timedelta(seconds=5)
    for cursor in (start + step * i for i in range(6)):
        for raw_domain, key, value in sim.events_between(cursor, cursor + step):
            domain = Domain(raw_domain)
            held = sources[domain]
            source = str(value.get("sensor_id") or value.get("drone_id") or value.get("meter_id") or key)
            if per_source[source] >= 2 or (source not in held and len(held) >= fleet[domain]):
                continue
            held.add(source)  # the Kafka key is the road segment for traffic: count detectors
            per_source[source] += 1
            producer.send(domain, key, orjson.dumps(value))
            sent += 1
        print(f"\r  rss input: {sent:,} events, {len(per_source):,} sources", end="", file=sys.stderr, flush=True)
    producer.flush(120)
    producer.close()
    print(file=sys.stderr)
    return sent, Counter({d: len(s) for d, s in sources.items()})


def cpu_of(pid: int | None) -> float:
    """Return a process's (and its children's) user + system CPU seconds so far, 0 if it is gone."""
    try:
        proc = psutil.Process(pid)
        return sum(sum(p.cpu_times()[:2]) for p in [proc, *proc.children(recursive=True)])
    except (psutil.NoSuchProcess, ValueError):
        return 0.0


class Servers:
    """The bench's Kafka and Redis, and the CPU seconds they spent during each measured case."""

    def __init__(self, kafka: KafkaServer, redis_server: RedisServer) -> None:
        self.kafka, self.redis = kafka, redis_server
        self.spent: list[str] = []

    def timed(self, label: str, run: Callable[[], Any]) -> Any:
        """Run one case; note its wall seconds and the servers' CPU seconds during it."""
        print(f"measuring {label} ...", file=sys.stderr, flush=True)
        before = (time.monotonic(), cpu_of(self.kafka.pid), cpu_of(self.redis.pid))
        result = run()
        wall, kafka_cpu, redis_cpu = (time.monotonic(), cpu_of(self.kafka.pid), cpu_of(self.redis.pid))
        self.spent.append(
            f"{label.split()[0]} {wall - before[0]:.0f} s wall, Kafka {kafka_cpu - before[1]:.1f}, "
            f"Redis {redis_cpu - before[2]:.1f}"
        )
        return result


def fresh_topics(server: KafkaServer) -> KafkaSettings:
    """Create a new namespace of 8-partition topics and return its settings."""
    kafka = KafkaSettings(
        bootstrap_servers=server.bootstrap_servers,
        topic_namespace=f"bench-{uuid.uuid4().hex[:6]}",
        partitions=PARTITIONS,
    )
    ensure_topics(kafka)
    return kafka


def run_throughput(
    servers: Servers, cases: list[str], events: int, tmp: Path, pairs: int = 1
) -> tuple[list[tuple[str, float, str]], list[Pair]]:
    """Pre-load the input and measure the chosen consumers (a)-(e) on it; return table rows, and with (d) and
    (e) each (d, e) pair: the one of the table, then `pairs` - 1 more, alternately (e) first and (d) first."""
    kafka = fresh_topics(servers.kafka)
    events = preload(kafka, events)
    bootstrap, namespace = kafka.bootstrap_servers, kafka.topic_namespace
    rows = []
    measured: dict[str, float] = {}

    def workers(case: str) -> tuple[float, list[float]]:
        measure = partial(
            measure_workers, 1 if case == "d" else 2, bootstrap, namespace, servers.redis.url, events, tmp
        )
        return cast(tuple[float, list[float]], servers.timed(LABELS[case], measure))

    for case in cases:
        label = LABELS[case]
        if case in ("a", "b", "c"):
            rate, cpu = servers.timed(label, partial(measure_subprocess, case, bootstrap, namespace, events))
            rows.append((label, rate, f"{cpu:.1f}"))
        else:
            rate, cpus = workers(case)
            measured[case] = rate
            rows.append((label, rate, " + ".join(f"{c:.1f}" for c in cpus)))
    if "d" not in measured or "e" not in measured:
        return rows, []
    found = [Pair(measured["d"], measured["e"], "d, e")]  # the table measures the cases in order a-e
    for n in range(1, pairs):
        order = ("e", "d") if n % 2 else ("d", "e")
        rates = {case: workers(case)[0] for case in order}
        found.append(Pair(rates["d"], rates["e"], ", ".join(order)))
    return rows, found


def run_latency(servers: Servers, rate: float, fallback: float, seconds: float, tmp: Path) -> list[Latency]:
    """Measure alert latency at `rate`, and also at `fallback` if the worker fell behind at `rate`."""
    runs: list[Latency] = []
    for r in (rate, fallback):
        label = f"latency at {r:,.0f} events/s"
        kafka = fresh_topics(servers.kafka)
        runs.append(servers.timed(label, partial(measure_latency, kafka, servers.redis.url, r, seconds, tmp)))
        if not runs[-1].behind or r == fallback or fallback <= 0:
            break
    return runs


def run_rss(servers: Servers, sensors: int, tmp: Path) -> tuple[PeakRss, int, Counter[Domain]]:
    """Pre-load an input from `sensors` distinct sources and measure one worker's peak RSS applying it."""
    kafka = fresh_topics(servers.kafka)
    events, distinct = preload_fleet(kafka, sensors)
    measure = partial(measure_rss, kafka.bootstrap_servers, kafka.topic_namespace, servers.redis.url, events, tmp)
    rss = servers.timed("rss worker", measure)
    return rss, events, distinct


def main() -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="pre-loaded events for (a)-(e)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {','.join(CASES)}")
    parser.add_argument("--latency-rate", type=float, default=20_000, help="the open-loop producer's events/s")
    parser.add_argument("--latency-seconds", type=float, default=30, help="how long the producer holds its rate")
    parser.add_argument(
        "--fallback-rate", type=float, default=0, help="rate of the second latency run (default: half of (d))"
    )
    parser.add_argument("--sensors", type=int, default=100_000, help="distinct sources in the rss input")
    parser.add_argument(
        "--worker-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a citystream setting for the bench's workers, without CITY_ (WORKER__BATCH_LINGER_S=0.05); repeatable",
    )
    parser.add_argument(
        "--group-join-delay-ms",
        type=int,
        default=3000,
        help="the broker's group.initial.rebalance.delay.ms (Kafka's default 3000; 0 lets (e)'s first worker start "
        "alone and hand half its partitions over mid-run)",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=1,
        help="measure (d) and (e) this many times on the same input, alternating which goes first; e/d's target "
        "is then judged on the median of the pairs' ratios (this machine's speed drifts between cases)",
    )
    parser.add_argument(
        "--keep-workdir", action="store_true", help="keep the servers' data and logs after a run that succeeded"
    )
    parser.add_argument("--case", choices=["raw", "faust"], help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(args.case, args.bootstrap, args.namespace, args.events)
        return
    for setting in args.worker_setting:
        name, sep, value = setting.partition("=")
        if not sep or not name or name.upper().startswith("CITY_"):
            parser.error(f"--worker-setting takes NAME=VALUE without CITY_ (WORKER__BATCH_LINGER_S=0.05): {setting!r}")
        throughput_workers.SETTINGS[name.upper()] = value
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}: choose from {','.join(CASES)}")
    if args.pairs < 1 or (args.pairs > 1 and not {"d", "e"} <= set(cases)):
        parser.error(f"--pairs takes a count of at least 1, and more than 1 only with cases d and e: {args.pairs}")
    if "b" in cases:
        quix_python()  # install before any timing

    # The work dir holds the broker's data and every process's log: hundreds of MB after a full run. It goes
    # when the run succeeds (--keep-workdir keeps it) and stays, named, when it fails.
    tmp = Path(tempfile.mkdtemp(prefix="citystream-bench-"))
    try:
        run(args, cases, tmp)
    except BaseException:
        print(f"\nthe servers' and workers' logs of this run are in {tmp}", file=sys.stderr)
        raise
    if args.keep_workdir:
        print(f"\nthe servers' and workers' logs and data of this run are in {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, cases: list[str], tmp: Path) -> None:
    """Start the servers in `tmp`, run the chosen cases and print their tables."""
    rows: list[tuple[str, float, str]] = []
    pairs: list[Pair] = []
    runs: list[Latency] = []
    rss = None
    # Kafka's default join delay (3 s), as a production broker has: the two workers of (e), started together,
    # form their group in one rebalance instead of the first taking every partition and giving half back.
    kafka_server = KafkaServer(workdir=tmp / "kafka", group_join_delay_ms=args.group_join_delay_ms)
    with kafka_server, RedisServer(workdir=tmp / "redis") as redis_server:
        servers = Servers(kafka_server, redis_server)
        consumers = [c for c in CASES[:5] if c in cases]
        if consumers:
            rows, pairs = run_throughput(servers, consumers, args.events, tmp, args.pairs)
        if "latency" in cases:
            d_rate = next((rate for label, rate, _ in rows if label.startswith("(d)")), 0.0)
            fallback = args.fallback_rate or d_rate / 2
            runs = run_latency(servers, args.latency_rate, fallback, args.latency_seconds, tmp)
        if "rss" in cases:
            rss, rss_events, distinct = run_rss(servers, args.sensors, tmp)
    rates: dict[str, float] = {}
    if rows:
        rates = print_throughput(args.events, rows)
    if len(pairs) > 1:
        print_pairs(pairs)
    if runs:
        print_latency(runs)
    if rss is not None:
        print_rss(rss, rss_events, distinct)
    print(f"\nbroker group.initial.rebalance.delay.ms: {args.group_join_delay_ms}")
    if throughput_workers.SETTINGS:
        print("\nworker settings: " + ", ".join(f"CITY_{k}={v}" for k, v in throughput_workers.SETTINGS.items()))
    print("\nwall time and the servers' CPU s during each case: " + "; ".join(servers.spent))
    print_targets(rates, runs, rss, args.latency_rate, pairs)


if __name__ == "__main__":
    main()
