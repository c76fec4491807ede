"""`citystream demo` on the embedded Tansu broker: alerts and windows of all three domains within 60 s."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def get(url: str, key: str) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)  # type: ignore[no-any-return]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_demo_shows_every_domain_within_60s_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITY_")}
    env["PYTHONPATH"] = str(REPO)
    demo = subprocess.Popen(
        [sys.executable, "-m", "citystream", "demo", "--for", "90", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    started = time.monotonic()
    output: list[str] = []
    api = None
    keys: dict[str, str] = {}
    for line in demo.stdout:
        output.append(line)
        match = re.search(r"demo: API\s+(http://\S+)", line)
        if match:
            api = match.group(1)
        key = re.search(r"demo: key (\w+)\s+(cs_\S+)", line)
        if key:
            keys[key.group(1)] = key.group(2)
        if len(keys) == 4:
            break
    assert api and set(keys) == {"gateway", "operator", "planner", "admin"}, "".join(output)
    domains_with_alerts: set[str] = set()
    domains_with_windows: set[str] = set()
    while time.monotonic() - started < 60 and (len(domains_with_alerts) < 3 or len(domains_with_windows) < 3):
        try:
            every_status = "status=open&status=acknowledged&status=resolved"
            alerts = get(f"{api}/alerts?limit=1000&{every_status}", keys["operator"])["items"]
            domains_with_alerts = {a["domain"] for a in alerts}
            domains_with_windows = {a["domain"] for a in get(f"{api}/aggregates?limit=50000", keys["planner"])["items"]}
        except OSError:
            pass
        time.sleep(1)
    elapsed = time.monotonic() - started
    rest, _ = demo.communicate(timeout=150)
    log = "".join(output) + rest
    assert domains_with_alerts == {"traffic", "drone", "energy"}, f"after {elapsed:.0f}s\n{log}"
    assert domains_with_windows == {"traffic", "drone", "energy"}, log
    assert demo.returncode == 0, log
    pids = [int(p) for p in (tmp_path / ".run" / "demo" / "pids").read_text().split()]
    assert len(pids) == 5
    assert not [p for p in pids if alive(p)], "processes left running after the demo ended"
    print(f"all three domains had alerts and windows after {elapsed:.0f}s")
