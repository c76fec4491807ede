"""Settings read from `CITY_*` environment variables, and the values they refuse."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from streams.exceptions import CitystreamError, ConfigError
from streams.settings import DEFAULT_ZONES_FILE, Settings, TrafficRules

PRODUCTION_SAFE = {
    "CITY_ENVIRONMENT": "production",
    "CITY_KAFKA__BOOTSTRAP_SERVERS": "kafka-1.city.internal:9092,kafka-2.city.internal:9092",
    "CITY_REDIS__URL": "redis://redis.city.internal:6379/0",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test without the caller's CITY_ variables."""
    for name in list(os.environ):
        if name.upper().startswith("CITY_"):
            monkeypatch.delenv(name)


def settings_with(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_defaults_without_environment() -> None:
    settings = Settings()
    assert settings.environment == "development"
    assert settings.zones_file == DEFAULT_ZONES_FILE
    assert settings.kafka.bootstrap_list == ["127.0.0.1:9092"]
    assert (settings.traffic.congestion_speed_kmh, settings.traffic.congestion_recover_kmh) == (25.0, 40.0)
    assert settings.worker.window_seconds == 60


@pytest.mark.parametrize(
    ("name", "value", "path", "expected"),
    [
        ("CITY_ENVIRONMENT", "test", ("environment",), "test"),
        ("CITY_LOG_LEVEL", "DEBUG", ("log_level",), "DEBUG"),
        ("CITY_ZONES_FILE", "/srv/zones.geojson", ("zones_file",), Path("/srv/zones.geojson")),
        ("CITY_KAFKA__PARTITIONS", "24", ("kafka", "partitions"), 24),
        ("CITY_KAFKA__BOOTSTRAP_SERVERS", "a:9092, b:9093,", ("kafka", "bootstrap_list"), ["a:9092", "b:9093"]),
        ("CITY_WORKER__WINDOW_SECONDS", "30", ("worker", "window_seconds"), 30),
        ("CITY_WORKER__BATCH_WITHIN_S", "0.5", ("worker", "batch_within_s"), 0.5),
        ("CITY_TRAFFIC__CONGESTION_SPEED_KMH", "20", ("traffic", "congestion_speed_kmh"), 20.0),
        ("CITY_TRAFFIC__CONGESTION_MIN_READINGS", "5", ("traffic", "congestion_min_readings"), 5),
        ("CITY_ENERGY__SPIKE_FACTOR", "4.5", ("energy", "spike_factor"), 4.5),
        ("CITY_DRONE__NOFLY_STATUSES", '["emergency"]', ("drone", "nofly_statuses"), ["emergency"]),
        ("CITY_API__PORT", "8080", ("api", "port"), 8080),
        ("city_api__host", "0.0.0.0", ("api", "host"), "0.0.0.0"),
    ],
)
def test_city_variable_is_read(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, path: tuple[str, ...], expected: Any
) -> None:
    found: Any = settings_with(monkeypatch, {name: value})
    for attribute in path:
        found = getattr(found, attribute)
    assert found == expected


def test_redis_url_is_read_as_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_with(monkeypatch, {"CITY_REDIS__URL": "redis://:hunter2@cache:6379/1"})
    assert settings.redis.url.get_secret_value() == "redis://:hunter2@cache:6379/1"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())


def test_one_nested_variable_keeps_the_other_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_with(monkeypatch, {"CITY_TRAFFIC__CONGESTION_SPEED_KMH": "20"})
    assert settings.traffic.congestion_recover_kmh == 40.0
    assert settings.traffic.congestion_min_readings == 3
    assert settings.kafka.partitions == 8


def test_variables_without_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_with(monkeypatch, {"ENVIRONMENT": "production", "KAFKA__PARTITIONS": "3"})
    assert settings.environment == "development"
    assert settings.kafka.partitions == 8


def test_unknown_city_variable_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_with(monkeypatch, {"CITY_NOT_A_SETTING": "x"}).environment == "development"


@pytest.mark.parametrize(
    ("name", "value", "loc"),
    [
        ("CITY_ENVIRONMENT", "staging", "environment"),
        ("CITY_KAFKA__PARTITIONS", "0", "kafka"),
        ("CITY_KAFKA__TOPIC_NAMESPACE", "city stream", "kafka"),
        ("CITY_WORKER__WINDOW_SECONDS", "0", "worker"),
        ("CITY_API__PORT", "70000", "api"),
        ("CITY_ENERGY__SPIKE_FACTOR", "1", "energy"),
        ("CITY_TRAFFIC__CONGESTION_RECOVER_KMH", "10", "traffic"),
    ],
)
def test_bad_variable_is_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str, loc: str) -> None:
    with pytest.raises(ValidationError) as info:
        settings_with(monkeypatch, {name: value})
    assert info.value.errors()[0]["loc"][0] == loc


@pytest.mark.parametrize(("speed", "recover", "accepted"), [(25, 24.9, False), (25, 25, True), (25, 40, True)])
def test_recovery_speed_must_not_be_below_onset(speed: float, recover: float, accepted: bool) -> None:
    if accepted:
        assert (
            TrafficRules(congestion_speed_kmh=speed, congestion_recover_kmh=recover).congestion_recover_kmh == recover
        )
    else:
        with pytest.raises(ValidationError, match="congestion_recover_kmh must be >= congestion_speed_kmh"):
            TrafficRules(congestion_speed_kmh=speed, congestion_recover_kmh=recover)


def test_recovery_below_onset_is_refused_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"CITY_TRAFFIC__CONGESTION_SPEED_KMH": "30", "CITY_TRAFFIC__CONGESTION_RECOVER_KMH": "29"}
    with pytest.raises(ValidationError, match="congestion_recover_kmh must be >= congestion_speed_kmh"):
        settings_with(monkeypatch, env)


# --- production refuses loopback --------------------------------------------------------------


def test_production_with_real_addresses_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_with(monkeypatch, PRODUCTION_SAFE)
    assert settings.environment == "production"
    assert settings.kafka.bootstrap_list == ["kafka-1.city.internal:9092", "kafka-2.city.internal:9092"]


@pytest.mark.parametrize(
    "bootstrap",
    [None, "127.0.0.1:9092", "localhost:9092", "kafka-1.city.internal:9092,localhost:9092"],
    ids=["default", "ipv4-loopback", "localhost", "one-of-several"],
)
def test_production_with_loopback_kafka_raises_config_error(
    monkeypatch: pytest.MonkeyPatch, bootstrap: str | None
) -> None:
    env = dict(PRODUCTION_SAFE)
    if bootstrap is None:
        del env["CITY_KAFKA__BOOTSTRAP_SERVERS"]
    else:
        env["CITY_KAFKA__BOOTSTRAP_SERVERS"] = bootstrap
    with pytest.raises(ConfigError, match="CITY_KAFKA__BOOTSTRAP_SERVERS points at loopback") as info:
        settings_with(monkeypatch, env)
    assert isinstance(info.value, CitystreamError)


@pytest.mark.parametrize("url", [None, "redis://127.0.0.1:6379/0"], ids=["default", "ipv4-loopback"])
def test_production_with_loopback_redis_raises_config_error(monkeypatch: pytest.MonkeyPatch, url: str | None) -> None:
    env = dict(PRODUCTION_SAFE)
    if url is None:
        del env["CITY_REDIS__URL"]
    else:
        env["CITY_REDIS__URL"] = url
    with pytest.raises(ConfigError, match="CITY_REDIS__URL points at loopback"):
        settings_with(monkeypatch, env)


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "redis://127.0.0.2:6379/0", "redis://[::1]:6379/0"])
def test_production_with_any_loopback_redis_raises_config_error(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    env = {**PRODUCTION_SAFE, "CITY_REDIS__URL": url}
    with pytest.raises(ConfigError, match="CITY_REDIS__URL points at loopback"):
        settings_with(monkeypatch, env)


@pytest.mark.parametrize("environment", ["development", "test"])
def test_loopback_is_fine_outside_production(monkeypatch: pytest.MonkeyPatch, environment: str) -> None:
    settings = settings_with(monkeypatch, {"CITY_ENVIRONMENT": environment})
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"


def test_production_accepts_a_host_whose_name_merely_contains_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**PRODUCTION_SAFE, "CITY_KAFKA__BOOTSTRAP_SERVERS": "mylocalhostname:9092"}
    assert settings_with(monkeypatch, env).kafka.bootstrap_servers == "mylocalhostname:9092"


def test_a_misspelt_drone_status_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="nofly_statuses"):
        settings_with(monkeypatch, {"CITY_DRONE__NOFLY_STATUSES": '["airbone"]'})
