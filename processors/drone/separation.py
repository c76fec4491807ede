"""Loss of separation between two airborne drones, across partitions, through a Redis spatial index per time slice.

Drones are keyed by drone id, so two neighbours are usually on different partitions. Each batch's airborne
fixes are written, inside the partition's commit, into Redis GEO sets per time slice (`separation_window_s`)
and 1 km grid tile, one member per fix (`drone|t_ms|height|lon|lat`). One script call searches, in Redis, the
sets near each fix (its own slice and the two beside it) within `separation_horizontal_m` (GEOSEARCH
BYRADIUS), so only close fixes come back however crowded a tile is; the batch's own earlier fixes are put on
a grid of cells as large as the horizontal limit and compared only with those in the cells around, so the
cost grows with the batch, not with its square. Fixes of other drones within `separation_vertical_m` and
`separation_window_s` count. The sets searched are WATCHed by the commit, so of two partitions committing
close fixes at once, one redoes its decision and sees the other: every close pair of fixes is found by at
least one side.

A pair's episode is shared state (`sep-pair:<a>|<b>`, also WATCHed), so both partitions extend the same
alert, whose id comes from the sorted pair and the episode start. It resolves when a fix of either drone
shows the other's latest fix, within the time window, far enough away; when either lands; or when no close
fix was seen for `STALE_WINDOWS` windows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from geo.grid import M_PER_DEG_LAT, cell_of, cells_near
from geo.metric import haversine_m
from processors.alerts import ms_to_dt
from streams.keys import Keys
from streams.models import Alert, AlertStatus, Domain, GeoPoint, Severity, alert_id
from streams.redisio import LUA_CALL_CHUNKED
from streams.settings import DroneRules

SEPARATION = "separation"
TILE_M = 1000.0  # GEO sets are per tile, so only nearby drones' commits contend for the same keys
STALE_WINDOWS = 6  # an episode with no close fix for this many windows resolves
KEEP_S = 24 * 3600  # pair states and open sets expire after a day without change


# Find every stored fix of other drones near each of a batch's fixes, and read the drones' open-episode sets,
# in one call: the radius search runs in Redis, so only close fixes come back however crowded the sets are,
# and a drone's own fixes (most of what a search meets) stay there. KEYS: the slice sets, then the open sets
# (ARGV[2] of them). ARGV[1]: the radius in m; ARGV[3]: the number of search groups, each the count k and the
# indices in KEYS of k slice sets (fixes of one slice and tile neighbourhood share one); then per fix: its
# member prefix (`drone|`), lon, lat and its group. Returns {per fix: [member, metres, ...], per open set:
# members}. A member is `drone|t|height|lon|lat`, and a drone id may hold `|`: a member is the fix's drone's
# when it starts with the prefix and the rest has exactly the 3 separators of `t|height|lon|lat`.
READ_NEAR = """
local radius, n_open, n_groups = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local n_sets = #KEYS - n_open
local groups, a = {}, 4
for g = 1, n_groups do
  local k, sets = tonumber(ARGV[a]), {}
  for j = 1, k do sets[j] = KEYS[tonumber(ARGV[a + j])] end
  groups[g] = sets
  a = a + 1 + k
end
local hits, partners = {}, {}
while a <= #ARGV do
  local prefix, lon, lat = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local found = {}
  for _, key in ipairs(groups[tonumber(ARGV[a + 3])]) do
    local near = redis.call('GEOSEARCH', key, 'FROMLONLAT', lon, lat, 'BYRADIUS', radius, 'm', 'WITHDIST')
    for _, m in ipairs(near) do
      local member = m[1]
      local own = string.sub(member, 1, #prefix) == prefix
        and select(2, string.gsub(string.sub(member, #prefix + 1), '|', '')) == 3
      if not own then
        found[#found + 1] = member
        found[#found + 1] = m[2]
      end
    end
  end
  hits[#hits + 1] = found
  a = a + 4
end
for i = 1, n_open do partners[i] = redis.call('SMEMBERS', KEYS[n_sets + i]) end
return {hits, partners}
"""

# Write a batch's fixes and raise the stamps of their tiles in one call (one command in the commit instead of
# a GEOADD and an EXPIRE per set and an INCR and an EXPIRE per tile: a live fetch's drones spread over hundreds
# of sets). KEYS: the slice sets, then the stamps. ARGV[1]: the TTL; then per set: the count of values
# (3 per fix: lon, lat, member) and the values.
WRITE_FIXES = (
    LUA_CALL_CHUNKED
    + """
local ttl, a = ARGV[1], 2
local n_sets = 0
while a <= #ARGV do
  n_sets = n_sets + 1
  local n = tonumber(ARGV[a])
  call_chunked('GEOADD', KEYS[n_sets], a + 1, a + n, 999)
  redis.call('EXPIRE', KEYS[n_sets], ttl)
  a = a + 1 + n
end
for i = n_sets + 1, #KEYS do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ttl)
end
return 0
"""
)


@dataclass(frozen=True)
class Position:
    """One in-order fix of a drone, as the separation check needs it."""

    drone_id: str
    operator_id: str
    lon: float
    lat: float
    height_m: float | None  # None: unknown
    t_ms: int
    airborne: bool
    zone_id: str


Fix = tuple[str, int, float | None, float, float]  # (drone, t_ms, height or None, lon, lat)


@dataclass(frozen=True)
class Neighbours:
    """What `READ_NEAR` found for a batch, and what `decide` then needs read: the episode keys (to WATCH
    and GET, in the order of `pairs`) and the drones whose last fixes to read, in that order."""

    found: list[list[tuple[Fix, float]]]  # per position: (fix, metres) of other drones' stored fixes near it
    partners: dict[str, set[str]]  # per drone of the batch: the drones it has an open episode with
    pairs: list[tuple[str, str]]
    pair_keys: list[str]
    pair_drones: list[str]


def _member(p: Position) -> str:
    return f"{p.drone_id}|{p.t_ms}|{'' if p.height_m is None else p.height_m!r}|{p.lon!r}|{p.lat!r}"


def _parse(member: bytes | str) -> Fix:
    text = member.decode() if isinstance(member, bytes) else member
    drone, t, h, lon, lat = text.rsplit("|", 4)
    return drone, int(t), (float(h) if h else None), float(lon), float(lat)


class NearIndex:
    """Fixes on a grid of cells one horizontal limit wide, per time slice, to find close ones without a scan."""

    def __init__(self, radius_m: float, window_ms: int) -> None:
        self.radius_m = radius_m
        self.window_ms = window_ms
        self.cells: dict[tuple[int, int, int], list[Fix]] = {}

    def add(self, fix: Fix) -> None:
        """Index one fix."""
        ix, iy = cell_of(fix[3], fix[4], self.radius_m)
        self.cells.setdefault((fix[1] // self.window_ms, ix, iy), []).append(fix)

    def cells_near(self, lon: float, lat: float) -> list[tuple[int, int]]:
        """Return the cells that may hold a fix within the radius of a point (to pass to `near`)."""
        return cells_near(lon, lat, self.radius_m, self.radius_m)

    def near(
        self, lon: float, lat: float, t_ms: int, cells: list[tuple[int, int]], within_ms: int | None = None
    ) -> list[tuple[Fix, float]]:
        """Return (fix, metres) of the fixes within the radius, in this slice or the two beside it (and, with
        `within_ms`, at most that far apart in time), in the order of `cells`."""
        if not self.cells:
            return []
        s = t_ms // self.window_ms
        # The great-circle distance is at least the latitude difference's arc: beyond it, no haversine needed.
        lat_reach = self.radius_m / M_PER_DEG_LAT * (1 + 1e-9)
        found = []
        for ix, iy in cells:
            for slice_ in (s - 1, s, s + 1):
                for fix in self.cells.get((slice_, ix, iy), ()):
                    if (within_ms is not None and abs(fix[1] - t_ms) > within_ms) or abs(fix[4] - lat) > lat_reach:
                        continue
                    dist = haversine_m(lon, lat, fix[3], fix[4])
                    if dist < self.radius_m:
                        found.append((fix, dist))
        return found


class SeparationCheck:
    """Decide a batch's separation alerts inside its commit, in three steps around two Redis reads (`near_query`,
    `neighbours`, `decide`; the part that awaits the reads, the sink's shared-update protocol, is
    processors/drone/separation_commit.py)."""

    def __init__(
        self,
        positions: list[Position],
        keys: Keys,
        rules: DroneRules,
        publish: Callable[[list[Alert]], Awaitable[None]],
    ) -> None:
        self.positions = positions
        self.k = keys
        self.publish = publish
        self.h_m, self.v_m = rules.separation_horizontal_m, rules.separation_vertical_m
        self.window_ms = int(rules.separation_window_s * 1000)
        self.searches: list[list[str]] = []  # per airborne fix: the slice sets near it
        self.homes: list[tuple[int, int]] = []  # per airborne fix: its own tile
        self._names: dict[tuple[int, tuple[int, int]], str] = {}
        self.drones = sorted({p.drone_id for p in positions})
        tiles_searched: set[tuple[int, int]] = set()
        lists: dict[tuple[int, tuple[tuple[int, int], ...]], list[str]] = {}  # fixes of a slice and tiles share one
        for p in positions:
            if p.airborne:
                s = p.t_ms // self.window_ms
                tiles = tuple(cells_near(p.lon, p.lat, self.h_m, TILE_M))
                searched = lists.get((s, tiles))
                if searched is None:
                    tiles_searched.update(tiles)
                    searched = lists[(s, tiles)] = [self._geo(i, tile) for i in (s - 1, s, s + 1) for tile in tiles]
                self.searches.append(searched)
                self.homes.append(cell_of(p.lon, p.lat, TILE_M))
        self.searched = sorted({key for keys_ in self.searches for key in keys_})
        # WATCH costs Redis a scan of the keys already watched for each key (quadratic in their number), so
        # the commit watches one stamp per tile, raised by every write into any of its slices, instead of
        # each slice set searched. The open sets are not watched: they are changed by adding and removing
        # members, never rewritten whole, so two partitions changing one set at once both take effect.
        self.keys = sorted(keys.separation_tile(self._tile(tile)) for tile in tiles_searched)

    @staticmethod
    def _tile(tile: tuple[int, int]) -> str:
        return f"{tile[0]}:{tile[1]}"

    def _geo(self, slice_: int, tile: tuple[int, int]) -> str:
        name = self._names.get((slice_, tile))
        if name is None:  # a batch's fixes share few slice sets: name each once
            name = self._names[(slice_, tile)] = self.k.separation_slice(slice_, self._tile(tile))
        return name

    def near_query(self) -> list[Any]:
        """Return the key count, keys and arguments of the `READ_NEAR` call that reads the neighbours."""
        drones = self.drones
        slot = {key: i + 1 for i, key in enumerate(self.searched)}
        group: dict[int, int] = {}  # id of a shared list of sets -> its group number
        group_args: list[int] = []
        fix_args: list[str | float | int] = []
        for p, keys_ in zip((p for p in self.positions if p.airborne), self.searches, strict=True):
            number = group.get(id(keys_))
            if number is None:
                number = group[id(keys_)] = len(group) + 1
                group_args += [len(keys_), *(slot[k] for k in keys_)]
            fix_args += [f"{p.drone_id}|", p.lon, p.lat, number]
        args = [self.h_m, len(drones), len(group), *group_args, *fix_args]
        return [len(self.searched) + len(drones), *self.searched, *map(self.k.separation_open, drones), *args]

    def neighbours(self, near: list[Any], open_sets: list[Any]) -> Neighbours:
        """Take what `READ_NEAR` returned; return it with the episodes and last fixes `decide` needs read."""
        hits = iter(near)
        found: list[list[tuple[Fix, float]]] = []
        for p in self.positions:
            flat = next(hits) if p.airborne else []
            found.append([(_parse(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)])
        partners = {
            d: {(m.decode() if isinstance(m, bytes) else m) for m in ms}
            for d, ms in zip(self.drones, open_sets, strict=True)
        }
        # Every pair this batch may touch: found close, or already open.
        pairs = {self._pair(p.drone_id, h[0][0]) for p, hits in zip(self.positions, found, strict=True) for h in hits}
        pairs |= {self._pair(d, o) for d, others in partners.items() for o in others}
        pair_list = sorted(pair for pair in pairs if pair[0] != pair[1])
        return Neighbours(
            found,
            partners,
            pair_list,
            [self.k.separation_pair(*pair) for pair in pair_list],
            sorted({d for pair in pair_list for d in pair}),
        )

    def decide(
        self, seen: Neighbours, raws: list[bytes | str | None], last_raw: list[bytes | str | None]
    ) -> tuple[Callable[[Any], None], list[Alert]]:
        """Decide on the episodes and last fixes read (in the order `seen` gave them) and return the writes and
        alerts."""
        found, partners, pair_list = seen.found, seen.partners, seen.pairs
        # What this batch does to each drone's open set, the last word per member (True: add), written as
        # such: a partner's set that was not read is changed, not replaced.
        delta: dict[str, dict[str, bool]] = {}
        states: dict[tuple[str, str], dict[str, Any] | None] = {}
        latest: dict[str, tuple[float, float, float | None, int]] = {}
        if pair_list:
            states = {pair: (orjson.loads(r) if r else None) for pair, r in zip(pair_list, raws, strict=True)}
            for drone, raw in zip(seen.pair_drones, last_raw, strict=True):
                if raw:
                    lon, lat, h, t = orjson.loads(raw)
                    latest[drone] = (lon, lat, h, t)
        alerts: dict[str, Alert] = {}
        local = NearIndex(self.h_m, self.window_ms)  # this batch's earlier airborne fixes, not yet in Redis
        local_last: dict[str, Position] = {}
        changed: set[tuple[str, str]] = set()
        # The drones with an earlier fix of this batch in each slice set: a fix whose slice sets hold none but
        # its own drone has no earlier fix of another drone within reach, and skips the finer search.
        local_drones: dict[str, set[str]] = {}
        searches, homes = iter(self.searches), iter(self.homes)
        for p, hits in zip(self.positions, found, strict=True):
            close: dict[str, tuple[int, float, float | None]] = {}  # other -> (t, horizontal m, vertical m or None)
            home = None
            if p.airborne:
                searched, home = next(searches), next(homes)
                earlier: list[tuple[Fix, float]] = []
                for drones_there in map(local_drones.get, searched):
                    if drones_there and (len(drones_there) > 1 or p.drone_id not in drones_there):
                        earlier = local.near(p.lon, p.lat, p.t_ms, local.cells_near(p.lon, p.lat), self.window_ms)
                        break
                candidates = [(*fix[:3], dist) for fix, dist in [*hits, *earlier]]
                for other, t, h, dist in candidates:
                    if other == p.drone_id or abs(t - p.t_ms) > self.window_ms or dist >= self.h_m:
                        continue
                    vertical = None if h is None or p.height_m is None else abs(h - p.height_m)
                    if vertical is not None and vertical >= self.v_m:
                        continue
                    best = close.get(other)
                    if best is None or (dist, abs(t - p.t_ms)) < (best[1], abs(best[0] - p.t_ms)):
                        close[other] = (t, dist, vertical)
            for other, (t, dist, vertical) in sorted(close.items()):
                pair = self._pair(p.drone_id, other)
                state = states.get(pair)
                if state is None or not state.get("open"):
                    state = {"start_ms": min(t, p.t_ms), "count": 0, "open": True, "h_m": dist, "v_m": vertical}
                    partners.setdefault(p.drone_id, set()).add(other)
                    partners.setdefault(other, set()).add(p.drone_id)
                    delta.setdefault(p.drone_id, {})[other] = delta.setdefault(other, {})[p.drone_id] = True
                state["count"] += 1
                state["last_ms"] = max(state.get("last_ms", 0), p.t_ms, t)
                state["h_m"] = min(state["h_m"], dist)
                if vertical is not None:
                    state["v_m"] = vertical if state["v_m"] is None else min(state["v_m"], vertical)
                states[pair] = state
                changed.add(pair)
                alerts[self._id(pair, state)] = self._alert(pair, state, p, dist, vertical, resolved=False)
            for other in sorted(partners.get(p.drone_id, set()) - set(close)):
                pair = self._pair(p.drone_id, other)
                state = states.get(pair)
                if state is None or not state.get("open") or not self._ends(p, other, state, latest, local_last):
                    continue
                state["open"] = False
                partners[p.drone_id].discard(other)
                partners.setdefault(other, set()).discard(p.drone_id)
                delta.setdefault(p.drone_id, {})[other] = delta.setdefault(other, {})[p.drone_id] = False
                changed.add(pair)
                alerts[self._id(pair, state)] = self._alert(pair, state, p, None, None, resolved=True)
            if home is not None:
                local.add((p.drone_id, p.t_ms, p.height_m, p.lon, p.lat))
                local_last[p.drone_id] = p
                local_drones.setdefault(self._geo(p.t_ms // self.window_ms, home), set()).add(p.drone_id)

        def write(tx: Any) -> None:
            ttl = max(60, 4 * self.window_ms // 1000)
            by_key: dict[str, list[float | str]] = {}
            tiles: set[tuple[int, int]] = set()
            last: dict[str, bytes] = {}
            for p, tile in zip((p for p in self.positions if p.airborne), self.homes, strict=True):
                tiles.add(tile)
                key = self._geo(p.t_ms // self.window_ms, tile)
                by_key.setdefault(key, []).extend((p.lon, p.lat, _member(p)))
                last[p.drone_id] = orjson.dumps([p.lon, p.lat, p.height_m, p.t_ms])
            if by_key:  # the stamps tell every commit that searched these tiles to decide again
                stamps = [self.k.separation_tile(self._tile(tile)) for tile in sorted(tiles)]
                args: list[float | str | int] = [ttl]
                for values in by_key.values():
                    args += [len(values), *values]
                tx.eval(WRITE_FIXES, len(by_key) + len(stamps), *by_key, *stamps, *args)
            if last:
                tx.hset(self.k.separation_last, mapping=last)
            for pair in sorted(changed):
                tx.set(self.k.separation_pair(*pair), orjson.dumps(states[pair]), ex=KEEP_S)
            for drone, members in sorted(delta.items()):  # changes only: another partition's stay
                key = self.k.separation_open(drone)
                gone = sorted(m for m, added in members.items() if not added)
                new = sorted(m for m, added in members.items() if added)
                if gone:
                    tx.srem(key, *gone)
                if new:
                    tx.sadd(key, *new)
                tx.expire(key, KEEP_S)  # a day from the last change (no-op on a set emptied)

        return write, list(alerts.values())

    def _ends(
        self,
        p: Position,
        other: str,
        state: dict[str, Any],
        latest: dict[str, tuple[float, float, float | None, int]],
        local_last: dict[str, Position],
    ) -> bool:
        """Return whether this fix shows the pair's episode over: landed, seen apart, or no close fix for long."""
        if not p.airborne or p.t_ms - state.get("last_ms", p.t_ms) > STALE_WINDOWS * self.window_ms:
            return True
        mine = local_last.get(other)
        last = (mine.lon, mine.lat, mine.height_m, mine.t_ms) if mine else latest.get(other)
        if last is None or abs(last[3] - p.t_ms) > self.window_ms:
            return False  # no recent fix of the other drone: its partition may lag; wait for evidence
        apart_h = haversine_m(p.lon, p.lat, last[0], last[1]) >= self.h_m
        apart_v = last[2] is not None and p.height_m is not None and abs(last[2] - p.height_m) >= self.v_m
        return apart_h or apart_v

    @staticmethod
    def _pair(a: str, b: str) -> tuple[str, str]:
        return (a, b) if a <= b else (b, a)

    @staticmethod
    def _id(pair: tuple[str, str], state: dict[str, Any]) -> str:
        return alert_id(SEPARATION, pair[0], ms_to_dt(state["start_ms"]), pair[1])

    def _alert(
        self,
        pair: tuple[str, str],
        state: dict[str, Any],
        p: Position,
        dist: float | None,
        vertical: float | None,
        resolved: bool,
    ) -> Alert:
        closest_h, closest_v = state["h_m"], state["v_m"]
        vertical_text = "unknown" if closest_v is None else f"{closest_v:.0f} m"
        return Alert(
            id=self._id(pair, state),
            domain=Domain.drone,
            kind=SEPARATION,
            severity=Severity.critical,
            status=AlertStatus.resolved if resolved else AlertStatus.open,
            source_id=pair[0],
            zone_id=p.zone_id,
            location=GeoPoint(coordinates=(p.lon, p.lat)),
            measured_value=round(closest_h, 1),
            threshold=self.h_m,
            threshold_type="LOWER",
            unit="m",
            description=f"Drones {pair[0]} and {pair[1]} {'were' if resolved else 'are'} closer than "
            f"{self.h_m:.0f} m horizontally and {self.v_m:.0f} m vertically "
            f"(closest {closest_h:.0f} m apart, {vertical_text} vertically)",
            first_seen=ms_to_dt(state["start_ms"]),
            last_seen=ms_to_dt(max(p.t_ms, state.get("last_ms", p.t_ms))),
            count=state["count"],
            resolved_at=ms_to_dt(p.t_ms) if resolved else None,
            data={
                "drones": list(pair),
                "other_drone_id": pair[1],
                "horizontal_m": None if dist is None else round(dist, 1),
                "vertical_m": None if vertical is None else round(vertical, 1),
                "closest_horizontal_m": round(closest_h, 1),
                "closest_vertical_m": None if closest_v is None else round(closest_v, 1),
                "horizontal_limit_m": self.h_m,
                "vertical_limit_m": self.v_m,
            },
        )
