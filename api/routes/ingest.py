"""POST /ingest/{domain}: gateways publish over HTTP; answered after Kafka acknowledged."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from api.auth import require
from api.deps import IngestorDep
from api.ratelimit import ingest_rate_limit
from api.roles import Role
from api.services.ingest import IngestReport
from streams.models import Domain

router = APIRouter(
    prefix="/ingest", tags=["ingest"], dependencies=[Depends(require(Role.gateway)), Depends(ingest_rate_limit)]
)


@router.post(
    "/{domain}",
    response_model=IngestReport,
    responses={
        413: {"description": "too many items in one request"},
        429: {"description": "the key is over its ingest rate; retry after Retry-After seconds"},
        422: {"description": "every item was rejected; `rejected` lists each index and reason"},
        503: {"description": "Kafka did not acknowledge; retry"},
    },
)
async def ingest(
    domain: Domain,
    ingestor: IngestorDep,
    items: list[Any] = Body(..., description="a JSON array of events of this domain"),  # noqa: B008
) -> IngestReport:
    """Validate each item, publish the valid ones; rejected items are named with index and reason."""
    return await ingestor.ingest(domain, items)
