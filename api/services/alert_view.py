"""Read alerts as operators see them: the workers' JSON merged with operator state, snoozes and flapping.

One AlertReader serves one request and caches what it read, so folding a page costs one pass over
the index entries near it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from typing import cast

import orjson
from redis.asyncio import Redis

from api.models import AlertRead, Snooze
from api.options import ApiOptions
from api.services.flapping import flapping_ids, folded_into
from api.services.snoozes import active_snoozes, snoozed_until
from streams.keys import Keys
from streams.models import Alert, AlertStatus

STATUS_RANK = {AlertStatus.open: 0, AlertStatus.acknowledged: 1, AlertStatus.resolved: 2}
CONTEXT_LIMIT = 200_000  # index entries one request reads at most to judge flapping

Group = tuple[str, str]


def epoch_ms(moment: datetime) -> int:
    """Return a time as epoch milliseconds, as the alert index scores first_seen."""
    return int(moment.timestamp() * 1000)


def effective_status(processor: AlertStatus, operator: AlertStatus | None) -> AlertStatus:
    """Return the later of the processor's and the operator's status (open < acknowledged < resolved)."""
    if operator is None or STATUS_RANK[processor] >= STATUS_RANK[operator]:
        return processor
    return operator


def merge(alert: Alert, op_state: dict[str, str] | None, snoozes: list[Snooze]) -> AlertRead:
    """Return the operators' view of a stored alert."""
    op_state = op_state or {}
    op_status = AlertStatus(op_state["status"]) if op_state.get("status") else None
    return AlertRead(
        **alert.model_dump(exclude={"status"}),
        status=effective_status(alert.status, op_status),
        processor_status=alert.status,
        assignee=op_state.get("assignee"),
        snoozed_until=snoozed_until(snoozes, alert),
    )


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
        self._covered: tuple[float, float] | None = None
        self._snoozes: list[Snooze] | None = None
        self._flapping: set[str] = set()
        self._heads: dict[str, str] = {}
        self._dirty = False
        self._context_read = 0

    async def snoozes(self) -> list[Snooze]:
        """Return the active snoozes, read once per request."""
        if self._snoozes is None:
            self._snoozes = await active_snoozes(self.client, self.keys, self.now)
        return self._snoozes

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
                alert = merge(Alert.model_validate_json(raw), orjson.loads(op) if op else None, snoozes)
                self._alerts[alert_id] = alert
                self._groups[(alert.kind, alert.source_id)][alert_id] = epoch_ms(alert.first_seen)
                self._dirty = True
        return [self._alerts[i] for i in alert_ids]

    async def ensure_context(self, lo_ms: float, hi_ms: float) -> None:
        """Read the index entries flapping needs for alerts first seen in [lo_ms, hi_ms]."""
        lo, hi = lo_ms - self.window_ms, hi_ms + 2 * self.window_ms
        ranges: list[tuple[str, str]] = []
        if self._covered is None:
            ranges.append((_score(lo), _score(hi)))
            self._covered = (lo, hi)
        else:
            covered_lo, covered_hi = self._covered
            if lo < covered_lo:
                ranges.append((_score(lo), f"({_score(covered_lo)}"))
            if hi > covered_hi:
                ranges.append((f"({_score(covered_hi)}", _score(hi)))
            self._covered = (min(lo, covered_lo), max(hi, covered_hi))
        for low, high in ranges:
            budget = CONTEXT_LIMIT - self._context_read
            if budget <= 0:
                return
            found = await self.client.zrangebyscore(self.keys.alert_index, low, high, start=0, num=budget)
            members = cast(list[bytes | str], found)
            self._context_read += len(members)
            for start in range(0, len(members), 1000):
                await self.load([_text(m) for m in members[start : start + 1000]])

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


def _score(value: float) -> str:
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return str(int(value))


def _text(member: bytes | str) -> str:
    return member.decode() if isinstance(member, bytes) else member
