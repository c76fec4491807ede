"""Planners' window queries over the zone aggregates in Redis."""

from __future__ import annotations

from datetime import datetime

from processors.windows import WindowStore, parse_time
from streams.models import Aggregate, Domain


async def query_aggregates(
    store: WindowStore,
    domains: list[Domain],
    metric: str | None,
    zone_id: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[Aggregate]:
    """Return the metrics of windows starting in [start, end), oldest first, up to `limit` items."""
    lo = parse_time(start)
    hi = parse_time(end)
    out: list[Aggregate] = []
    for domain in domains:
        refs = await store.window_refs(domain, lo if lo is not None else float("-inf"), float("inf"))
        refs = [(z, s) for z, s in refs if (hi is None or s < hi) and (zone_id is None or z == zone_id)]
        for agg in await store.aggregates(domain, refs):
            if metric is None or agg.metric == metric:
                out.append(agg)
    out.sort(key=lambda a: (a.window_start, a.domain, a.zone_id, a.metric))
    return out[:limit]
