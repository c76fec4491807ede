"""Scenario 3: Apache Kafka stops and restarts mid-stream; workers and the API reconnect by themselves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from citystream.servers import KafkaServer, RedisServer
from tests.support.api import api_process, outage
from tests.support.faults import Scenario

pytestmark = pytest.mark.integration

OUTAGE_S = 8


def test_kafka_restart_mid_stream(
    fault_kafka: KafkaServer, fault_redis: RedisServer, tmp_path: Path, say: Callable[[str], None]
) -> None:
    scenario = Scenario("broker", fault_kafka, fault_redis, tmp_path, seed=13)
    total = len(scenario.city.events)
    with api_process(scenario.settings, tmp_path / "api.log") as url:
        scenario.start_publisher(rate_per_s=1000)
        scenario.start_worker()
        scenario.start_worker()
        try:
            scenario.wait_progress(total // 3, 120)
            at = scenario.progress()
            down = outage(fault_kafka, "kafka", OUTAGE_S, url)
            recovery = scenario.wait_progress(scenario.progress() + 500, 180)
            say(
                f"broker: Kafka stopped at {at}/{total} events for {down:.1f}s; the API said 503 naming kafka; "
                f"workers applied 500 more events {recovery:.1f}s after it answered again; "
                f"publisher met {scenario.publish_errors} send errors"
            )
            scenario.wait_complete(240)
            scenario.assert_exact()
            scenario.assert_workers_alive()
        finally:
            scenario.stop_workers()
