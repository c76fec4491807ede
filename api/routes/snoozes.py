"""Operators' snoozes: hide one rule's alerts of one source for a while."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from api.auth import require
from api.deps import CurrentPrincipal, KeysDep, RedisDep
from api.models import Snooze, SnoozeCreate
from api.roles import Role
from api.services.snoozes import active_snoozes, create_snooze, delete_snooze

router = APIRouter(prefix="/snoozes", tags=["alerts"], dependencies=[Depends(require(Role.operator))])


@router.post("", response_model=Snooze, status_code=201)
async def snooze(body: SnoozeCreate, redis: RedisDep, keys: KeysDep, who: CurrentPrincipal) -> Snooze:
    """Snooze a rule at a source for `minutes`."""
    return await create_snooze(redis, keys, body, who.name)


@router.get("", response_model=list[Snooze])
async def snoozes(redis: RedisDep, keys: KeysDep) -> list[Snooze]:
    """List the active snoozes, soonest to end first."""
    return await active_snoozes(redis, keys, datetime.now(UTC))


@router.delete("/{snooze_id}", status_code=204, responses={404: {"description": "no such snooze"}})
async def unsnooze(snooze_id: Annotated[str, Path(max_length=64)], redis: RedisDep, keys: KeysDep) -> Response:
    """End a snooze now."""
    await delete_snooze(redis, keys, snooze_id)
    return Response(status_code=204)
