"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis
from redis.exceptions import RedisError

from api.auth import KeyCache
from api.errors import install_error_handlers
from api.limits import BodySizeLimit
from api.metrics import LatencyHistogram, RequestTimer
from api.openapi import install_openapi
from api.options import api_options
from api.response_cache import CacheCounts, ResponseCache
from api.routes import aggregates, alerts, dashboard, drones, health, ingest, metrics, snoozes, stats, zones
from api.services.alert_pages import PageCache
from api.services.alert_reindex import ensure_indexed
from api.services.ingest import Ingestor
from api.services.metrics import AlertCountCache
from geo.zones import ZoneIndex
from processors.windows import WindowStore
from streams.changefeed import ChangeFeed
from streams.keys import Keys
from streams.redisio import redis_client
from streams.settings import Settings
from streams.topics import Topics

log = logging.getLogger(__name__)
REDIS_POOL_SIZE = 64  # connections one API process holds to Redis at most
FEED_START_WAIT_S = 1.0  # how long start-up waits for Redis's change notices (answers are read from Redis until)


def cached_routes(keys: Keys) -> dict[str, tuple[str, ...]]:
    """Return the GET routes whose answers are kept, with the Redis key prefixes every write they show touches.

    Alert writers raise the alerts version and write the alert index and facet indexes, all under
    `alert_index` ("<prefix>:alerts..."); window writers raise their domain's windows version.
    """
    return {"/alerts": (keys.alert_index,), "/aggregates": (keys.windows_version_prefix,)}


async def _index_alerts(redis: Redis, keys: Keys) -> None:
    """Index alerts older versions wrote; with Redis down, the first request that can reach it does."""
    try:
        await ensure_indexed(redis, keys)
    except RedisError as exc:
        log.warning('alert indexes not checked at start error="%s"; the first alert request will', exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for the given settings (default: from CITY_* variables)."""
    settings = settings or Settings()
    options = api_options(settings)
    latency = LatencyHistogram()
    routes = cached_routes(Keys(settings.redis.key_prefix))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.redis.url.get_secret_value()
        # A blocking pool: under a burst, requests wait (up to the socket timeout) for one of its connections
        # instead of failing with "Too many connections" (which answered 503 under load).
        redis = redis_client(
            url,
            blocking_max=REDIS_POOL_SIZE,
            timeout=settings.redis.socket_timeout_s,
            socket_timeout=settings.redis.socket_timeout_s,
            socket_connect_timeout=settings.api.health_timeout_s,
        )
        # Live clients block in XREAD for a heartbeat at a time: their own pool, with a timeout past that.
        stream_redis = redis_client(
            url,
            socket_timeout=options.sse_heartbeat_s + settings.redis.socket_timeout_s,
            socket_connect_timeout=settings.api.health_timeout_s,
        )
        keys = Keys(settings.redis.key_prefix)
        app.state.settings = settings
        app.state.options = options
        app.state.redis = redis
        app.state.stream_redis = stream_redis
        app.state.keys = keys
        app.state.latency = latency
        app.state.alert_counts = AlertCountCache()
        app.state.key_cache = KeyCache(options.key_cache_s)
        app.state.alert_pages = PageCache()
        app.state.zones = ZoneIndex.from_file(settings.zones_file)
        app.state.window_stores = {
            size: WindowStore(redis, keys, size, Topics(settings.kafka.topic_namespace))
            for size in sorted(
                {s for d in ("traffic", "drone", "energy") for s in settings.worker.zone_sizes(d)}
                | {s for d in ("traffic", "drone", "energy") for s in settings.worker.source_sizes(d)}
            )
        }
        app.state.windows = WindowStore(
            redis, keys, settings.worker.window_seconds, Topics(settings.kafka.topic_namespace)
        )
        app.state.ingestor = Ingestor(settings)
        app.state.change_feed = None
        if options.response_cache_s > 0:
            app.state.change_feed = ChangeFeed(url, [p for group in routes.values() for p in group])
            app.state.change_feed.start()
            await app.state.change_feed.wait_live(FEED_START_WAIT_S)
        await _index_alerts(redis, keys)
        try:
            yield
        finally:
            if app.state.change_feed is not None:
                await app.state.change_feed.close()
            app.state.ingestor.close()
            await stream_redis.aclose()
            await redis.aclose()

    app = FastAPI(
        title="citystream",
        description="Alerts and aggregates of the Binhaiwan Bay Area's traffic, drone and energy sensors.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_openapi(app)
    app.state.response_cache = CacheCounts()
    app.add_middleware(
        ResponseCache, routes=routes, max_age_s=options.response_cache_s, counts=app.state.response_cache
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(RequestTimer, histogram=latency)
    for module in (health, metrics, stats, alerts, snoozes, aggregates, zones, drones, ingest, dashboard):
        app.include_router(module.router)
    app.mount("/static", dashboard.static_files(), name="static")
    return app
