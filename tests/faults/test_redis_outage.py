"""Scenario 4: Redis stops for 20 s mid-stream; workers back off and retry, the API answers 503 naming Redis."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from citystream.servers import KafkaServer, RedisServer
from tests.faults.test_broker_restart import health, start_api
from tests.support.faults import Scenario
from tests.support.worker import wait_until

pytestmark = pytest.mark.integration

OUTAGE_S = 20


def alerts_status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{url}/alerts", timeout=5) as r:
            return r.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)["detail"]


def test_redis_down_for_20_seconds_mid_stream(
    fault_kafka: KafkaServer, fault_redis: RedisServer, tmp_path: Path, say: Callable[[str], None]
) -> None:
    scenario = Scenario("redis", fault_kafka, fault_redis, tmp_path, seed=14)
    total = len(scenario.city.events)
    api, url = start_api(scenario)
    scenario.start_publisher(rate_per_s=1000)
    scenario.start_worker()
    try:
        scenario.wait_progress(total // 3, 120)
        at = scenario.progress()
        fault_redis.stop()
        stopped = time.monotonic()
        status, body = health(url)
        assert status == 503 and body["unavailable"] == ["redis"]
        code, detail = alerts_status(url)
        assert code == 503 and "Redis is unavailable" in detail
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        fault_redis.start()
        back = time.monotonic()
        wait_until(lambda: health(url)[0] == 200, 30, "the API to see Redis again")
        recovery = scenario.wait_progress(scenario.progress() + 500, 120)
        say(
            f"redis: stopped at {at}/{total} events for {back - stopped:.1f}s; API answered 503 naming redis; "
            f"workers applied 500 more events {recovery:.1f}s after Redis returned"
        )
        scenario.wait_complete()
        scenario.assert_exact()
        assert all(w.proc is not None and w.proc.poll() is None for w in scenario.workers), "a worker died"
    finally:
        scenario.stop_workers()
        api.terminate()
        api.wait(10)
