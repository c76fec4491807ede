"""Scenario 1: kill -9 the worker at seeded points mid-stream; results stay exact."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from citystream.servers import KafkaServer, RedisServer
from tests.support.faults import Scenario

pytestmark = pytest.mark.integration

KILLS = 5


def test_kill_9_at_five_seeded_points_loses_and_doubles_nothing(
    fault_kafka: KafkaServer, fault_redis: RedisServer, tmp_path: Path, say: Callable[[str], None]
) -> None:
    scenario = Scenario("crash", fault_kafka, fault_redis, tmp_path)
    total = len(scenario.city.events)
    rng = random.Random(2026)
    points = sorted(rng.sample(range(total // 20, total * 9 // 10), KILLS))
    # The publisher is timed and the kills follow the worker's progress, each restart taking seconds: at
    # 1,000 events/s a worker that catches up fast had applied the whole stream before the fifth kill.
    # At 500/s the stream lasts 35 s, so the kills fall mid-stream (at least 3 of them, checked below).
    scenario.start_publisher(rate_per_s=500)
    worker = scenario.start_worker()
    mid_stream = 0
    try:
        for n, point in enumerate(points, start=1):
            scenario.wait_progress(point, 120)
            at = scenario.progress()
            worker.kill()
            killed = time.monotonic()
            worker = scenario.start_worker()
            mid_stream += at < total
            recovery = scenario.wait_progress(min(at + 1, total), 120)
            say(
                f"crash {n}: kill -9 at {at}/{total} events applied (seeded point {point}); "
                f"a new worker applied the next events after {recovery:.1f}s"
            )
            assert time.monotonic() - killed < 120
        assert mid_stream >= 3, f"only {mid_stream} of {KILLS} kills came before the stream's end"
        scenario.wait_complete()
        scenario.assert_exact()
    finally:
        scenario.stop_workers()
