"""Read the deployment files the way Docker, Compose and kustomize do, for the deploy tests (no servers)."""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
IMAGE_NAME = "citystream"


def setting_names(model: type[BaseModel] = Settings, prefix: str = "CITY_") -> set[str]:
    """Return the environment variable of every leaf setting, walking nested models (`CITY_KAFKA__...`)."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= setting_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def settings_from_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """Build Settings the way a container does: from exactly these CITY_* variables and no others."""
    for key in [k for k in os.environ if k.startswith("CITY_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def project_image() -> str:
    """Return the image every deployment file must run: `citystream:<project version>`."""
    return f"{IMAGE_NAME}:{PYPROJECT['project']['version']}"


def load_compose() -> dict[str, Any]:
    """Return deploy/compose.yaml with YAML anchors and merge keys resolved, as Compose reads it."""
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def load_kustomization() -> dict[str, Any]:
    """Return deploy/k8s/kustomization.yaml."""
    data: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return data


def load_k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    """Return (file name, resource) for every resource of every file the kustomization lists."""
    docs = []
    for name in load_kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                docs.append((name, doc))
    return docs


def env_list_to_dict(env: dict[str, Any] | list[str] | None) -> dict[str, str]:
    """Return a Compose `environment` (mapping or KEY=VALUE list) as a dict of strings."""
    if env is None:
        return {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


# --- .dockerignore -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    """One .dockerignore line: a pattern and whether it is a `!` exception."""

    pattern: str
    exception: bool
    regex: re.Pattern[str]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Translate a Docker ignore pattern (Go filepath.Match plus `**`) into a regular expression."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith(("!", "^")) else body) + "]")
            i = end
        elif char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 1
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


class DockerIgnore:
    """The rules of a .dockerignore file: the last rule matching a path or one of its parent dirs decides."""

    def __init__(self, text: str) -> None:
        self.rules: list[IgnoreRule] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            pattern = line[1:].strip() if exception else line
            pattern = re.sub(r"/+", "/", pattern).strip("/")
            pattern = pattern.removeprefix("./")
            self.rules.append(IgnoreRule(pattern, exception, _pattern_regex(pattern)))

    def excluded(self, path: str) -> bool:
        """Return whether a path relative to the context root is left out of the build context."""
        parts = path.strip("/").split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for rule in self.rules:
            if any(rule.regex.match(candidate) for candidate in candidates):
                verdict = not rule.exception
        return verdict


# --- Dockerfile ---------------------------------------------------------------------------------------------


@dataclass
class Stage:
    """One build stage: its base image, its name and its instructions in order."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        """Return the arguments of every instruction of one kind."""
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Return the stages of a Dockerfile, with ARG defaults before the first FROM substituted into FROM."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "ARG" and not stages:
            name, _, default = args.partition("=")
            global_args[name] = default
        elif keyword == "FROM":
            words = args.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), words[0])
            stage_name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, stage_name))
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return stages


def exec_form(args: str) -> list[str] | None:
    """Return the argv of an exec-form (JSON array) instruction, None for the shell form."""
    return json.loads(args) if args.startswith("[") else None


@dataclass(frozen=True)
class Copy:
    """A COPY or ADD: its flags, sources and destination."""

    flags: dict[str, str]
    sources: list[str]
    dest: str


def parse_copy(args: str) -> Copy:
    """Split the arguments of a COPY/ADD instruction into flags, sources and destination."""
    match = re.match(r"((?:--\S+\s+)*)(.*)", args)
    assert match is not None
    flags = dict(flag[2:].partition("=")[::2] for flag in match.group(1).split())
    rest = match.group(2)
    parts = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    return Copy(flags, parts[:-1], parts[-1])
