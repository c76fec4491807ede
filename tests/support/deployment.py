"""Settings of an isolated test deployment: its own topic namespace, consumer group and Redis key prefix."""

from __future__ import annotations

import uuid
from typing import Any

from streams.settings import (
    ApiSettings,
    DroneRules,
    EnergyRules,
    KafkaSettings,
    RedisSettings,
    Settings,
    TrafficRules,
    WorkerSettings,
)


def isolated_settings(
    name: str,
    bootstrap: str,
    redis_url: str,
    *,
    kafka: dict[str, Any] | None = None,
    worker: dict[str, Any] | None = None,
    api: dict[str, Any] | None = None,
    silence_s: float = 3600.0,
) -> Settings:
    """Return test settings whose topics, group and keys no other test shares (session timeouts kept short).

    Silence timeouts are an hour unless a test asks: the live silence check runs on wall time, and a test
    that checks its results a while after its stream ended must not see every drone's telemetry lost.
    """
    tag = f"{name}-{uuid.uuid4().hex[:6]}"
    kafka_options = {"topic_namespace": tag, "session_timeout_s": 6, "heartbeat_interval_s": 1} | (kafka or {})
    return Settings(
        environment="test",
        kafka=KafkaSettings(bootstrap_servers=bootstrap, **kafka_options),
        redis=RedisSettings(url=redis_url, key_prefix=tag),
        worker=WorkerSettings(**({"group_id": tag} | (worker or {}))),
        api=ApiSettings(**(api or {})),
        traffic=TrafficRules(offline_after_s=silence_s),
        drone=DroneRules(telemetry_loss_s=silence_s),
        energy=EnergyRules(offline_after_s=silence_s),
    )
