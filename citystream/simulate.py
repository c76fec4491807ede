"""`citystream simulate`: publish the city simulator's streams to Kafka in real time, with progress."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from citystream.simulator import CitySimulator, run_simulation, size_for_rate
from geo.zones import ZoneIndex
from streams.exceptions import PublishError
from streams.gateway import GatewayProducer
from streams.models import Domain
from streams.settings import Settings

PROGRESS_EVERY_S = 10.0


def simulate(
    settings: Settings, seed: int, rate: float, duration_s: float | None, backfill_s: float = 0.0
) -> Counter[str]:
    """Run the simulator against the configured Kafka for duration_s (None: until interrupted).

    backfill_s first publishes that much recent history at once, so baselines exist from the start.
    """
    zones = ZoneIndex.from_file(settings.zones_file)
    sim = CitySimulator(zones, seed, datetime.now(UTC) - timedelta(seconds=backfill_s), size_for_rate(rate))
    producer = GatewayProducer(settings.kafka, linger_ms=20)
    counts: Counter[str] = Counter()
    last_report = time.monotonic()

    def publish(domain: str, key: str, value: dict[str, Any]) -> None:
        nonlocal last_report
        producer.send(Domain(domain), key, orjson.dumps(value))
        counts[domain] += 1
        if time.monotonic() - last_report >= PROGRESS_EVERY_S:
            last_report = time.monotonic()
            refused = producer.refused_pending()
            note = f"; Kafka refused {refused} so far, check the brokers" if refused else ""
            print(f"simulate: published {_summary(counts)}{note}", file=sys.stderr, flush=True)

    try:
        asyncio.run(run_simulation(publish, sim, duration_s, backfill_s=backfill_s))
    except KeyboardInterrupt:
        pass
    finally:
        try:
            producer.flush()
        except PublishError as exc:
            print(f"simulate: {exc}", file=sys.stderr, flush=True)
            for failed in exc.failed:
                counts[failed.domain.value] -= 1
        producer.close()
        print(f"simulate: done, published {_summary(counts)}", file=sys.stderr, flush=True)
    return counts


def _summary(counts: Counter[str]) -> str:
    parts = ", ".join(f"{d} {counts[d]}" for d in ("traffic", "drone", "energy"))
    return f"{sum(counts.values())} events ({parts})"
