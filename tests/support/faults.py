"""A fault scenario: a fixed, seeded city stream published at a steady pace while workers are hurt."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import orjson
import redis
from kafka.errors import KafkaError
from redis.asyncio import Redis as AsyncRedis

from citystream.servers import KafkaServer, RedisServer
from geo.zones import ZoneIndex
from processors.windows import WindowStore
from streams.exceptions import PublishError
from streams.gateway import GatewayProducer
from streams.keys import Keys
from streams.models import Domain
from streams.settings import Settings
from streams.topics import Topics, ensure_topics
from tests.support.citydata import batch_alerts, batch_truth, make_city_input
from tests.support.deployment import isolated_settings
from tests.support.worker import WorkerProcess, wait_until

CHUNK = 250


class Results:
    """Read a deployment's committed results back from Redis."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = Topics(settings.kafka.topic_namespace)
        self.keys = Keys(settings.redis.key_prefix)

    def _stats(self) -> dict[bytes, int] | None:
        """Return the deployment's stats counters (None while Redis is down)."""
        client = redis.Redis.from_url(self.settings.redis.url.get_secret_value(), socket_timeout=2)
        try:
            return {k: int(v) for k, v in client.hgetall(self.keys.stats).items()}
        except redis.RedisError:
            return None
        finally:
            client.close()

    def progress(self) -> int:
        """Return how many events' effects are committed in Redis (-1 while Redis is down)."""
        stats = self._stats()
        return -1 if stats is None else sum(v for k, v in stats.items() if k.startswith(b"events:"))

    def refusals(self) -> dict[str, int]:
        """Return the stats counters other than applied events (dead letters, late events), or {} if none."""
        return {k.decode(): v for k, v in (self._stats() or {}).items() if not k.startswith(b"events:")}

    def aggregates(self) -> dict[tuple[str, str, str, int], float]:
        """Read every zone window metric back from Redis."""

        async def read() -> dict[tuple[str, str, str, int], float]:
            client = AsyncRedis.from_url(self.settings.redis.url.get_secret_value())
            store = WindowStore(client, self.keys, 60, self.topics)
            out = {}
            for domain in Domain:
                for agg in await store.aggregates(domain, await store.window_refs(domain)):
                    key = (agg.domain.value, agg.metric, agg.zone_id, int(agg.window_start.timestamp() * 1000))
                    out[key] = agg.value
            await client.aclose()
            return out

        return asyncio.run(read())

    def alerts(self) -> dict[str, tuple[str, str, str, int]]:
        """Read every alert from Redis: {id: (kind, source, status, count)}."""
        client = redis.Redis.from_url(self.settings.redis.url.get_secret_value())
        ids = [i.decode() for i in client.zrange(self.keys.alert_index, 0, -1)]
        raws = client.mget([self.keys.alert(i) for i in ids]) if ids else []
        client.close()
        alerts = {}
        for raw in raws:
            a = orjson.loads(raw)
            alerts[a["id"]] = (a["kind"], a["source_id"], a["status"], a["count"])
        return alerts


class Scenario:
    """One isolated deployment (topics, group, Redis prefix) with its input, workers and checks."""

    def __init__(self, name: str, kafka: KafkaServer, redis_server: RedisServer, tmp: Path, seed: int = 11) -> None:
        self.name = name
        self.tmp = tmp
        self.settings = isolated_settings(
            f"f-{name}",
            kafka.bootstrap_servers,
            redis_server.url,
            kafka={"partitions": 8, "request_timeout_s": 10},
            worker={"window_grace_s": 0, "idle_partition_s": 2, "redis_retry_max_s": 2},
        )
        self.city = make_city_input(seed=seed, minutes=40, sensors=(60, 20, 50))
        self.topics = Topics(self.settings.kafka.topic_namespace)
        self.results = Results(self.settings)
        self.workers: list[WorkerProcess] = []
        self.published = threading.Event()
        self.publish_errors = 0
        self.publish_failures: list[str] = []
        ensure_topics(self.settings.kafka)

    def start_publisher(self, rate_per_s: float = 1000.0) -> threading.Thread:
        """Publish the input at a steady rate in the background; send again only what Kafka refused.

        A flush that times out is waited out, not resent: the events are still queued, and sending them again
        would put copies behind later readings. Refusals and timeouts are counted in `publish_errors`.
        """

        def run() -> None:
            producer = GatewayProducer(self.settings.kafka)
            events = self.city.events
            started = time.monotonic()
            for i in range(0, len(events), CHUNK):
                todo = [(Domain(d), key, orjson.dumps(value)) for d, key, value in events[i : i + CHUNK]]
                while todo:
                    queued = 0
                    try:
                        for domain, key, value in todo:
                            producer.send(domain, key, value)
                            queued += 1
                    except KafkaError:  # not even queued (no metadata): the rest goes after a pause
                        self.publish_errors += 1
                        time.sleep(1)
                    todo = self._drain(producer) + todo[queued:]
                pause = started + (i + CHUNK) / rate_per_s - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            producer.close()
            self.published.set()

        thread = threading.Thread(target=run, name=f"publisher-{self.name}", daemon=True)
        thread.start()
        return thread

    def start_worker(self) -> WorkerProcess:
        """Start one more worker in the scenario's group."""
        worker = WorkerProcess(self.settings, self.tmp / f"worker-{len(self.workers)}.log").start()
        self.workers.append(worker)
        return worker

    def progress(self) -> int:
        """Return how many events' effects are committed in Redis (-1 while Redis is down)."""
        return self.results.progress()

    def _drain(self, producer: GatewayProducer) -> list[tuple[Domain, str, bytes]]:
        """Wait until everything queued is acknowledged; return what Kafka refused, in send order."""
        while True:
            try:
                producer.flush(10)
                return []
            except PublishError as exc:
                self.publish_errors += 1
                self.publish_failures.append(str(exc))
                if exc.failed:
                    return [(f.domain, f.key, f.value) for f in exc.failed]

    def wait_progress(self, at_least: int, timeout: float) -> float:
        """Wait until at least this many events are applied; return the seconds it took."""
        started = time.monotonic()
        try:
            wait_until(lambda: self.progress() >= at_least, timeout, f"{at_least} events applied")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnosis()}") from None
        return time.monotonic() - started

    def diagnosis(self) -> str:
        """Say where every partition stands (Kafka end, group commit, Redis applied) and what each worker logged."""
        lines = [f"applied {self.progress()} of {len(self.city.events)} events"]
        lines.append(f"publisher: {self.publish_errors} errors, last ones: {self.publish_failures[-3:]}")
        lines.append(f"refusals and lateness counted in redis: {self.results.refusals()}")
        try:
            lines += self.partition_positions()
        except Exception as exc:  # the diagnosis must not hide the failure it explains
            lines.append(f"partition positions unavailable: {exc!r}")
        for i, worker in enumerate(self.workers):
            state = "running" if worker.proc is not None and worker.proc.poll() is None else "stopped"
            text = worker.log_path.read_text(errors="replace").splitlines()
            notable = [line for line in text if "WARNING" in line or "ERROR" in line or "Traceback" in line]
            lines.append(f"--- worker-{i} ({state}), {len(notable)} warnings/errors, last of them and log end:")
            lines += [*notable[-15:], "...", *text[-25:]]
        return "\n".join(lines)

    def partition_positions(self) -> list[str]:
        """Return one line per sensor partition that is behind: Kafka end offset, group commit, Redis applied."""
        from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

        bootstrap = self.settings.kafka.bootstrap_list
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        client = redis.Redis.from_url(self.settings.redis.url.get_secret_value())
        try:
            group = self.settings.worker.group_id
            committed = admin.list_group_offsets(group).get(group, {})
            parts = range(self.settings.kafka.partitions)
            tps = [TopicPartition(self.topics.for_domain(d), p) for d in Domain for p in parts]
            ends = consumer.end_offsets(tps)
            out = []
            for tp in tps:
                raw = client.get(Keys(self.settings.redis.key_prefix).partition_offset(tp.topic, tp.partition))
                applied = int(raw) if raw is not None else -1
                meta = committed.get(tp)
                if applied + 1 < ends[tp]:
                    out.append(
                        f"{tp.topic}[{tp.partition}]: end {ends[tp]}, group committed "
                        f"{meta.offset if meta else None}, redis applied {applied}"
                    )
            return out or ["every partition is applied up to its end offset"]
        finally:
            admin.close()
            consumer.close()
            client.close()

    def live_worker(self) -> WorkerProcess | None:
        """Return a running worker, for its log in failure messages."""
        return next((w for w in reversed(self.workers) if w.proc is not None), None)

    def wait_complete(self, timeout: float = 180) -> None:
        """Wait until everything is published and applied."""
        wait_until(self.published.is_set, timeout, "the publisher to finish")
        self.wait_progress(len(self.city.events), timeout)

    def assert_workers_alive(self) -> None:
        """Assert no worker died by itself (the scenario's faults must be survived, not crashed through)."""
        dead = [w.log_path for w in self.workers if w.proc is not None and w.proc.poll() is not None]
        assert not dead, f"workers died: {dead}"

    def stop_workers(self) -> None:
        """Stop every worker still running."""
        for worker in self.workers:
            worker.stop()

    def assert_exact(self) -> None:
        """Assert every aggregate equals the batch truth and every alert exists once, as in a fault-free run."""
        zones = ZoneIndex.from_file(self.settings.zones_file)
        truth = batch_truth(self.city.events, zones)
        got = self.results.aggregates()
        assert set(got) == set(truth), f"windows differ: missing {set(truth) - set(got)}, extra {set(got) - set(truth)}"
        wrong = {k: (got[k], truth[k]) for k in truth if got[k] != truth[k]}
        assert not wrong, f"{len(wrong)} aggregates differ from the batch truth, e.g. {list(wrong.items())[:5]}"
        expected = batch_alerts(self.city.events, self.settings, zones)
        assert self.results.alerts() == expected
        assert self.progress() == len(self.city.events)
