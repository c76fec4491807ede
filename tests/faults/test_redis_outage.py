"""Scenario 4: Redis stops for 20 s mid-stream; workers back off and retry, the API answers 503 naming Redis."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from citystream.servers import KafkaServer, RedisServer
from tests.support.api import api_process, get, outage
from tests.support.faults import Scenario

pytestmark = pytest.mark.integration

OUTAGE_S = 20


def test_redis_down_for_20_seconds_mid_stream(
    fault_kafka: KafkaServer, fault_redis: RedisServer, tmp_path: Path, say: Callable[[str], None]
) -> None:
    scenario = Scenario("redis", fault_kafka, fault_redis, tmp_path, seed=14)
    total = len(scenario.city.events)
    with api_process(scenario.settings, tmp_path / "api.log") as url:
        scenario.start_publisher(rate_per_s=1000)
        scenario.start_worker()
        try:
            scenario.wait_progress(total // 3, 120)
            at = scenario.progress()

            def results_refused_naming_redis() -> None:
                status, body = get(f"{url}/alerts")
                assert status == 503 and "Redis is unavailable" in body["detail"]

            down = outage(fault_redis, "redis", OUTAGE_S, url, while_down=results_refused_naming_redis)
            recovery = scenario.wait_progress(scenario.progress() + 500, 120)
            say(
                f"redis: stopped at {at}/{total} events for {down:.1f}s; the API answered 503 naming redis; "
                f"workers applied 500 more events {recovery:.1f}s after Redis returned"
            )
            scenario.wait_complete()
            scenario.assert_exact()
            scenario.assert_workers_alive()
        finally:
            scenario.stop_workers()
