"""The alert indexes operators' queries read, kept exact by every writer of an alert or of its status.

Besides `alert_index` (every id by first_seen), each alert is in:
- one facet index, `alerts:<effective status>:<domain>:<severity>` by first_seen, recorded in the facets hash
  (id -> `<facet>|<kind>|<source_id>`) so a writer knows which set to leave when the status or severity
  changes, and a page read knows each alert's episode index without reading its JSON;
- its rule+source episode index, `alert-episodes:<kind>|<source_id>` by first_seen, which flapping reads.

The effective status is the later of the worker's and the operator's (open < acknowledged < resolved), so both
writers move the alert between facet indexes in Lua, atomically with their write: the sink in its MULTI
(INDEX_ALERTS), the operator actions in their script (api.services.lifecycle). Alerts written by older
versions are indexed by REINDEX_ALERTS (api.services.alert_reindex runs it at start and whenever the
facets hash and alert_index disagree in size). Both raise the alerts version (api.services.alert_pages).
"""

from __future__ import annotations

from typing import Any

from streams.keys import Keys
from streams.models import Alert

# index_one(id, score, domain, severity, processor status, kind|source): put one alert in its facet and
# episode indexes. KEYS[1] is the operator states hash, KEYS[2] the facets hash; ARGV[1] the facet index
# prefix, ARGV[2] the episode index prefix.
INDEX_ONE = """
local rank = {open = 0, acknowledged = 1, resolved = 2}
local function index_one(id, score, domain, severity, status, group)
  local held = redis.call('HGET', KEYS[1], id)
  if held then
    local op = cjson.decode(held)['status']
    if type(op) == 'string' and rank[op] and rank[op] > rank[status] then status = op end
  end
  local facet = status .. ':' .. domain .. ':' .. severity
  local record = facet .. '|' .. group
  local old = redis.call('HGET', KEYS[2], id)
  if old ~= record then
    local old_facet = old and string.match(old, '^[^|]*')
    if old_facet and old_facet ~= facet then redis.call('ZREM', ARGV[1] .. old_facet, id) end
    redis.call('HSET', KEYS[2], id, record)
  end
  redis.call('ZADD', ARGV[1] .. facet, score, id)
  redis.call('ZADD', ARGV[2] .. group, score, id)
end
"""

# KEYS[3]: the alerts version (raised once). ARGV[3..]: six values per alert (id, first_seen ms, domain,
# severity, processor status, kind|source_id).
INDEX_ALERTS = (
    INDEX_ONE
    + """
for i = 3, #ARGV, 6 do
  index_one(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
end
redis.call('INCR', KEYS[3])
return 0
"""
)

# KEYS[3]: alert_index, KEYS[4]: the alerts version (raised if any alert was indexed). ARGV[3]: the alert
# JSON key prefix; ARGV[4..]: ids. Indexes each id from its stored JSON (read here, so a worker's concurrent
# write cannot be undone by a stale copy); returns how many.
REINDEX_ALERTS = (
    INDEX_ONE
    + """
local done = 0
for i = 4, #ARGV do
  local raw = redis.call('GET', ARGV[3] .. ARGV[i])
  local score = redis.call('ZSCORE', KEYS[3], ARGV[i])
  if raw and score then
    local alert = cjson.decode(raw)
    local status = alert['status']
    if type(status) ~= 'string' then status = 'open' end
    index_one(ARGV[i], score, alert['domain'], alert['severity'], status, alert['kind'] .. '|' .. alert['source_id'])
    done = done + 1
  end
end
if done > 0 then redis.call('INCR', KEYS[4]) end
return done
"""
)


def first_seen_ms(alert: Alert) -> int:
    """Return the score of an alert in every index: its first_seen in epoch ms."""
    return int(alert.first_seen.timestamp() * 1000)


def index_alerts_args(keys: Keys, alerts: list[Alert]) -> tuple[list[str], list[Any]]:
    """Return the KEYS and ARGV of one INDEX_ALERTS call for these alerts."""
    args: list[Any] = [keys.alert_facet_prefix, keys.alert_episode_prefix]
    for alert in alerts:
        args += [
            alert.id,
            first_seen_ms(alert),
            alert.domain.value,
            alert.severity.value,
            alert.status.value,
            f"{alert.kind}|{alert.source_id}",
        ]
    return [keys.alert_operator_states, keys.alert_facets, keys.alerts_version], args


def reindex_args(keys: Keys, alert_ids: list[str]) -> tuple[list[str], list[Any]]:
    """Return the KEYS and ARGV of one REINDEX_ALERTS call for these ids."""
    return (
        [keys.alert_operator_states, keys.alert_facets, keys.alert_index, keys.alerts_version],
        [keys.alert_facet_prefix, keys.alert_episode_prefix, keys.alert(""), *alert_ids],
    )
