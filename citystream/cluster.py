"""`citystream cluster --workers N`: N workers in one consumer group on this machine, supervised together.

Kafka spreads the partitions over the workers; when one leaves, its partitions move to the others
(partitions are the unit of parallelism: workers beyond the partition count sit idle).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

RUN_DIR = Path(".run") / "cluster"
STATUS_EVERY_S = 30.0


class ClusterStopped(Exception):
    """The operator or the clock ended the cluster."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise ClusterStopped


def run_cluster(workers: int, duration_s: float | None = None) -> int:
    """Run N workers until Ctrl-C, SIGTERM or duration_s; report any that exits; stop them all at the end."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for i in range(workers):
            log = (RUN_DIR / f"worker-{i}.log").open("ab")
            procs[f"worker-{i}"] = subprocess.Popen(
                [sys.executable, "-m", "citystream", "worker"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (RUN_DIR / "pids").write_text("".join(f"{name} {p.pid}\n" for name, p in procs.items()))
        print(f"cluster: {workers} workers started; logs in {RUN_DIR}/worker-*.log, pids in {RUN_DIR}/pids", flush=True)
        reported: set[str] = set()
        started = time.monotonic()
        next_status = started + STATUS_EVERY_S
        while duration_s is None or time.monotonic() - started < duration_s:
            for name, proc in procs.items():
                if name not in reported and proc.poll() is not None:
                    reported.add(name)
                    alive = sum(1 for p in procs.values() if p.poll() is None)
                    print(
                        f"cluster: {name} exited with {proc.returncode}; its partitions move to the {alive} "
                        f"still running (see {RUN_DIR}/{name}.log)",
                        flush=True,
                    )
            if len(reported) == len(procs):
                print("cluster: every worker has exited", file=sys.stderr)
                return 1
            if time.monotonic() >= next_status:
                print(f"cluster: {len(procs) - len(reported)} of {len(procs)} workers running", flush=True)
                next_status += STATUS_EVERY_S
            time.sleep(0.5)
        return 0
    except (KeyboardInterrupt, ClusterStopped):
        return 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        print("cluster: stopped", flush=True)
        signal.signal(signal.SIGTERM, previous)
