"""POST /ingest/{domain}: gateways publish over HTTP; answered after Kafka acknowledged."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from api.deps import IngestorDep
from api.services.ingest import IngestReport
from streams.models import Domain

router = APIRouter(prefix="/ingest", tags=["ingest"])


@router.post(
    "/{domain}",
    response_model=IngestReport,
    responses={
        413: {"description": "too many items in one request"},
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
