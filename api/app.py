"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis

from api.errors import install_error_handlers
from api.limits import BodySizeLimit
from api.routes import aggregates, alerts, health, ingest, stats, zones
from api.services.ingest import Ingestor
from geo.zones import ZoneIndex
from processors.windows import WindowStore
from streams.keys import Keys
from streams.settings import Settings
from streams.topics import Topics


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for the given settings (default: from CITY_* variables)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = Redis.from_url(
            settings.redis.url.get_secret_value(),
            socket_timeout=settings.redis.socket_timeout_s,
            socket_connect_timeout=settings.api.health_timeout_s,
        )
        keys = Keys(settings.redis.key_prefix)
        app.state.settings = settings
        app.state.redis = redis
        app.state.keys = keys
        app.state.zones = ZoneIndex.from_file(settings.zones_file)
        app.state.windows = WindowStore(
            redis, keys, settings.worker.window_seconds, Topics(settings.kafka.topic_namespace)
        )
        app.state.ingestor = Ingestor(settings)
        try:
            yield
        finally:
            app.state.ingestor.close()
            await redis.aclose()

    app = FastAPI(
        title="citystream",
        description="Alerts and aggregates of the Binhaiwan Bay Area's traffic, drone and energy sensors.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes)
    for module in (health, stats, alerts, aggregates, zones, ingest):
        app.include_router(module.router)
    return app
