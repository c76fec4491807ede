"""The image: deploy/Dockerfile builds from a complete context, runs `citystream` as a fixed non-root user."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from citystream.cli import build_parser
from tests.deploy.manifests import PYPROJECT, REPO, DockerIgnore, Stage, exec_form, parse_copy, parse_dockerfile

DOCKERFILE = REPO / "deploy" / "Dockerfile"
STAGES = parse_dockerfile(DOCKERFILE.read_text())
FINAL = STAGES[-1]
IGNORE = DockerIgnore((REPO / ".dockerignore").read_text())
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "cmake", "git", "rustc", "cargo", "python3-dev")


def context_copies() -> list[str]:
    """Return every source the Dockerfile copies from the build context (not from another stage)."""
    sources = []
    for stage in STAGES:
        for keyword in ("COPY", "ADD"):
            for args in stage.all(keyword):
                copy = parse_copy(args)
                if "from" not in copy.flags:
                    sources += copy.sources
    return sources


def files_under(path: Path) -> list[str]:
    """Return the files below a context path, relative to the repo, without Python caches and without the
    local mypyc build (`processors/_native`: the image compiles its own, for its own Python)."""
    if path.is_file():
        return [path.relative_to(REPO).as_posix()]
    return sorted(
        p.relative_to(REPO).as_posix()
        for p in path.rglob("*")
        if p.is_file() and not {"__pycache__", "_native"} & set(p.parts) and p.suffix != ".pyc"
    )


@pytest.mark.parametrize(
    ("rules", "path", "excluded"),
    [
        (".venv", ".venv/bin/python", True),
        (".venv", "venv/x", False),
        ("**/__pycache__", "geo/__pycache__/zones.cpython-311.pyc", True),
        ("**/__pycache__", "__pycache__/x.pyc", True),
        ("*-data", "it-worker-1-data/v1/tables", True),
        ("*-data", "geo/data/zones.geojson", False),
        ("*.md", "geo/data/README.md", False),
        ("**/*.md", "geo/data/README.md", True),
        ("deploy\n!deploy/Dockerfile", "deploy/Dockerfile", False),
        ("deploy\n!deploy/Dockerfile", "deploy/kafka/jars/kafka.jar", True),
        ("*.md\n!README.md", "README.md", False),
        ("!README.md\n*.md", "README.md", True),
        ("# comment\n\n/build/", "build/lib/x.py", True),
        ("file?.txt", "file1.txt", True),
        ("file?.txt", "file10.txt", False),
        ("[a-c].py", "b.py", True),
        ("[!a-c].py", "b.py", False),
    ],
)
def test_dockerignore_matching_follows_docker_rules(rules: str, path: str, excluded: bool) -> None:
    assert DockerIgnore(rules).excluded(path) is excluded


def test_every_copied_source_is_in_the_build_context() -> None:
    sources = context_copies()
    assert sources, "the Dockerfile copies nothing from the context"
    for source in sources:
        path = REPO / source
        assert path.exists(), f"COPY {source}: no such file in the repo"
        dropped = [f for f in files_under(path) if IGNORE.excluded(f)]
        assert not dropped, f"COPY {source}: .dockerignore leaves out {dropped[:5]}"


def test_the_context_holds_everything_the_wheel_is_built_from() -> None:
    copied = {s.rstrip("/") for s in context_copies()}
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = {"pyproject.toml", PYPROJECT["project"]["readme"], *packages}
    assert needed <= copied, f"not copied into the builder: {sorted(needed - copied)}"
    for package, globs in PYPROJECT["tool"]["setuptools"]["package-data"].items():
        for pattern in globs:
            data = list((REPO / package).glob(pattern))
            assert data and not any(IGNORE.excluded(p.relative_to(REPO).as_posix()) for p in data), pattern


@pytest.mark.parametrize(
    "path", [".venv/bin/python", "deploy/kafka/jars/kafka_2.13-4.1.1.jar", ".run/demo/x", ".git/HEAD"]
)
def test_local_environments_and_jars_stay_out_of_the_context(path: str) -> None:
    assert IGNORE.excluded(path)


def test_two_stages_on_slim_python_and_the_runtime_copies_only_the_venv() -> None:
    assert len(STAGES) >= 2, "builder and runtime stages expected"
    assert FINAL.base == "python:3.11-slim"
    assert STAGES[0].base == FINAL.base, "the venv is built on the same Python it runs on"
    from_builder = [parse_copy(a) for a in FINAL.all("COPY") if "from" in parse_copy(a).flags]
    assert [c.flags["from"] for c in from_builder] == [STAGES[0].name]
    assert not [parse_copy(a) for a in FINAL.all("COPY") if "from" not in parse_copy(a).flags]


def test_runtime_stage_installs_no_build_tools() -> None:
    for run in FINAL.all("RUN"):
        installs = re.findall(r"(?:apt-get|apt|apk)\s+(?:-\S+\s+)*(?:install|add)\s+([^&;|]*)", run)
        packages = {word for chunk in installs for word in chunk.split() if not word.startswith("-")}
        assert not packages & set(BUILD_TOOLS), f"build tools in the runtime stage: {packages & set(BUILD_TOOLS)}"
        assert "pip install" not in run, "the runtime stage installs nothing: the builder's venv is copied"


def test_entrypoint_is_the_citystream_command() -> None:
    entrypoints = [exec_form(a) for a in FINAL.all("ENTRYPOINT")]
    assert entrypoints == [["citystream"]]
    module, _, function = PYPROJECT["project"]["scripts"]["citystream"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    commands = set(subcommands.choices)
    assert {"worker", "api", "simulate", "publish", "topics"} <= commands


def runtime_uid(stage: Stage) -> int:
    """Return the uid the final stage runs as (USER must be numeric so Kubernetes can check runAsNonRoot)."""
    users = stage.all("USER")
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user.isdigit(), f"USER {user}: use a numeric uid"
    return int(user)


def test_runs_as_a_fixed_non_root_uid_that_exists() -> None:
    uid = runtime_uid(FINAL)
    assert uid >= 1000
    created = " ".join(FINAL.all("RUN"))
    assert re.search(rf"useradd\b.*--uid {uid}\b", created), f"no user with uid {uid} is created"


def healthcheck_argv() -> list[str]:
    """Return the HEALTHCHECK's exec-form command."""
    checks = FINAL.all("HEALTHCHECK")
    assert len(checks) == 1, "one HEALTHCHECK in the runtime stage"
    argv = exec_form(checks[0][checks[0].index("CMD") + 3 :].strip())
    assert argv is not None and "/health" in argv[-1]
    return argv


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_stub() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("command", "status", "healthy"),
    [("api", 200, True), ("api", 503, False), ("worker", 503, True), ("simulate", 503, True)],
)
def test_healthcheck_asks_the_api_for_health_and_passes_other_commands(
    health_stub: HTTPServer, tmp_path: Path, command: str, status: int, healthy: bool
) -> None:
    _Health.status = status
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(
        b"\0".join([b"/opt/citystream/bin/python", b"/opt/citystream/bin/citystream", command.encode()])
    )
    argv = healthcheck_argv()
    code = argv[-1].replace("/proc/1/cmdline", str(cmdline))
    env = {**os.environ, "CITY_API__PORT": str(health_stub.server_address[1])}
    result = subprocess.run([sys.executable, *argv[1:-1], code], env=env, capture_output=True, timeout=30, check=False)
    assert (result.returncode == 0) is healthy, result.stderr.decode()
