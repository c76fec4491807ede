"""Planners' window queries over the zone aggregates in Redis."""

from __future__ import annotations

from datetime import UTC, datetime

from geo.grid import cell_bounds, parse_cell_id
from processors.windows import WindowStore, parse_time
from streams.models import Aggregate, Corridor, Domain


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


async def query_corridors(
    store: WindowStore, start: datetime | None, end: datetime | None, top: int, max_windows: int
) -> list[Corridor]:
    """Return the `top` grid cells by airborne fixes of each window starting in [start, end), oldest window first."""
    lo, hi = parse_time(start), parse_time(end)
    refs = await store.window_refs(Domain.drone, lo if lo is not None else float("-inf"), float("inf"))
    refs = [(z, s) for z, s in refs if parse_cell_id(z) is not None and (hi is None or s < hi)]
    windows = sorted({s for _, s in refs})[-max_windows:]
    refs = [(z, s) for z, s in refs if s in set(windows)]
    cells: dict[tuple[str, int], dict[str, float]] = {}
    for agg in await store.aggregates(Domain.drone, refs):
        key = (agg.zone_id, int(agg.window_start.timestamp() * 1000))
        cells.setdefault(key, {"start": agg.window_start.timestamp(), "end": agg.window_end.timestamp()})[
            agg.metric
        ] = agg.value
    by_window: dict[int, list[Corridor]] = {}
    for (cell, start_ms), values in cells.items():
        parsed = parse_cell_id(cell)
        assert parsed is not None
        by_window.setdefault(start_ms, []).append(
            Corridor(
                cell_id=cell,
                bounds=cell_bounds(*parsed),
                window_start=datetime.fromtimestamp(values["start"], tz=UTC),
                window_end=datetime.fromtimestamp(values["end"], tz=UTC),
                fixes=int(values.get("fixes", 0)),
                drones_airborne=int(values.get("drones_airborne", 0)),
                violations=int(values.get("violations", 0)),
            )
        )
    out: list[Corridor] = []
    for start_ms in sorted(by_window):
        out += sorted(by_window[start_ms], key=lambda c: (-c.fixes, c.cell_id))[:top]
    return out
