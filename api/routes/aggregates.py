"""Planners' window aggregates per zone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import WindowsDep
from api.exceptions import UnknownMetricError
from api.services.aggregates import query_aggregates
from processors.metrics import METRIC_NAMES
from streams.models import AggregatePage, Domain

router = APIRouter(prefix="/aggregates", tags=["aggregates"])


@router.get("", response_model=AggregatePage)
async def aggregates(
    windows: WindowsDep,
    domain: Domain | None = None,
    metric: str | None = None,
    zone: str | None = None,
    start: Annotated[
        datetime | None, Query(alias="from", description="windows starting at or after (ISO 8601)")
    ] = None,
    end: Annotated[datetime | None, Query(alias="to", description="windows starting before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=50_000)] = 5000,
) -> AggregatePage:
    """Return per-zone window metrics, oldest window first."""
    domains = [domain] if domain else list(Domain)
    known = sorted({name for d in domains for name in METRIC_NAMES[d]})
    if metric is not None and metric not in known:
        raise UnknownMetricError(
            f"no metric {metric!r} for {domain or 'any domain'}; known metrics: {', '.join(known)}"
        )
    return AggregatePage(items=await query_aggregates(windows, domains, metric, zone, start, end, limit))
