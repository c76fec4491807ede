"""What /metrics reports: the workers' counters and watermarks, and alerts by kind and status.

Counting alerts reads at most `metrics_alert_sample` of them (a random sample scaled to the index
size when there are more) and is cached for `metrics_refresh_s`, so scrapes stay cheap. Consumer lag
in offsets would need a Kafka admin round trip per scrape; the watermarks' commit age stands in.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import cast

from redis.asyncio import Redis

from api.metrics import escape
from api.options import ApiOptions
from api.services.alert_view import AlertReader
from streams.keys import Keys


class AlertCountCache:
    """Alerts by (kind, status), recomputed at most every refresh_s."""

    def __init__(self) -> None:
        self.at = float("-inf")
        self.counts: Counter[tuple[str, str]] = Counter()
        self.sampled = False

    async def get(self, client: Redis, keys: Keys, options: ApiOptions) -> Counter[tuple[str, str]]:
        """Return the (possibly cached) counts."""
        if time.monotonic() - self.at < options.metrics_refresh_s:
            return self.counts
        total = await client.zcard(keys.alert_index)
        sample = options.metrics_alert_sample
        if total <= sample:
            members = cast(list[bytes | str], await client.zrange(keys.alert_index, 0, -1))
        else:
            members = cast(list[bytes | str], await client.zrandmember(keys.alert_index, sample))
        ids = [m.decode() if isinstance(m, bytes) else m for m in members]
        reader = AlertReader(client, keys, options, datetime.now(UTC))
        alerts = [a for a in await reader.load(ids) if a is not None]
        scale = total / len(ids) if ids else 0.0
        counts: Counter[tuple[str, str]] = Counter()
        for alert in alerts:
            counts[(alert.kind, alert.status.value)] += 1
        self.counts = Counter({k: round(v * scale) for k, v in counts.items()})
        self.sampled = total > sample
        self.at = time.monotonic()
        return self.counts


def _family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    return lines + [f"{name}{{{labels}}} {value:g}" if labels else f"{name} {value:g}" for labels, value in samples]


async def render_metrics(client: Redis, keys: Keys, options: ApiOptions, cache: AlertCountCache) -> list[str]:
    """Return the Redis-backed metric families as Prometheus text lines."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.stats)
        pipe.hgetall(keys.watermarks)
        stats_raw, marks_raw = await pipe.execute()
    counters = {_text(k): int(v) for k, v in stats_raw.items()}
    per_topic: dict[str, list[tuple[str, float]]] = {"events": [], "deadletter": [], "late": []}
    for name, count in sorted(counters.items()):
        prefix, _, topic = name.partition(":")
        if prefix in per_topic:
            per_topic[prefix].append((f'topic="{escape(topic)}"', count))
    now_ms = time.time() * 1000
    commit_age: list[tuple[str, float]] = []
    event_lag: list[tuple[str, float]] = []
    for field, value in sorted((_text(k), _text(v)) for k, v in marks_raw.items()):
        topic, _, partition = field.rpartition(":")
        event_ms, _, wall_ms = value.partition(":")
        labels = f'topic="{escape(topic)}",partition="{escape(partition)}"'
        if event_ms.lstrip("-").isdigit() and wall_ms.isdigit():
            commit_age.append((labels, max(0.0, (now_ms - int(wall_ms)) / 1000)))
            event_lag.append((labels, max(0.0, (int(wall_ms) - int(event_ms)) / 1000)))
    counts = await cache.get(client, keys, options)
    alerts = [(f'kind="{escape(kind)}",status="{status}"', float(n)) for (kind, status), n in sorted(counts.items())]
    help_alerts = "Alerts by kind and effective status" + (" (estimated from a sample)" if cache.sampled else "") + "."
    return [
        *_family("citystream_events_total", "counter", "Events applied, per input topic.", per_topic["events"]),
        *_family("citystream_deadletters_total", "counter", "Values dead-lettered per topic.", per_topic["deadletter"]),
        *_family("citystream_late_events_total", "counter", "Events past the grace, per topic.", per_topic["late"]),
        *_family("citystream_alerts", "gauge", help_alerts, alerts),
        *_family(
            "citystream_partition_commit_age_seconds",
            "gauge",
            "Seconds since a worker last committed a partition.",
            commit_age,
        ),
        *_family(
            "citystream_partition_event_lag_seconds",
            "gauge",
            "Wall time minus the newest event time at a partition's last commit.",
            event_lag,
        ),
    ]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
