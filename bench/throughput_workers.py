"""citystream workers as bench/throughput.py runs them: `python -m citystream worker` processes, watched from outside.

A group of workers gets its own Redis key prefix and consumer group; how far it got is read from the exact
counters it commits to Redis (`<prefix>:stats`: events applied, dead letters and late events per topic), so
whatever the worker's intake is, the bench measures events whose effects are in Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import cast

import psutil
import redis

from streams.keys import Keys
from streams.models import Domain

REPO = Path(__file__).resolve().parents[1]
HANDLED = (b"events", b"deadletter", b"late")  # every counter an input event ends in
PROGRESS_EVERY_S = 5.0


# Worker settings a bench run sets on top of its own (`--worker-setting WORKER__BATCH_LINGER_S=0.05`): the
# caller's CITY_* variables are not passed on, so that a shell's settings never change a recorded figure unseen.
SETTINGS: dict[str, str] = {}


def worker_env(bootstrap: str, namespace: str, redis_url: str, tag: str) -> dict[str, str]:
    """Return the environment of a bench worker: this Kafka and Redis, its own group and key prefix."""
    return (
        {k: v for k, v in os.environ.items() if not k.startswith("CITY_")}
        | {
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
        | {f"CITY_{name}": value for name, value in SETTINGS.items()}
    )


@dataclass
class Workers:
    """n worker processes in one group, started on enter and terminated on exit."""

    n: int
    bootstrap: str
    namespace: str
    redis_url: str
    logdir: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys = Keys(f"bench-{self.tag}")
        self.client = redis.Redis.from_url(self.redis_url)

    def __enter__(self) -> Workers:
        env = worker_env(self.bootstrap, self.namespace, self.redis_url, self.tag)
        for i in range(self.n):
            with (self.logdir / f"worker-{self.tag}-{i}.log").open("wb") as log:
                argv = [sys.executable, "-m", "citystream", "worker"]
                self.procs.append(subprocess.Popen(argv, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT))
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.client.close()

    def handled(self) -> int:
        """Return how many input events the group has applied to Redis (as events, dead letters or late)."""
        stats = cast(dict[bytes, bytes], self.client.hgetall(self.keys.stats))
        return sum(int(v) for k, v in stats.items() if k.split(b":")[0] in HANDLED)

    def check_alive(self) -> None:
        """Raise if a worker exited, naming its log."""
        for i, p in enumerate(self.procs):
            if p.poll() is not None:
                raise RuntimeError(f"worker {i} exited with code {p.returncode}; see {self.logdir}")

    def cpu_seconds(self) -> list[float]:
        """Return each worker's user + system CPU seconds so far."""
        return [sum(psutil.Process(p.pid).cpu_times()[:2]) for p in self.procs]

    def rss_bytes(self) -> int:
        """Return the resident memory of the workers and all their children."""
        total = 0
        for p in self.procs:
            try:
                proc = psutil.Process(p.pid)
                total += sum(q.memory_info().rss for q in [proc, *proc.children(recursive=True)])
            except psutil.NoSuchProcess:
                continue
        return total

    def sources_held(self) -> dict[Domain, int]:
        """Return how many distinct sources have state in Redis, per domain."""
        return {d: int(self.client.hlen(self.keys.state(d.value))) for d in Domain}


def wait_applied(workers: Workers, events: int, label: str, timeout_s: float = 1800) -> tuple[float, float]:
    """Wait until the group applied `events`; return the monotonic times of the first and the last applied."""
    first = 0.0
    deadline = time.monotonic() + timeout_s
    shown = time.monotonic()
    while time.monotonic() < deadline:
        done = workers.handled()
        if done and not first:
            first = time.monotonic()
        if done >= events:
            return first, time.monotonic()
        workers.check_alive()
        if time.monotonic() - shown >= PROGRESS_EVERY_S:
            shown = time.monotonic()
            rate = done / (shown - first) if first else 0.0
            print(f"  {label}: {done:,}/{events:,} applied, {rate:,.0f}/s", file=sys.stderr, flush=True)
        time.sleep(0.05)
    raise RuntimeError(f"{label}: the workers did not apply {events:,} events in {timeout_s:.0f} s")


def measure_workers(
    n: int, bootstrap: str, namespace: str, redis_url: str, events: int, tmp: Path
) -> tuple[float, list[float]]:
    """Run n workers until every event is applied in Redis; return (events/s, CPU s per worker)."""
    with Workers(n, bootstrap, namespace, redis_url, tmp) as workers:
        first, last = wait_applied(workers, events, f"{n} worker(s)")
        return events / (last - first), workers.cpu_seconds()


@dataclass(frozen=True)
class PeakRss:
    """A worker's resident memory while it applied an input with many distinct sources."""

    peak_bytes: int
    start_bytes: int
    samples: int
    seconds: float
    held: dict[Domain, int]


def measure_rss(bootstrap: str, namespace: str, redis_url: str, events: int, tmp: Path) -> PeakRss:
    """Run one worker over `events` pre-loaded events, sampling its RSS (children included) every 0.2 s."""
    with Workers(1, bootstrap, namespace, redis_url, tmp) as workers:
        time.sleep(0.2)
        start = peak = workers.rss_bytes()
        samples, began, shown = 1, time.monotonic(), time.monotonic()
        while (done := workers.handled()) < events:
            workers.check_alive()
            peak = max(peak, workers.rss_bytes())
            samples += 1
            if time.monotonic() - shown >= PROGRESS_EVERY_S:
                shown = time.monotonic()
                print(f"  rss: {done:,}/{events:,} applied, peak {peak / 2**20:,.0f} MB", file=sys.stderr, flush=True)
            if time.monotonic() - began > 1800:
                raise RuntimeError(f"rss: the worker did not apply {events:,} events in 30 minutes")
            time.sleep(0.2)
        peak = max(peak, workers.rss_bytes())
        return PeakRss(peak, start, samples + 1, time.monotonic() - began, workers.sources_held())
