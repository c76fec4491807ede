"""Run real worker processes for tests and wait on their effects in Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from streams.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """Return CITY_* variables that reproduce the settings the tests care about in a child process."""
    security = {
        "CITY_KAFKA__SECURITY_PROTOCOL": settings.kafka.security_protocol,
        "CITY_KAFKA__SASL_MECHANISM": settings.kafka.sasl_mechanism,
    }
    if settings.kafka.sasl_username and settings.kafka.sasl_password:
        security["CITY_KAFKA__SASL_USERNAME"] = settings.kafka.sasl_username
        security["CITY_KAFKA__SASL_PASSWORD"] = settings.kafka.sasl_password.get_secret_value()
    return security | {
        "CITY_ENVIRONMENT": settings.environment,
        "CITY_SITES_FILE": str(settings.sites_file),
        "CITY_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "CITY_KAFKA__TOPIC_NAMESPACE": settings.kafka.topic_namespace,
        "CITY_KAFKA__PARTITIONS": str(settings.kafka.partitions),
        "CITY_KAFKA__SESSION_TIMEOUT_S": str(settings.kafka.session_timeout_s),
        "CITY_KAFKA__HEARTBEAT_INTERVAL_S": str(settings.kafka.heartbeat_interval_s),
        "CITY_REDIS__URL": settings.redis.url.get_secret_value(),
        "CITY_REDIS__KEY_PREFIX": settings.redis.key_prefix,
        "CITY_WORKER__GROUP_ID": settings.worker.group_id,
        "CITY_WORKER__EMIT_INTERVAL_S": str(settings.worker.emit_interval_s),
        "CITY_WORKER__WINDOW_GRACE_S": str(settings.worker.window_grace_s),
        "CITY_WORKER__IDLE_PARTITION_S": str(settings.worker.idle_partition_s),
        "CITY_WORKER__SILENCE_CHECK_S": str(settings.worker.silence_check_s),
        "CITY_TRAFFIC__OFFLINE_AFTER_S": str(settings.traffic.offline_after_s),
        "CITY_DRONE__TELEMETRY_LOSS_S": str(settings.drone.telemetry_loss_s),
        "CITY_ENERGY__OFFLINE_AFTER_S": str(settings.energy.offline_after_s),
    }


def child_env() -> dict[str, str]:
    """Return this process's environment without any CITY_* variable, so children get only what a test sets."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CITY_")}


class WorkerProcess:
    """A `citystream worker` child process with its log in a file."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        """Start the worker."""
        env = {**child_env(), **settings_env(self.settings)}
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "citystream", "worker"], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        return self

    def stop(self, timeout: float = 20) -> None:
        """Stop the worker gracefully (SIGTERM), killing it if it does not exit in time."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        self.proc = None

    def kill(self) -> None:
        """Kill the worker with SIGKILL, as a crash would (no shutdown, no offset commit)."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self._log.close()
        self.proc = None

    def log_tail(self, lines: int = 60) -> str:
        """Return the end of the worker's log."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(check: Callable[[], bool], timeout: float, what: str, worker: WorkerProcess | None = None) -> None:
    """Poll a condition until it holds, failing with what was awaited (and the worker's log) on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if worker and worker.proc and worker.proc.poll() is not None:
            raise AssertionError(
                f"worker exited with {worker.proc.returncode} while waiting for {what}:\n{worker.log_tail()}"
            )
        time.sleep(0.25)
    tail = f"\nworker log:\n{worker.log_tail()}" if worker else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{tail}")
