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
    scenario.start_publisher(rate_per_s=1000)
    worker = scenario.start_worker()
    try:
        for n, point in enumerate(points, start=1):
            scenario.wait_progress(point, 120)
            at = scenario.progress()
            worker.kill()
            killed = time.monotonic()
            worker = scenario.start_worker()
            recovery = scenario.wait_progress(at + 1, 120)
            say(
                f"crash {n}: kill -9 at {at}/{total} events applied (seeded point {point}); "
                f"a new worker applied the next events after {recovery:.1f}s"
            )
            assert time.monotonic() - killed < 120
        scenario.wait_complete()
        scenario.assert_exact()
    finally:
        scenario.stop_workers()
