"""Check the servers the API depends on."""

from __future__ import annotations

import asyncio

from aiokafka.client import AIOKafkaClient
from redis.asyncio import Redis

from streams.security import aiokafka_options
from streams.settings import Settings


async def kafka_ok(settings: Settings) -> bool:
    """Return whether a Kafka broker answers a metadata request in time."""
    client = AIOKafkaClient(
        bootstrap_servers=settings.kafka.bootstrap_list,
        request_timeout_ms=int(settings.api.health_timeout_s * 1000),
        **aiokafka_options(settings.kafka),
    )
    try:
        await asyncio.wait_for(client.bootstrap(), settings.api.health_timeout_s)
        return True
    except Exception:
        return False
    finally:
        await client.close()


async def redis_ok(redis: Redis, settings: Settings) -> bool:
    """Return whether Redis answers PING in time."""
    try:
        return bool(await asyncio.wait_for(redis.ping(), settings.api.health_timeout_s))
    except Exception:
        return False
