"""One table from exceptions to HTTP answers, so no known error becomes a 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from api.exceptions import (
    AllItemsRejectedError,
    BadCursorError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    KafkaUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    UnauthorizedError,
    UnknownMetricError,
    UnknownWindowError,
)
from geo.exceptions import GeoError, InvalidZoneError
from streams.exceptions import CitystreamError, PublishError

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[Exception], int] = {
    BadCursorError: 400,
    BadRequestError: 400,
    UnauthorizedError: 401,
    ForbiddenError: 403,
    ConflictError: 409,
    RateLimitedError: 429,
    UnknownMetricError: 422,
    UnknownWindowError: 422,
    InvalidZoneError: 422,  # a fence collection that does not validate (before GeoError: it is one)
    GeoError: 400,
    NotFoundError: 404,
    PayloadTooLargeError: 413,
    AllItemsRejectedError: 422,
    KafkaUnavailableError: 503,
    PublishError: 503,
}

REDIS_DOWN = "Redis is unavailable: results cannot be read or written; check that redis-server runs at CITY_REDIS__URL"


def install_error_handlers(app: FastAPI) -> None:
    """Register handlers mapping citystream and Redis errors to clear 4xx/503 answers."""

    @app.exception_handler(CitystreamError)
    async def citystream_error(request: Request, exc: CitystreamError) -> JSONResponse:
        status = next((code for cls, code in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 500)
        if status >= 500:
            log.warning('request failed path="%s" status=%d error="%s"', request.url.path, status, exc)
        body: dict[str, object] = {"detail": str(exc)}
        if isinstance(exc, AllItemsRejectedError):
            body = {"detail": "every item was rejected", "accepted": 0, "rejected": exc.rejected}
        return JSONResponse(status_code=status, content=body, headers=getattr(exc, "headers", None))

    @app.exception_handler(RedisError)
    async def redis_error(request: Request, exc: RedisError) -> JSONResponse:
        log.warning('redis unavailable path="%s" error="%s"', request.url.path, exc)
        return JSONResponse(status_code=503, content={"detail": REDIS_DOWN, "unavailable": ["redis"]})
