"""deploy/compose.yaml: valid Compose, real CITY_* settings, health-gated start order, the services the code needs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
from compose_spec import PyCompose

from citystream.cli import build_parser
from streams.settings import Settings
from tests.deploy.manifests import (
    env_list_to_dict,
    load_compose,
    project_image,
    setting_names,
    settings_from_env,
)

COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
CITYSTREAM = sorted(name for name, svc in SERVICES.items() if str(svc.get("image", "")).startswith("citystream"))
# Vendored from the docker-compose 1.29.2 wheel (see schemas/README.md); no installed package ships it.
COMPOSE_SCHEMA = json.loads((Path(__file__).parent / "schemas" / "compose_spec.json").read_text())
GATES = {"service_healthy", "service_completed_successfully"}


def env_of(name: str) -> dict[str, str]:
    """Return a service's environment as strings."""
    return env_list_to_dict(SERVICES[name].get("environment"))


def test_validates_against_the_compose_spec_json_schema() -> None:
    validator = jsonschema.Draft201909Validator(COMPOSE_SCHEMA)
    errors = sorted(validator.iter_errors(COMPOSE), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_parses_with_the_current_compose_specification() -> None:
    # compose-spec wraps the Rust compose_spec crate: typed, rejects unknown keys and bad enum values. It does
    # not expand YAML merge keys (`<<: *citystream`), so it gets the file as Compose sees it after merging.
    parsed = PyCompose.from_json(json.dumps(COMPOSE))
    assert set(parsed.service_names()) == set(SERVICES)


def test_has_every_service_the_code_needs() -> None:
    assert {"kafka", "redis", "topics", "worker", "api", "simulator"} <= set(SERVICES)
    assert {"topics", "worker", "api", "simulator"} <= set(CITYSTREAM)


def test_citystream_services_run_the_project_image() -> None:
    assert {SERVICES[name]["image"] for name in CITYSTREAM} == {project_image()}


@pytest.mark.parametrize("name", CITYSTREAM)
def test_commands_are_real_citystream_subcommands(name: str) -> None:
    command = SERVICES[name]["command"]
    assert isinstance(command, list), "exec form, so arguments are not split by a shell"
    build_parser().parse_args(command)


@pytest.mark.parametrize("name", CITYSTREAM)
def test_only_existing_city_settings_are_set(name: str) -> None:
    env = env_of(name)
    assert env, f"{name} has no environment"
    assert all(key.startswith("CITY_") for key in env), f"{name}: not a CITY_* setting: {sorted(env)}"
    unknown = set(env) - setting_names()
    assert not unknown, f"{name}: no such setting in streams.settings.Settings: {sorted(unknown)}"


@pytest.mark.parametrize("name", CITYSTREAM)
def test_settings_validate_in_production(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(monkeypatch, env_of(name))
    assert settings.environment == "production"
    assert settings.kafka.bootstrap_list and settings.redis.url.get_secret_value()


def test_settings_point_at_the_kafka_and_redis_services() -> None:
    for name in CITYSTREAM:
        env = env_of(name)
        for server in env["CITY_KAFKA__BOOTSTRAP_SERVERS"].split(","):
            host, _, port = server.rpartition(":")
            assert host in SERVICES, f"{name}: Kafka host {host} is not a service"
            advertised = env_of_kafka()["KAFKA_ADVERTISED_LISTENERS"]
            assert f"//{host}:{port}" in advertised, f"{name}: Kafka does not advertise {server}"
        redis = urlsplit(env["CITY_REDIS__URL"])
        assert redis.hostname == "redis" and (redis.port or 6379) == 6379


def env_of_kafka() -> dict[str, str]:
    """Return the Kafka service's environment."""
    return env_of("kafka")


def test_kafka_is_apache_kafka_in_kraft_mode_with_a_health_check() -> None:
    kafka = SERVICES["kafka"]
    assert kafka["image"] == "apache/kafka:4.1.1"
    env = env_of_kafka()
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in env["KAFKA_LISTENERS"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "topics come from `citystream topics` only"
    assert "test" in kafka["healthcheck"]


def test_redis_is_redis_7_with_a_health_check_that_never_evicts() -> None:
    redis = SERVICES["redis"]
    assert redis["image"] == "redis:7"
    assert "redis-cli" in redis["healthcheck"]["test"]
    assert "noeviction" in redis["command"]


@pytest.mark.parametrize("name", CITYSTREAM)
def test_start_order_is_health_and_completion_gated(name: str) -> None:
    depends = SERVICES[name].get("depends_on")
    assert isinstance(depends, dict), f"{name}: depends_on needs conditions, not a plain list"
    expected = (
        {"kafka": "service_healthy"}
        if name == "topics"
        else {
            "kafka": "service_healthy",
            "redis": "service_healthy",
            "topics": "service_completed_successfully",
        }
    )
    assert {dep: spec["condition"] for dep, spec in depends.items()} == expected
    for dep, spec in depends.items():
        assert spec["condition"] in GATES
        if spec["condition"] == "service_healthy":
            assert "healthcheck" in SERVICES[dep], f"{name} waits for {dep} to be healthy, but it has no healthcheck"


def test_topics_runs_once() -> None:
    topics = SERVICES["topics"]
    assert topics["command"] == ["topics"]
    assert topics.get("restart", "no") == "no", "a one-shot job must not restart after it exits 0"


def test_workers_scale_up_to_the_partition_count() -> None:
    worker = SERVICES["worker"]
    partitions = int(env_of("worker").get("CITY_KAFKA__PARTITIONS", Settings.model_fields["kafka"].default.partitions))
    assert 1 <= worker["deploy"]["replicas"] <= partitions
    assert "container_name" not in worker and "ports" not in worker, "`--scale worker=N` needs neither"


def test_api_publishes_its_port_and_checks_health_there() -> None:
    api, env = SERVICES["api"], env_of("api")
    port = env["CITY_API__PORT"]
    assert env["CITY_API__HOST"] == "0.0.0.0"
    assert any(str(p).endswith(f":{port}") for p in api["ports"])
    test = " ".join(api["healthcheck"]["test"])
    assert re.search(rf"127\.0\.0\.1:{port}/health\b", test), test


def test_simulator_is_optional() -> None:
    assert SERVICES["simulator"]["profiles"] == ["simulator"]
    always = [name for name, svc in SERVICES.items() if name != "simulator" and svc.get("profiles")]
    assert not always, f"these would not start with a plain `up`: {always}"
