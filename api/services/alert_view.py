"""Read alerts as operators see them: the workers' JSON merged with operator state, snoozes and flapping.

One AlertReader serves one request and caches what it read. Flapping needs, for each alert shown, the
episodes of its rule and source near it: they come from that rule+source's episode index
(processors.alert_index), so judging a page costs one range read per row, not a pass over every alert.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from datetime import datetime

import orjson
from redis.asyncio import Redis

from api.models import AlertRead, Snooze
from api.options import ApiOptions
from api.services.alert_index_read import PAGE_CHUNK
from api.services.alert_reindex import index_missing
from api.services.flapping import flapping_ids, folded_into
from api.services.snoozes import settle_snoozes, snoozed_until
from streams.keys import Keys
from streams.models import AlertStatus

STATUS_RANK = {AlertStatus.open: 0, AlertStatus.acknowledged: 1, AlertStatus.resolved: 2}

Group = tuple[str, str]

# KEYS: episode indexes; ARGV[1]: episodes of a burst; then a [lo, hi] first_seen range per key.
# Returns, per key, its (id, score) pairs in range flattened, or nothing when fewer than a burst are there:
# with fewer, nothing near the alert can be flapping, so only crowded ranges cross the wire.
NEAR_EPISODES = """
local out = {}
local burst = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local found = redis.call('ZRANGEBYSCORE', key, ARGV[2 * i], ARGV[2 * i + 1], 'WITHSCORES')
  if #found < 2 * burst then found = {} end
  out[i] = found
end
return out
"""


def epoch_ms(moment: datetime) -> int:
    """Return a time as epoch milliseconds, as the alert index scores first_seen."""
    return int(moment.timestamp() * 1000)


def effective_status(processor: AlertStatus, operator: AlertStatus | None) -> AlertStatus:
    """Return the later of the processor's and the operator's status (open < acknowledged < resolved)."""
    if operator is None or STATUS_RANK[processor] >= STATUS_RANK[operator]:
        return processor
    return operator


ROW_CACHE_SIZE = 10_000  # stored rows kept parsed (and their JSON), by their bytes


_ROW_JSON: dict[int, tuple[AlertRead, bytes]] = {}  # id(stored row) -> (that row, its JSON)


@functools.lru_cache(maxsize=ROW_CACHE_SIZE)
def stored_row(raw: bytes | str, op: bytes | str | None) -> AlertRead:
    """Return the operators' view of an alert's JSON and operator state (no snooze, no flapping).

    Cached by the stored bytes themselves, so a hit is exactly what parsing again would give, and its JSON
    is kept for rows_json. The row is shared between requests: never change it in place (model_copy makes
    the changed rows).
    """
    alert = AlertRead.model_validate_json(raw)
    op_state = orjson.loads(op) if op else {}
    op_status = AlertStatus(op_state["status"]) if op_state.get("status") else None
    row = alert.model_copy(
        update={
            "status": effective_status(alert.status, op_status),
            "processor_status": alert.status,
            "assignee": op_state.get("assignee"),
        }
    )
    if len(_ROW_JSON) >= 2 * ROW_CACHE_SIZE:
        _ROW_JSON.clear()
    _ROW_JSON[id(row)] = (row, row.model_dump_json().encode())
    return row


def read_alert(raw: bytes | str, op: bytes | str | None, snoozes: list[Snooze]) -> AlertRead:
    """Return the operators' view of a stored alert's JSON, its operator state and the active snoozes."""
    row = stored_row(raw, op)
    until = snoozed_until(snoozes, row) if snoozes else None
    return row if until is None else row.model_copy(update={"snoozed_until": until})


def rows_json(rows: list[AlertRead]) -> bytes:
    """Return a JSON array of rows, reusing the cached JSON of rows that are unchanged stored rows."""
    parts = []
    for row in rows:
        cached = _ROW_JSON.get(id(row))
        parts.append(cached[1] if cached is not None and cached[0] is row else row.model_dump_json().encode())
    return b"[" + b",".join(parts) + b"]"


class AlertReader:
    """Alerts of one request, merged, with the index context flapping needs."""

    def __init__(self, client: Redis, keys: Keys, options: ApiOptions, now: datetime) -> None:
        self.client = client
        self.keys = keys
        self.now = now
        self.min_episodes = options.flapping_episodes
        self.window_ms = int(options.flapping_minutes * 60_000)
        self._alerts: dict[str, AlertRead | None] = {}
        self._groups: dict[Group, dict[str, int]] = defaultdict(dict)
        self._snoozes: list[Snooze] | None = None
        self._flapping: set[str] = set()
        self._heads: dict[str, str] = {}
        self._dirty = False
        self._judged: set[str] = set()
        self._episodes = client.register_script(NEAR_EPISODES)
        self._page = client.register_script(PAGE_CHUNK)
        self._reindexed = False

    async def prepare(self) -> None:
        """Read the active snoozes, and index alerts an older writer left out of the indexes, in one round trip."""
        if self._snoozes is not None:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zcard(self.keys.alert_index)
            pipe.hlen(self.keys.alert_facets)
            pipe.hgetall(self.keys.snoozes)
            total, indexed, raw_snoozes = await pipe.execute()
        if int(total) != int(indexed):
            await index_missing(self.client, self.keys)
        self._snoozes = await settle_snoozes(self.client, self.keys, raw_snoozes, self.now)

    async def page_chunk(
        self, index_keys: list[str], top: float, bottom: float, desc: bool, want: int, offsets: list[int]
    ) -> tuple[list[int], list[tuple[str, int, AlertRead | None]]]:
        """Return the facet indexes' offsets after the next `want` ids of their union and those ids' alerts.

        Each alert comes merged and judged for flapping (its near episodes read), in one round trip (PAGE_CHUNK).
        """
        prepare = self._snoozes is None
        reply = await self._page(
            keys=[
                self.keys.alert_index,
                self.keys.alert_facets,
                self.keys.snoozes,
                self.keys.alert_operator_states,
                *index_keys,
            ],
            args=[
                _bound(top),
                _bound(bottom),
                "1" if desc else "0",
                want,
                "1" if prepare else "0",
                self.keys.alert(""),
                self.keys.alert_episode_prefix,
                self.window_ms,
                self.min_episodes,
                *offsets,
            ],
        )
        meta, after, rows = reply
        if prepare:
            total, indexed, raw_snoozes = meta
            if total != indexed and not self._reindexed:
                self._reindexed = True
                await index_missing(self.client, self.keys)
                return await self.page_chunk(index_keys, top, bottom, desc, want, offsets)
            pairs = dict(zip(raw_snoozes[::2], raw_snoozes[1::2], strict=True))
            self._snoozes = await settle_snoozes(self.client, self.keys, pairs, self.now)
        out: list[tuple[str, int, AlertRead | None]] = []
        crowded: list[str] = []
        for member, score, raw, op, near in rows:
            alert_id = _text(member)
            alert = self._alerts.get(alert_id)
            if alert_id not in self._alerts:
                alert = read_alert(raw, op, self._snoozes or []) if raw else None
                self._alerts[alert_id] = alert
                if alert is not None:
                    self._groups[(alert.kind, alert.source_id)][alert_id] = int(score)
                    self._dirty = True
            if alert is not None and near:
                group = self._groups[(alert.kind, alert.source_id)]
                for i in range(0, len(near), 2):
                    group[_text(near[i])] = int(near[i + 1])
                    crowded.append(_text(near[i]))
                self._dirty = True
            self._judged.add(alert_id)
            out.append((alert_id, int(score), alert))
        if crowded:
            await self.load(crowded)
        return [int(o) for o in after], out

    async def snoozes(self) -> list[Snooze]:
        """Return the active snoozes, read once per request."""
        await self.prepare()
        return self._snoozes or []

    async def load(self, alert_ids: list[str]) -> list[AlertRead | None]:
        """Return these alerts merged (None for one that does not exist), reading only those not read yet."""
        missing = list(dict.fromkeys(i for i in alert_ids if i not in self._alerts))
        if missing:
            snoozes = await self.snoozes()
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.mget([self.keys.alert(i) for i in missing])
                pipe.hmget(self.keys.alert_operator_states, missing)
                raws, ops = await pipe.execute()
            for alert_id, raw, op in zip(missing, raws, ops, strict=True):
                if raw is None:
                    self._alerts[alert_id] = None
                    continue
                alert = read_alert(raw, op, snoozes)
                self._alerts[alert_id] = alert
                self._groups[(alert.kind, alert.source_id)][alert_id] = epoch_ms(alert.first_seen)
                self._dirty = True
        return [self._alerts[i] for i in alert_ids]

    async def ensure_episodes(self, alerts: list[AlertRead | None]) -> None:
        """Read the episodes flapping needs to judge these alerts: each one's rule+source episodes near it."""
        wanted = [a for a in alerts if a is not None and a.id not in self._judged]
        if not wanted:
            return
        bounds: list[int] = []
        for alert in wanted:
            first = epoch_ms(alert.first_seen)
            bounds += [first - self.window_ms, first + 2 * self.window_ms]
        replies = await self._episodes(
            keys=[self.keys.alert_episodes(a.kind, a.source_id) for a in wanted], args=[self.min_episodes, *bounds]
        )
        crowded: list[str] = []
        for alert, found in zip(wanted, replies, strict=True):
            self._judged.add(alert.id)
            group = self._groups[(alert.kind, alert.source_id)]
            for i in range(0, len(found), 2):
                group[_text(found[i])] = int(found[i + 1])
                crowded.append(_text(found[i]))
            self._dirty = self._dirty or bool(found)
        for start in range(0, len(crowded), 1000):
            await self.load(crowded[start : start + 1000])

    def _refresh(self) -> None:
        if not self._dirty:
            return
        self._flapping, self._heads = set(), {}
        for members in self._groups.values():
            episodes = [(opened, alert_id) for alert_id, opened in members.items()]
            flapping = flapping_ids(episodes, self.min_episodes, self.window_ms)
            if flapping:
                self._flapping |= flapping
                self._heads |= folded_into(episodes, flapping, self.window_ms)
        self._dirty = False

    def with_flapping(self, alert: AlertRead) -> AlertRead:
        """Return the alert marked flapping if it is the newest of a burst."""
        self._refresh()
        return alert.model_copy(update={"flapping": True}) if alert.id in self._flapping else alert

    def fold_head(self, alert: AlertRead) -> AlertRead | None:
        """Return the flapping alert this one folds into, if any."""
        self._refresh()
        head = self._heads.get(alert.id)
        return self._alerts.get(head) if head else None

    def folded_members(self, head: AlertRead) -> list[AlertRead]:
        """Return the episodes that fold into a flapping alert."""
        self._refresh()
        members = self._groups.get((head.kind, head.source_id), {})
        return [a for i in members if self._heads.get(i) == head.id and (a := self._alerts.get(i)) is not None]


def _bound(value: float) -> str:
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return str(int(value))


def _text(member: bytes | str) -> str:
    return member.decode() if isinstance(member, bytes) else member
