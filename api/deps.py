"""Annotated dependency aliases the routes declare.

They are `async def` although they only read app state: FastAPI runs a plain `def` dependency in its thread
pool, a hop that cost more than the rest of a cheap request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from api.auth import Principal
from api.options import ApiOptions
from api.services.ingest import Ingestor
from geo.zones import ZoneIndex
from processors.windows import WindowStore
from streams.keys import Keys
from streams.settings import Settings


async def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def _redis(request: Request) -> Redis:
    return request.app.state.redis  # type: ignore[no-any-return]


async def _keys(request: Request) -> Keys:
    return request.app.state.keys  # type: ignore[no-any-return]


async def _zones(request: Request) -> ZoneIndex:
    return request.app.state.zones  # type: ignore[no-any-return]


async def _windows(request: Request) -> WindowStore:
    return request.app.state.windows  # type: ignore[no-any-return]


async def _window_stores(request: Request) -> dict[int, WindowStore]:
    return request.app.state.window_stores  # type: ignore[no-any-return]


async def _ingestor(request: Request) -> Ingestor:
    return request.app.state.ingestor  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(_settings)]
RedisDep = Annotated[Redis, Depends(_redis)]
KeysDep = Annotated[Keys, Depends(_keys)]
ZonesDep = Annotated[ZoneIndex, Depends(_zones)]
WindowsDep = Annotated[WindowStore, Depends(_windows)]
WindowStoresDep = Annotated[dict[int, WindowStore], Depends(_window_stores)]
IngestorDep = Annotated[Ingestor, Depends(_ingestor)]


async def _options(request: Request) -> ApiOptions:
    return request.app.state.options  # type: ignore[no-any-return]


async def _stream_redis(request: Request) -> Redis:
    return request.app.state.stream_redis  # type: ignore[no-any-return]


async def _principal(request: Request) -> Principal:
    return request.state.principal  # type: ignore[no-any-return]


OptionsDep = Annotated[ApiOptions, Depends(_options)]
StreamRedisDep = Annotated[Redis, Depends(_stream_redis)]
CurrentPrincipal = Annotated[Principal, Depends(_principal)]
