"""Planners' window queries over the zone aggregates in Redis: per window, per zone over a range, top zones.

A query naming its zones (one `zone`, or the districts of an area) reads those zones' windows by key: the
window starts of a range are multiples of the window size, so no index is scanned. Otherwise the domain's
window index is read over the range.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from api.exceptions import BadRequestError
from api.models import ZoneAggregate
from geo.grid import cell_bounds, parse_cell_id
from processors.alerts import ms_to_dt
from processors.metrics import METRICS, WindowSums, combine_windows, window_aggregates
from processors.windows import WindowStore, parse_time
from streams.models import Aggregate, Corridor, Domain

DIRECT_MAX = 50_000  # windows a zone list may name by key in one query; larger ranges read the index
GROUP_MAX = 200_000  # windows one group_by/top query may combine
FRAGMENT_QUERY_MAX = 2000  # windows a query may name to be served from cached window JSON in one read
FRAGMENT_CACHE_SIZE = 20_000  # windows' JSON kept, by their sums (a closed window's never change)


@dataclass(frozen=True)
class AggregateQuery:
    """Which windows a planner asked for; None means any."""

    domains: tuple[Domain, ...]
    metric: str | None = None
    zones: frozenset[str] | None = None
    start_ms: float | None = None
    end_ms: float | None = None


async def direct_refs(store: WindowStore, query: AggregateQuery, domain: Domain) -> list[tuple[str, int]] | None:
    """Return the windows a query naming its zones may hold, by key, oldest first (None: read the index instead)."""
    span = await direct_span(store, query, domain)
    if span is None:
        return None
    first, count = span
    step = store.window_s * 1000
    zones = sorted(query.zones or ())
    return [(z, first + i * step) for i in range(count) for z in zones]


async def direct_span(store: WindowStore, query: AggregateQuery, domain: Domain) -> tuple[int, int] | None:
    """Return the first window start and how many windows each named zone may hold (None: read the index)."""
    if query.zones is None:
        return None
    if not query.zones:
        return 0, 0
    lo = -math.inf if query.start_ms is None else query.start_ms
    hi = math.inf if query.end_ms is None else query.end_ms
    step = store.window_s * 1000
    if math.isinf(lo) or math.isinf(hi):
        span = await store.span(domain)
        if span is None:
            return 0, 0
        lo, hi = max(lo, span[0]), min(hi, span[1] + 1)
    first = math.ceil(lo / step) * step
    count = max(0, math.ceil((hi - first) / step))
    if count * len(query.zones) > DIRECT_MAX:
        return None
    return int(first), count


async def read_windows(store: WindowStore, query: AggregateQuery, domain: Domain, most: int) -> list[WindowSums]:
    """Return up to `most` windows of one domain starting in [start_ms, end_ms), oldest first."""
    lo = -math.inf if query.start_ms is None else query.start_ms
    hi = math.inf if query.end_ms is None else query.end_ms
    if query.zones is not None:
        refs = await direct_refs(store, query, domain)
        if refs is not None:
            windows: list[WindowSums] = []
            for chunk in range(0, len(refs), 2000):  # stop reading once `most` windows are found
                windows += await store.window_sums(domain, refs[chunk : chunk + 2000])
                if len(windows) >= most:
                    break
            return windows[:most]
    refs = await store.window_refs(domain, lo, hi, limit=None if query.zones is not None else most + 1)
    refs = [(z, s) for z, s in refs if s < hi and (query.zones is None or z in query.zones)]
    return await store.window_sums(domain, refs[:most])


async def query_aggregates(store: WindowStore, query: AggregateQuery, limit: int) -> list[Aggregate]:
    """Return the metrics of windows starting in [start, end), oldest first, up to `limit` items."""
    out: list[Aggregate] = []
    for domain in query.domains:
        # Each window has at least one metric, so `limit` windows per domain hold the first `limit` items.
        for window in await read_windows(store, query, domain, limit):
            out += [a for a in window_aggregates(window) if query.metric is None or a.metric == query.metric]
    out.sort(key=lambda a: (a.window_start, a.domain, a.zone_id, a.metric))
    return out[:limit]


def window_rows(window: WindowSums, metric: str | None = None) -> list[dict[str, Any]]:
    """Return one window's metrics as the JSON items of an AggregatePage (Aggregate's fields, in its order)."""
    start, end = ms_to_dt(window.start_ms), ms_to_dt(window.end_ms)
    samples = window.sums.get("n", 0)
    domain, zone_id = window.domain.value, window.zone_id
    return [
        {
            "domain": domain,
            "metric": name,
            "zone_id": zone_id,
            "window_start": start,
            "window_end": end,
            "value": float(value),
            "unit": unit,
            "samples": samples,
        }
        for name, (value, unit) in METRICS[window.domain](window.sums, window.distinct, window.window_s).items()
        if metric is None or name == metric
    ]


@functools.lru_cache(maxsize=FRAGMENT_CACHE_SIZE)
def window_fragment(
    domain: Domain,
    window_s: int,
    zone_id: str,
    start_ms: int,
    raw: tuple[bytes, ...],
    distinct: int,
    metric: str | None,
) -> tuple[int, bytes]:
    """Return how many items one window gives and their JSON (comma-separated, by metric), cached by its sums."""
    sums = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in zip(raw[::2], raw[1::2], strict=True)}
    rows = sorted(window_rows(WindowSums(domain, window_s, zone_id, start_ms, sums, distinct), metric), key=_metric)
    return len(rows), orjson.dumps(rows, option=orjson.OPT_UTC_Z)[1:-1]


def _metric(row: dict[str, Any]) -> str:
    return str(row["metric"])


async def _fragments_json(store: WindowStore, query: AggregateQuery, limit: int) -> bytes | None:
    """Return the page from cached window fragments, when the query names few enough windows by key (else None)."""
    series: list[tuple[Domain, str, int, int]] = []
    windows = 0
    for domain in query.domains:
        span = await direct_span(store, query, domain)
        if span is None:
            return None
        windows += span[1] * len(query.zones or ())
        if windows > FRAGMENT_QUERY_MAX:
            return None
        series += [(domain, zone_id, span[0], span[1]) for zone_id in sorted(query.zones or ()) if span[1]]
    pieces = sorted(
        (
            (start_ms, domain.value, zone_id),
            *window_fragment(domain, store.window_s, zone_id, start_ms, tuple(raw), distinct, query.metric),
        )
        for domain, zone_id, start_ms, raw, distinct in await store.series_replies(series)
    )
    if sum(count for _, count, _ in pieces) > limit:
        return None
    return b'{"items":[' + b",".join(fragment for _, count, fragment in pieces if count) + b"]}"


async def aggregate_page_json(store: WindowStore, query: AggregateQuery, limit: int) -> bytes:
    """Return the AggregatePage of query_aggregates as JSON bytes, built without a model per item."""
    cached = await _fragments_json(store, query, limit)
    if cached is not None:
        return cached
    rows: list[dict[str, Any]] = []
    for domain in query.domains:
        for window in await read_windows(store, query, domain, limit):
            rows += window_rows(window, query.metric)
    rows.sort(key=lambda r: (r["window_start"], r["domain"], r["zone_id"], r["metric"]))
    return orjson.dumps({"items": rows[:limit]}, option=orjson.OPT_UTC_Z)


async def query_by_zone(store: WindowStore, query: AggregateQuery, top: int | None = None) -> list[ZoneAggregate]:
    """Return each zone's metrics combined over the range (see combine_windows), or the `top` zones by the metric."""
    rows: list[ZoneAggregate] = []
    for domain in query.domains:
        windows = await read_windows(store, query, domain, GROUP_MAX + 1)
        if len(windows) > GROUP_MAX:
            raise BadRequestError(
                f"the query combines more than {GROUP_MAX} {domain.value} windows: narrow from/to, zone or the area"
            )
        by_zone: dict[str, list[WindowSums]] = defaultdict(list)
        for window in windows:
            by_zone[window.zone_id].append(window)
        for zone_id, group in by_zone.items():
            sums, distinct = combine_windows(group)
            start = ms_to_dt(min(w.start_ms for w in group))
            end = ms_to_dt(max(w.end_ms for w in group))
            span_s = sum(w.window_s for w in group)  # flow over the windows combined
            for metric, (value, unit) in METRICS[domain](sums, distinct, span_s).items():
                if query.metric is None or metric == query.metric:
                    rows.append(
                        ZoneAggregate(
                            domain=domain,
                            metric=metric,
                            zone_id=zone_id,
                            window_start=start,
                            window_end=end,
                            windows=len(group),
                            value=value,
                            unit=unit,
                            samples=sums.get("n", 0),
                        )
                    )
    if top is not None:
        rows.sort(key=lambda r: (-r.value, r.zone_id, r.domain))
        return rows[:top]
    rows.sort(key=lambda r: (r.zone_id, r.domain, r.metric))
    return rows


async def latest_closed(store: WindowStore, domain: Domain, zone_id: str, grace_s: float) -> list[Aggregate]:
    """Return every metric of the zone's newest window the event-time watermark has closed, [] if none."""
    cutoff = await store.watermark_ms(domain) - grace_s * 1000 - store.window_s * 1000
    span = await store.span(domain)
    if span is None:
        return []
    newest = min(cutoff, span[1])
    if newest < span[0]:
        return []
    step = store.window_s * 1000
    top = newest // step * step
    # Read back a day of windows at most, newest first, a batch at a time.
    for batch in range(0, 1440, 60):
        refs = [(zone_id, int(top - (batch + i) * step)) for i in range(60) if top - (batch + i) * step >= span[0]]
        if not refs:
            return []
        found = await store.window_sums(domain, refs)
        if found:
            return window_aggregates(max(found, key=lambda w: w.start_ms))
    return []


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
