"""Scenario 3: Apache Kafka stops and restarts mid-stream; workers and the API reconnect by themselves."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from citystream.servers import KafkaServer, RedisServer, free_port
from tests.support.faults import Scenario
from tests.support.worker import child_env, settings_env, wait_until

pytestmark = pytest.mark.integration

OUTAGE_S = 8


def health(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def start_api(scenario: Scenario) -> tuple[subprocess.Popen[bytes], str]:
    """Run `citystream api` for the scenario on a free port."""
    port = free_port()
    env = {**child_env(), **settings_env(scenario.settings), "CITY_API__HEALTH_TIMEOUT_S": "1"}
    log = (scenario.tmp / "api.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "citystream", "api", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(url), 30, "the API to answer")
    return proc, url


def _answers(url: str) -> bool:
    try:
        health(url)
        return True
    except OSError:
        return False


def test_kafka_restart_mid_stream(
    fault_kafka: KafkaServer,
    fault_redis: RedisServer,
    tmp_path: Path,
    say: Callable[[str], None],
) -> None:
    scenario = Scenario("broker", fault_kafka, fault_redis, tmp_path, seed=13)
    total = len(scenario.city.events)
    api, url = start_api(scenario)
    scenario.start_publisher(rate_per_s=1000)
    scenario.start_worker()
    scenario.start_worker()
    try:
        scenario.wait_progress(total // 3, 120)
        assert health(url)[0] == 200
        at = scenario.progress()
        fault_kafka.stop()
        stopped = time.monotonic()
        wait_until(lambda: health(url)[0] == 503, 20, "the API to report Kafka down")
        status, body = health(url)
        assert status == 503 and body["unavailable"] == ["kafka"]
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        fault_kafka.start()
        restarted = time.monotonic()
        wait_until(lambda: health(url)[0] == 200, 60, "the API to see Kafka again")
        recovery = scenario.wait_progress(scenario.progress() + 500, 180)
        say(
            f"broker: Kafka stopped at {at}/{total} events for {restarted - stopped:.1f}s; the API said 503 "
            f"naming kafka; workers applied 500 more events {recovery:.1f}s after it answered again; "
            f"publisher resent {scenario.publish_errors} chunks"
        )
        scenario.wait_complete(240)
        scenario.assert_exact()
        assert all(w.proc is not None and w.proc.poll() is None for w in scenario.workers), "a worker died"
    finally:
        scenario.stop_workers()
        api.terminate()
        api.wait(10)
