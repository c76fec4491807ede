"""`citystream cluster --workers 3` on real Kafka: partitions spread over the workers, move when one leaves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from citystream.servers import KafkaServer, RedisServer
from tests.support.faults import Scenario
from tests.support.worker import child_env, settings_env, wait_until

pytestmark = pytest.mark.integration


def assignment(scenario: Scenario) -> dict[str, set[tuple[str, int]]]:
    """Return each group member's assigned input partitions (empty while the group is rebalancing)."""
    group = scenario.settings.worker.group_id
    inputs = {scenario.topics.traffic, scenario.topics.drone, scenario.topics.energy}
    admin = KafkaAdminClient(bootstrap_servers=scenario.settings.kafka.bootstrap_list)
    try:
        description = admin.describe_groups([group])[group]
    except KafkaError:
        return {}
    finally:
        admin.close()
    if description.get("group_state") not in ("Stable", None):
        return {}
    out = {}
    for member in description["members"]:
        assigned = member["member_assignment"]["assigned_partitions"]
        out[member["member_id"]] = {(t["topic"], p) for t in assigned for p in t["partitions"] if t["topic"] in inputs}
    return out


def spread(scenario: Scenario, members: int) -> bool:
    """Return whether `members` workers share all 24 input partitions, each getting some."""
    current = assignment(scenario)
    owned = [p for parts in current.values() for p in parts]
    return len(current) == members and all(current.values()) and len(owned) == len(set(owned)) == 24


def test_three_workers_share_partitions_and_take_over_a_leavers(
    fault_kafka: KafkaServer, fault_redis: RedisServer, tmp_path: Path, say: Callable[[str], None]
) -> None:
    scenario = Scenario("cluster", fault_kafka, fault_redis, tmp_path, seed=15)
    total = len(scenario.city.events)
    env = {**child_env(), **settings_env(scenario.settings)}
    cluster = subprocess.Popen(
        [sys.executable, "-m", "citystream", "cluster", "--workers", "3"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: spread(scenario, 3), 60, "24 input partitions spread over 3 workers")
        sizes = sorted(len(p) for p in assignment(scenario).values())
        say(f"cluster: partitions per worker {sizes}")
        scenario.start_publisher(rate_per_s=1000)
        scenario.wait_progress(total // 3, 120)
        pids = dict(line.split() for line in (tmp_path / ".run" / "cluster" / "pids").read_text().splitlines())
        os.kill(int(pids["worker-1"]), signal.SIGKILL)
        left = time.monotonic()
        wait_until(lambda: spread(scenario, 2), 60, "the leaver's partitions to move to the other 2 workers")
        say(
            f"cluster: worker-1 killed; its partitions moved after {time.monotonic() - left:.1f}s, now "
            f"{sorted(len(p) for p in assignment(scenario).values())}"
        )
        scenario.wait_complete()
        scenario.assert_exact()
    finally:
        cluster.send_signal(signal.SIGTERM)
        out, _ = cluster.communicate(timeout=60)
    assert "worker-1 exited" in out and "cluster: stopped" in out, out
    assert cluster.returncode == 0
