"""End-to-end alert latency of one citystream worker under an open-loop producer, for bench/throughput.py.

On fresh topics, one worker is started and fed a warm-up (30 s of the fleet's events, in which every simulated
source reports, but at most 60,000) until it has applied it: joined, caught up and, below the cap, holding every source.
Then this process sends pre-generated simulator events on a fixed schedule (`rate` a second, open loop:
an event is sent when its time comes, however far the worker is behind; how late the sends themselves
were is measured too) and, every 100 ms, one marker: a Remote ID fix of a drone never seen before with
status `remote_id_failure`, which raises an alert on that one fix. Each marker's send time is kept here;
the time its alert appeared in Redis is the id of its entry in the alert change stream (`Keys.alert_events`,
XADDed in the commit transaction: the Redis server's clock in ms, the same clock as this machine's).
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson

from bench.throughput_workers import Workers, wait_applied
from citystream.simulator import CitySimulator, size_for_rate
from geo.zones import ZoneIndex
from processors.alerts import ms_to_dt
from processors.drone.detectors import REMOTE_ID_FAILURE
from streams.gateway import GatewayProducer
from streams.models import Domain, alert_id
from streams.settings import DEFAULT_ZONES_FILE, KafkaSettings

MARKER_EVERY_S = 0.1
MARKER_GRID, MARKER_STEP_DEG = 20, 0.001  # marker places: 20 x 20, about 100 m apart (separation limit: 50 m)
WARMUP_S = 30.0  # every simulated source reports within 30 s: after it the worker holds the whole fleet
WARMUP_MAX = 60_000
DRAIN_S = 10.0  # after the last send, how long markers may still arrive
Event = tuple[Domain, str, bytes, int]  # domain, key, JSON value, observed ms


@dataclass(frozen=True)
class Latency:
    """One open-loop run: what was asked, what the producer achieved, the markers' latencies, the lag left."""

    rate: float
    achieved: float
    send_late_p99_ms: float
    markers_sent: int
    latencies_ms: list[float]
    lag_at_end: int  # events sent but not applied when the producer stopped
    lag_drained: int  # the same DRAIN_S later
    cpu: list[float]

    @property
    def behind(self) -> bool:
        """Return whether the worker fell behind: more than a second of input unapplied when sending stopped."""
        return self.lag_at_end > self.rate

    def percentile(self, q: float) -> float:
        """Return the q-th percentile (0-100) of the seen markers' latencies in ms (nan if none was seen)."""
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else float("nan")
        return statistics.quantiles(self.latencies_ms, n=1000, method="inclusive")[round(q * 10) - 1]


def pregenerate(rate: float, count: int) -> tuple[list[Event], dict[str, Any]]:
    """Return `count` simulator events of a fleet sized for `rate`, encoded, and a drone fix to copy markers from."""
    zones = ZoneIndex.from_file(DEFAULT_ZONES_FILE)
    start = datetime.now(UTC) - timedelta(seconds=count / rate + 300)
    sim = CitySimulator(zones, 11, start, size_for_rate(rate))
    out: list[Event] = []
    template: dict[str, Any] = {}
    cursor, step = start, timedelta(seconds=5)
    while len(out) < count:
        for domain, key, value in sim.events_between(cursor, cursor + step):
            observed_ms = int(datetime.fromisoformat(value["observed_at"]).timestamp() * 1000)
            out.append((Domain(domain), key, orjson.dumps(value), observed_ms))
            if domain == Domain.drone and not template:
                template = value
        cursor += step
        print(f"\r  generating: {min(len(out), count):,}/{count:,} events", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out[:count], template


def marker(template: dict[str, Any], index: int, observed_ms: int) -> tuple[str, bytes, str]:
    """Return (key, value, expected alert id) of a marker fix: a new drone reporting a Remote ID failure.

    Markers sit on a 20 x 20 grid about 100 m apart around the template's fix, so one place gets a marker
    every 40 s. On one spot, every marker would be a new drone 0 m from the ~50 before it within the 5 s
    separation window: about 50 separation alerts per marker, 500 a second, which the city's own traffic
    does not make (a first version did this, and its latencies measured that pile-up).
    """
    drone_id = f"BENCH-RID-{index:06d}"
    observed = ms_to_dt(observed_ms)
    row, column = divmod(index % (MARKER_GRID * MARKER_GRID), MARKER_GRID)
    value = template | {
        "drone_id": drone_id,
        "status": "remote_id_failure",
        "observed_at": observed.isoformat(),
        "lat": round(template["lat"] + (row - MARKER_GRID // 2) * MARKER_STEP_DEG, 7),
        "lon": round(template["lon"] + (column - MARKER_GRID // 2) * MARKER_STEP_DEG, 7),
    }
    return drone_id, orjson.dumps(value), alert_id(REMOTE_ID_FAILURE, drone_id, observed)


def open_loop(
    producer: GatewayProducer, events: list[Event], rate: float, template: dict[str, Any]
) -> tuple[dict[str, float], float, list[float]]:
    """Send events on schedule plus a marker every 100 ms; return ({alert id: send epoch s}, seconds, lateness s)."""
    markers: dict[str, float] = {}
    late: list[float] = []
    next_marker = 0.0
    began = time.monotonic()
    for i, (domain, key, value, observed_ms) in enumerate(events):
        due = i / rate
        ahead = due - (time.monotonic() - began)
        if ahead > 0.001:
            time.sleep(ahead)
        now = time.monotonic() - began
        late.append(max(0.0, now - due))
        producer.send(domain, key, value)
        if now >= next_marker:
            drone_id, fix, expected = marker(template, len(markers), observed_ms)
            markers[expected] = time.time()
            producer.send(Domain.drone, drone_id, fix)
            next_marker += MARKER_EVERY_S
        if i % 20_000 == 0:
            print(f"\r  sending: {i:,}/{len(events):,}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return markers, time.monotonic() - began, late


def alert_times(workers: Workers) -> dict[str, int]:
    """Return {alert id: epoch ms of its first entry in the alert change stream}."""
    seen: dict[str, int] = {}
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], workers.client.xrange(workers.keys.alert_events, "-", "+"))
    for entry_id, fields in entries:
        alert = fields[b"id"].decode()
        seen.setdefault(alert, int(entry_id.split(b"-")[0]))
    return seen


def measure_latency(kafka: KafkaSettings, redis_url: str, rate: float, seconds: float, tmp: Path) -> Latency:
    """Run one worker on fresh (existing, empty) topics under an open-loop producer at `rate` events/s for `seconds`."""
    warmup = min(WARMUP_MAX, int(rate * WARMUP_S))
    events, template = pregenerate(rate, warmup + int(rate * seconds))
    producer = GatewayProducer(kafka, linger_ms=5)
    try:
        with Workers(1, kafka.bootstrap_servers, kafka.topic_namespace, redis_url, tmp) as workers:
            for domain, key, value, _ in events[:warmup]:
                producer.send(domain, key, value)
            producer.flush(60)
            wait_applied(workers, warmup, "latency warm-up", timeout_s=900)
            markers, sent_s, late = open_loop(producer, events[warmup:], rate, template)
            total = len(events) + len(markers)
            lag_at_end = total - workers.handled()
            producer.flush(60)
            deadline = time.monotonic() + DRAIN_S
            while workers.handled() < total and time.monotonic() < deadline:
                workers.check_alive()
                time.sleep(0.1)
            lag_drained = total - workers.handled()
            appeared = alert_times(workers)
            cpu = workers.cpu_seconds()
    finally:
        producer.close()
    latencies = sorted(appeared[a] - sent * 1000 for a, sent in markers.items() if a in appeared)
    late.sort()
    return Latency(
        rate=rate,
        achieved=(len(events) - warmup + len(markers)) / sent_s,
        send_late_p99_ms=late[int(len(late) * 0.99)] * 1000 if late else 0.0,
        markers_sent=len(markers),
        latencies_ms=latencies,
        lag_at_end=lag_at_end,
        lag_drained=lag_drained,
        cpu=cpu,
    )
