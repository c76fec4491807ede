"""Operators' actions on an alert: acknowledge, resolve, assign, note, and the history of them all.

Operator state lives in its own hash (never in the workers' alert JSON, which they overwrite), and
each action is one Lua script: check the effective status, change the state, append to the history
and XADD to the alert change stream, atomically. Repeating an action changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from redis.asyncio import Redis

from api.exceptions import ConflictError, NotFoundError
from api.models import Action, HistoryEntry
from processors.sink import ALERT_EVENTS_MAX
from streams.keys import Keys
from streams.models import Alert, AlertStatus

# KEYS: alert JSON, operator states hash, history list, change stream, facets hash, alert index, alerts version.
# ARGV: alert id, action, value, who, at (ISO 8601), stream max length, facet index prefix.
# A change of the effective status moves the alert to its new facet index (processors.alert_index).
# Returns {outcome, effective status before}: outcome is applied, same (nothing to do), conflict or missing.
OPERATOR_ACTION = """
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing', ''} end
local rank = {open = 0, acknowledged = 1, resolved = 2}
local doc = cjson.decode(raw)
local processor = doc['status']
if type(processor) ~= 'string' then processor = 'open' end
local held = redis.call('HGET', KEYS[2], ARGV[1])
local state = {}
if held then state = cjson.decode(held) end
local current = processor
if state['status'] and rank[state['status']] > rank[current] then current = state['status'] end
local action, value = ARGV[2], ARGV[3]
local after = current
if action == 'ack' then
  if current == 'acknowledged' then return {'same', current} end
  if current ~= 'open' then return {'conflict', current} end
  state['status'] = 'acknowledged'
  after = 'acknowledged'
elseif action == 'resolve' then
  if current == 'resolved' then return {'same', current} end
  state['status'] = 'resolved'
  after = 'resolved'
elseif action == 'assign' then
  if current == 'resolved' then return {'conflict', current} end
  if state['assignee'] == value then return {'same', current} end
  state['assignee'] = value
end
if action ~= 'note' then redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(state)) end
if after ~= current then
  local facet = after .. ':' .. doc['domain'] .. ':' .. doc['severity']
  local old = redis.call('HGET', KEYS[5], ARGV[1])
  local score = redis.call('ZSCORE', KEYS[6], ARGV[1])
  local old_facet = old and string.match(old, '^[^|]*')
  if old_facet ~= facet and score then
    if old_facet then redis.call('ZREM', ARGV[7] .. old_facet, ARGV[1]) end
    redis.call('HSET', KEYS[5], ARGV[1], facet .. '|' .. doc['kind'] .. '|' .. doc['source_id'])
    redis.call('ZADD', ARGV[7] .. facet, score, ARGV[1])
  end
end
local entry = {action = action, by = ARGV[4], at = ARGV[5], status = after}
if value ~= '' then entry['value'] = value end
redis.call('RPUSH', KEYS[3], cjson.encode(entry))
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'id', ARGV[1], 'by', 'operator')
redis.call('INCR', KEYS[7])
return {'applied', current}
"""

VERB = {Action.ack: "acknowledged", Action.resolve: "resolved", Action.assign: "assigned", Action.note: "noted"}


async def act(client: Redis, keys: Keys, alert_id: str, action: Action, by: str, value: str = "") -> bool:
    """Apply an operator action; return False if it changed nothing, raise ConflictError if illegal."""
    outcome, current = await client.eval(  # type: ignore[misc]
        OPERATOR_ACTION,
        7,
        keys.alert(alert_id),
        keys.alert_operator_states,
        keys.alert_history(alert_id),
        keys.alert_events,
        keys.alert_facets,
        keys.alert_index,
        keys.alerts_version,
        alert_id,
        action.value,
        value,
        by,
        datetime.now(UTC).isoformat(),
        ALERT_EVENTS_MAX,
        keys.alert_facet_prefix,
    )
    outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
    current = current.decode() if isinstance(current, bytes) else current
    if outcome == "missing":
        raise NotFoundError(f"no alert with id {alert_id!r}")
    if outcome == "conflict":
        raise ConflictError(f"alert {alert_id!r} is {current}; it cannot be {VERB[action]} any more")
    return outcome == "applied"


async def history(client: Redis, keys: Keys, alert_id: str) -> list[HistoryEntry]:
    """Return every change of an alert, oldest first: the processor's opening and resolving, and each action."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.get(keys.alert(alert_id))
        pipe.lrange(keys.alert_history(alert_id), 0, -1)
        raw, entries = await pipe.execute()
    if raw is None:
        raise NotFoundError(f"no alert with id {alert_id!r}")
    alert = Alert.model_validate_json(raw)
    out = [HistoryEntry(action="open", by="processor", at=alert.first_seen, status=AlertStatus.open)]
    out += [HistoryEntry.model_validate(orjson.loads(e)) for e in entries]
    if alert.status == AlertStatus.resolved:
        out.append(
            HistoryEntry(
                action=Action.resolve, by="processor", at=alert.resolved_at or alert.last_seen, status=alert.status
            )
        )
    return sorted(out, key=lambda e: e.at)
