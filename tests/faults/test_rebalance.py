"""Scenario 2: three workers on 8 partitions; one is killed mid-stream, another joins later."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from citystream.servers import KafkaServer, RedisServer
from tests.support.faults import Scenario
from tests.support.worker import wait_until

pytestmark = pytest.mark.integration


def group_members(scenario: Scenario) -> int:
    """Return how many members the scenario's consumer group has now."""
    admin = KafkaAdminClient(bootstrap_servers=scenario.settings.kafka.bootstrap_list)
    try:
        group_id = scenario.settings.worker.group_id
        return len(admin.describe_groups([group_id])[group_id]["members"])
    except KafkaError:  # the group coordinator is still loading
        return -1
    finally:
        admin.close()


def test_kill_one_of_three_workers_and_add_another_mid_stream(
    fault_kafka: KafkaServer, fault_redis: RedisServer, tmp_path: Path, say: Callable[[str], None]
) -> None:
    scenario = Scenario("rebalance", fault_kafka, fault_redis, tmp_path, seed=12)
    total = len(scenario.city.events)
    scenario.start_publisher(rate_per_s=800)
    for _ in range(3):
        scenario.start_worker()
    try:
        wait_until(lambda: group_members(scenario) == 3, 60, "three members in the group")
        scenario.wait_progress(total // 3, 120)
        victim = scenario.workers[1]
        at = scenario.progress()
        victim.kill()
        killed = time.monotonic()
        wait_until(lambda: group_members(scenario) == 2, 60, "the killed worker to leave the group")
        left = time.monotonic() - killed
        say(
            f"rebalance: killed 1 of 3 workers at {at}/{total} events applied; the group rebalanced to 2 "
            f"members after {left:.1f}s"
        )
        scenario.wait_progress(total * 2 // 3, 120)
        joined = time.monotonic()
        scenario.start_worker()
        wait_until(lambda: group_members(scenario) == 3, 60, "the new worker to join")
        say(
            f"rebalance: a fourth worker joined at {scenario.progress()}/{total} after {time.monotonic() - joined:.1f}s"
        )
        scenario.wait_complete()
        scenario.assert_exact()
    finally:
        scenario.stop_workers()
