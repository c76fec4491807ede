"""Throughput of consumers side by side on the same Apache Kafka and the same pre-loaded input.

    python bench/throughput.py [--events 200000]

Pre-loads N mixed traffic/drone/energy events from the city simulator into 8-partition topics of a
local Apache Kafka 4.1, then measures, one after the other on that same input, each consumer as its own
process: (a) a raw aiokafka `getmany` loop with orjson decoding and nothing else (the ceiling for Python
here), (c) a plain Faust agent (`async for` over the three topics), (d) one citystream worker doing the
whole job (decode and validate, zone lookup, all detectors, all windowed aggregates, results committed
to Redis), and (e) two citystream workers in one group. Rates count from the first event consumed to the
last, so start-up and group joins are excluded. It prints a table with each process's CPU seconds.
A benchmark, not a test: compare the ratios of one run; the machine is shared with the broker and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psutil
import redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from citystream.servers import KafkaServer, RedisServer  # noqa: E402
from citystream.simulator import CitySimulator, size_for_rate  # noqa: E402
from geo.zones import ZoneIndex  # noqa: E402
from streams.gateway import GatewayProducer  # noqa: E402
from streams.keys import Keys  # noqa: E402
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
    app = faust.App(
        f"bench-faust-{uuid.uuid4().hex[:6]}",
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


def measure_subprocess(case: str, bootstrap: str, namespace: str, events: int) -> tuple[float, float]:
    """Run a consumer case in a child process; return (events/s, CPU seconds)."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--case",
            case,
            "--bootstrap",
            bootstrap,
            "--namespace",
            namespace,
            "--events",
            str(events),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    lines = re.findall(r'\{"seconds".*?\}', out.stdout)
    if not lines:
        raise RuntimeError(f"case {case} printed no result:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    result = orjson.loads(lines[-1])
    return events / result["seconds"], result["cpu"]


def measure_workers(
    n: int, bootstrap: str, namespace: str, redis_url: str, events: int, tmp: Path
) -> tuple[float, list[float]]:
    """Run n citystream workers until every event is applied in Redis; return (events/s, CPU s per worker)."""
    tag = uuid.uuid4().hex[:6]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITY_")} | {
        "CITY_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "CITY_KAFKA__TOPIC_NAMESPACE": namespace,
        "CITY_KAFKA__SESSION_TIMEOUT_S": "6",
        "CITY_KAFKA__HEARTBEAT_INTERVAL_S": "1",
        "CITY_REDIS__URL": redis_url,
        "CITY_REDIS__KEY_PREFIX": f"bench-{tag}",
        "CITY_WORKER__GROUP_ID": f"bench-{tag}",
        "CITY_LOG_LEVEL": "WARNING",
        "CITY_WORKER__WINDOW_GRACE_S": "3600",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "citystream", "worker"],
            env=env,
            cwd=REPO,
            stdout=(tmp / f"worker-{n}-{i}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for i in range(n)
    ]
    client = redis.Redis.from_url(redis_url)
    stats_key = Keys(f"bench-{tag}").stats

    def handled() -> int:
        stats = client.hgetall(stats_key)
        return sum(int(v) for k, v in stats.items() if k.split(b":")[0] in (b"events", b"deadletter", b"late"))

    first = last = 0.0
    try:
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            done = handled()
            if done and not first:
                first = time.monotonic()
            if done >= events:
                last = time.monotonic()
                break
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a worker exited; see {tmp}")
            time.sleep(0.05)
        cpu = [sum(psutil.Process(p.pid).cpu_times()[:2]) for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        client.close()
    if not last:
        raise RuntimeError("the workers did not finish in 30 minutes")
    return events / (last - first), cpu


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--case", choices=["raw", "faust"])
    parser.add_argument("--bootstrap")
    parser.add_argument("--namespace")
    args = parser.parse_args()
    if args.case:
        run_case(args.case, args.bootstrap, args.namespace, args.events)
        return

    tmp = Path(tempfile.mkdtemp(prefix="citystream-bench-"))
    with KafkaServer(workdir=tmp / "kafka") as kafka_server, RedisServer(workdir=tmp / "redis") as redis_server:
        kafka_server.start()
        redis_server.start()
        namespace = f"bench-{uuid.uuid4().hex[:6]}"
        kafka = KafkaSettings(
            bootstrap_servers=kafka_server.bootstrap_servers, topic_namespace=namespace, partitions=PARTITIONS
        )
        ensure_topics(kafka)
        events = preload(kafka, args.events)
        rows = []
        for label, case in (
            ("(a) aiokafka getmany + orjson, nothing else", "raw"),
            ("(c) faust-streaming agent, plain async for", "faust"),
        ):
            print(f"measuring {label} ...", file=sys.stderr, flush=True)
            rate, cpu = measure_subprocess(case, kafka.bootstrap_servers, namespace, events)
            rows.append((label, rate, f"{cpu:.1f}"))
        for n, label in ((1, "(d) citystream worker, the whole job"), (2, "(e) two citystream workers, one group")):
            print(f"measuring {label} ...", file=sys.stderr, flush=True)
            rate, cpus = measure_workers(n, kafka.bootstrap_servers, namespace, redis_server.url, events, tmp)
            rows.append((label, rate, " + ".join(f"{c:.1f}" for c in cpus)))
    rates = {label[:3]: rate for label, rate, _ in rows}
    print(
        f"\n{events:,} events, 8 partitions per topic, Apache Kafka 4.1 and Redis on this machine "
        f"({os.cpu_count()} cores), {datetime.now(UTC):%Y-%m-%d}\n"
    )
    print("| consumer | events/s | CPU s |")
    print("|---|---:|---:|")
    for label, rate, cpu in rows:
        print(f"| {label} | {rate:,.0f} | {cpu} |")
    print(
        f"\nd/a = {rates['(d)'] / rates['(a)']:.3f}   d/c = {rates['(d)'] / rates['(c)']:.2f}   "
        f"e/d = {rates['(e)'] / rates['(d)']:.2f}"
    )


if __name__ == "__main__":
    main()
