"""List, count and read alerts: filters, folding of flapping ones, sorting and cursor pagination.

Candidates come from the facet indexes (effective status x domain x severity, processors.alert_index) the
filters select, merged by first_seen; the other filters are checked on the alerts read. Sorting by
first_seen reads a chunk at a time and stops at the page's end. Sorting by last_seen or severity must
read every candidate (up to SCAN_LIMIT), then sorts them in memory. A cursor names the last row's sort
key, so pages stay stable while alerts are added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from redis.asyncio import Redis

from api.exceptions import BadCursorError, NotFoundError
from api.models import AlertCounts, AlertRead, AlertReadPage
from api.options import ApiOptions
from api.services.alert_index_read import MergedIndexes
from api.services.alert_view import AlertReader, epoch_ms
from streams.keys import Keys
from streams.models import AlertStatus, Domain, Severity

SCAN_CHUNK = 500
SCAN_LIMIT = 200_000
ACTIVE = frozenset({AlertStatus.open, AlertStatus.acknowledged})
SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}

SortKey = tuple[int, int, str]


class SortField(StrEnum):
    """What a list is ordered by."""

    first_seen = "first_seen"
    last_seen = "last_seen"
    severity = "severity"


class SortOrder(StrEnum):
    """Ascending or descending."""

    asc = "asc"
    desc = "desc"


@dataclass(frozen=True)
class AlertFilter:
    """What an operator asked for; None means any."""

    domain: Domain | None = None
    kind: str | None = None
    severity: frozenset[Severity] | None = None
    status: frozenset[AlertStatus] | None = None
    zone_id: str | None = None
    assignee: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    include_snoozed: bool = False
    fold: bool = True
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def matches(self, alert: AlertRead) -> bool:
        """Return whether an alert passes every filter (seen within [since, until], text in source_id)."""
        return (
            (self.domain is None or alert.domain == self.domain)
            and (self.kind is None or alert.kind == self.kind)
            and (self.severity is None or alert.severity in self.severity)
            and (self.status is None or alert.status in self.status)
            and (self.zone_id is None or alert.zone_id == self.zone_id)
            and (self.assignee is None or alert.assignee == self.assignee)
            and (self.since is None or alert.last_seen >= self.since)
            and (self.until is None or alert.first_seen <= self.until)
            and (self.text is None or self.text.lower() in alert.source_id.lower())
            and (self.include_snoozed or alert.snoozed_until is None)
        )


def sort_key(alert: AlertRead, by: SortField) -> SortKey:
    """Return the key an alert is ordered by: the field, then first_seen, then id."""
    first = epoch_ms(alert.first_seen)
    primary = {
        SortField.first_seen: first,
        SortField.last_seen: epoch_ms(alert.last_seen),
        SortField.severity: SEVERITY_RANK[alert.severity],
    }[by]
    return primary, first, alert.id


def _cursor(key: SortKey) -> str:
    return f"{key[0]}:{key[1]}:{key[2]}"


def _parse_cursor(cursor: str) -> SortKey:
    parts = cursor.split(":", 2)
    if len(parts) != 3 or not all(p.lstrip("-").isdigit() for p in parts[:2]) or not parts[2]:
        raise BadCursorError(f"cursor {cursor!r} is not one this API issued; start again without a cursor")
    return int(parts[0]), int(parts[1]), parts[2]


def _after(key: SortKey, cursor: SortKey | None, desc: bool) -> bool:
    return cursor is None or (key < cursor if desc else key > cursor)


async def _visible(reader: AlertReader, flt: AlertFilter, alert: AlertRead | None) -> AlertRead | None:
    """Return the row to show for an alert, or None if the filters or a flapping fold hide it."""
    if alert is None or not flt.matches(alert):
        return None
    await reader.ensure_episodes([alert])
    alert = reader.with_flapping(alert)
    if not flt.fold:
        return alert
    head = reader.fold_head(alert)
    if head is not None and flt.matches(head):
        return None
    if alert.flapping:
        folded = sum(1 for member in reader.folded_members(alert) if flt.matches(member))
        alert = alert.model_copy(update={"folded": folded})
    return alert


async def _rows(reader: AlertReader, flt: AlertFilter, alert_ids: list[str]) -> list[AlertRead | None]:
    """Return the row to show for each id (None where hidden), reading the docs and episodes in batches."""
    alerts = await reader.load(alert_ids)
    await reader.ensure_episodes([a for a in alerts if a is not None and flt.matches(a)])
    return [await _visible(reader, flt, alert) for alert in alerts]


def facet_indexes(keys: Keys, flt: AlertFilter) -> list[str]:
    """Return the facet indexes holding every alert the filter may match (processors.alert_index)."""
    return [
        keys.alert_facet_index(status.value, domain.value, severity.value)
        for status in (sorted(flt.status, key=list(AlertStatus).index) if flt.status else list(AlertStatus))
        for domain in ([flt.domain] if flt.domain else list(Domain))
        for severity in (sorted(flt.severity, key=list(Severity).index) if flt.severity else list(Severity))
    ]


async def _scan_by_first_seen(
    reader: AlertReader, flt: AlertFilter, desc: bool, limit: int, cursor: SortKey | None
) -> AlertReadPage:
    top = float(epoch_ms(flt.until)) if flt.until else float("inf")
    if cursor is not None:
        top = min(top, cursor[0]) if desc else top
    bottom = float(cursor[0]) if cursor is not None and not desc else float("-inf")
    index_keys = facet_indexes(reader.keys, flt)
    offsets = [0] * len(index_keys)
    items: list[AlertRead] = []
    scanned = 0
    last: SortKey | None = None
    while scanned < SCAN_LIMIT:
        want = min(SCAN_CHUNK, max(limit - len(items), 16))
        offsets, chunk = await reader.page_chunk(index_keys, top, bottom, desc, want, offsets)
        scanned += len(chunk)
        for alert_id, score, alert in chunk:
            if not _after((score, score, alert_id), cursor, desc):
                continue
            last = (score, score, alert_id)
            row = await _visible(reader, flt, alert)
            if row is not None:
                items.append(row)
                if len(items) == limit:
                    return AlertReadPage(items=items, next_cursor=_cursor(last))
        if len(chunk) < want:  # the indexes hold nothing more in range
            return AlertReadPage(items=items)
    return AlertReadPage(items=items, next_cursor=_cursor(last) if last else None)


async def _every_match(reader: AlertReader, flt: AlertFilter) -> list[AlertRead]:
    top = float(epoch_ms(flt.until)) if flt.until else float("inf")
    await reader.prepare()
    candidates = MergedIndexes(reader.client, facet_indexes(reader.keys, flt), float("-inf"), top, desc=True)
    rows: list[AlertRead | None] = []
    scanned = 0
    while scanned < SCAN_LIMIT:
        entries = await candidates.take(min(SCAN_CHUNK * 2, SCAN_LIMIT - scanned))
        if not entries:
            break
        scanned += len(entries)
        rows += await _rows(reader, flt, [i for i, _ in entries])
    return [row for row in rows if row is not None]


def new_reader(client: Redis, keys: Keys, options: ApiOptions, flt: AlertFilter) -> AlertReader:
    """Return a reader for one request."""
    return AlertReader(client, keys, options, flt.now)


async def list_alerts(
    client: Redis,
    keys: Keys,
    options: ApiOptions,
    flt: AlertFilter,
    limit: int,
    cursor: str | None,
    sort: SortField = SortField.first_seen,
    order: SortOrder = SortOrder.desc,
    reader: AlertReader | None = None,
) -> AlertReadPage:
    """Return up to `limit` matching rows in the asked order and the cursor of the next page."""
    after = _parse_cursor(cursor) if cursor else None
    reader = reader or new_reader(client, keys, options, flt)
    desc = order == SortOrder.desc
    if sort == SortField.first_seen:
        return await _scan_by_first_seen(reader, flt, desc, limit, after)
    rows = sorted(await _every_match(reader, flt), key=lambda a: sort_key(a, sort), reverse=desc)
    rows = [a for a in rows if _after(sort_key(a, sort), after, desc)]
    page = rows[:limit]
    more = len(rows) > limit
    return AlertReadPage(items=page, next_cursor=_cursor(sort_key(page[-1], sort)) if more else None)


async def count_alerts(client: Redis, keys: Keys, options: ApiOptions, flt: AlertFilter) -> AlertCounts:
    """Return how many rows the list would show, per severity."""
    rows = await _every_match(new_reader(client, keys, options, flt), flt)
    by_severity = dict.fromkeys(Severity, 0)
    for row in rows:
        by_severity[row.severity] += 1
    return AlertCounts(total=len(rows), by_severity=by_severity)


async def get_alert(client: Redis, keys: Keys, options: ApiOptions, alert_id: str) -> AlertRead:
    """Return one alert as operators see it, or raise NotFoundError."""
    reader = AlertReader(client, keys, options, datetime.now(UTC))
    (alert,) = await reader.load([alert_id])
    if alert is None:
        raise NotFoundError(f"no alert with id {alert_id!r}")
    await reader.ensure_episodes([alert])
    return reader.with_flapping(alert)
