"""The measurement-site table: which detector lies on which road segment and direction, in driving order.

Like a DATEX II measurement site table, it is published apart from the readings: a CSV file with one row
per loop detector, `sensor_id,road_segment,direction,position_m,lane`. `position_m` is the distance along
the segment in the direction of travel, so a detector's upstream neighbour is the one just before it.
The file is read once when a worker starts (`CITY_SITES_FILE`): a table that changed while partitions were
being applied would make a replay judge the same readings against another table.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from itertools import groupby, pairwise
from pathlib import Path

from streams.exceptions import CitystreamError

COLUMNS = ("sensor_id", "road_segment", "direction", "position_m", "lane")
_SENSOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
_DIRECTION = re.compile(r"^[A-Za-z0-9_\-]{1,16}$")
MAX_POSITION_M = 1_000_000.0


class InvalidSiteTableError(CitystreamError):
    """The site table is unusable; the message names the file, line and what to fix."""


@dataclass(frozen=True)
class Site:
    """Where one detector sits: its road segment, direction of travel, position along it and lane."""

    sensor_id: str
    road_segment: str
    direction: str
    position_m: float
    lane: int | None = None


class SiteTable:
    """Detectors by id, each with its upstream neighbour worked out once."""

    def __init__(self, sites: list[Site]) -> None:
        self.sites = {site.sensor_id: site for site in sites}
        self._upstream = _upstream_neighbours(sites)

    def __len__(self) -> int:
        return len(self.sites)

    def site(self, sensor_id: str) -> Site | None:
        """Return the detector's site, or None when the table does not list it."""
        return self.sites.get(sensor_id)

    def upstream(self, sensor_id: str) -> Site | None:
        """Return the detector just upstream of this one on its segment and direction (same lane first)."""
        upstream_id = self._upstream.get(sensor_id)
        return None if upstream_id is None else self.sites[upstream_id]


def _upstream_neighbours(sites: list[Site]) -> dict[str, str]:
    """Map each detector to the nearest one before it on its segment and direction, ties broken by lane then id."""
    by_road: dict[tuple[str, str], list[Site]] = {}
    for site in sites:
        by_road.setdefault((site.road_segment, site.direction), []).append(site)
    found: dict[str, str] = {}
    for road in by_road.values():
        groups = [list(g) for _, g in groupby(sorted(road, key=lambda s: s.position_m), key=lambda s: s.position_m)]
        for before, here in pairwise(groups):
            for site in here:
                nearest = min(before, key=lambda s: (s.lane != site.lane, s.sensor_id))
                found[site.sensor_id] = nearest.sensor_id
    return found


def load_sites(path: str | Path) -> SiteTable:
    """Read and check a site table CSV, or fail naming the line and the fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidSiteTableError(f"site table {path} unreadable ({exc.strerror}): set CITY_SITES_FILE") from exc
    return parse_sites(text, str(path))


def parse_sites(text: str, origin: str = "site table") -> SiteTable:
    """Parse site table text (header first, `#` lines are comments) into a SiteTable."""
    rows = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip() and not line.startswith("#")]
    if not rows:
        raise InvalidSiteTableError(f"{origin}: empty; the first line must be {','.join(COLUMNS)}")
    header_line, header = rows[0][0], [c.strip() for c in next(csv.reader([rows[0][1]]))]
    if tuple(header) != COLUMNS:
        raise InvalidSiteTableError(
            f"{origin}:{header_line}: header is {','.join(header)}; expected {','.join(COLUMNS)}"
        )
    sites: list[Site] = []
    first_line: dict[str, int] = {}
    places: dict[tuple[str, str, float, int | None], int] = {}
    for number, line in rows[1:]:
        site = _parse_row(f"{origin}:{number}", next(csv.reader([line])))
        if site.sensor_id in first_line:
            also = first_line[site.sensor_id]
            raise InvalidSiteTableError(f"{origin}:{number}: detector {site.sensor_id!r} is also on line {also}")
        place = (site.road_segment, site.direction, site.position_m, site.lane)
        if place in places:
            raise InvalidSiteTableError(
                f"{origin}:{number}: detector {site.sensor_id!r} has the same segment, direction, position and lane "
                f"as line {places[place]}; give each lane its own lane number"
            )
        first_line[site.sensor_id], places[place] = number, number
        sites.append(site)
    return SiteTable(sites)


def _parse_row(where: str, fields: list[str]) -> Site:
    if len(fields) != len(COLUMNS):
        raise InvalidSiteTableError(f"{where}: {len(fields)} fields; expected {len(COLUMNS)}: {','.join(COLUMNS)}")
    sensor_id, segment, direction, position, lane = (f.strip() for f in fields)
    if not _SENSOR_ID.match(sensor_id):
        raise InvalidSiteTableError(f"{where}: sensor_id {sensor_id!r} is not a detector id (letters, digits, ._:-)")
    if not 1 <= len(segment) <= 64:
        raise InvalidSiteTableError(f"{where}: road_segment must be 1 to 64 characters, as in the readings")
    if not _DIRECTION.match(direction):
        raise InvalidSiteTableError(f"{where}: direction {direction!r} must be 1 to 16 letters, digits, _ or -")
    try:
        position_m = float(position)
    except ValueError:
        raise InvalidSiteTableError(f"{where}: position_m {position!r} is not a number of metres") from None
    if not math.isfinite(position_m) or not 0 <= position_m <= MAX_POSITION_M:
        raise InvalidSiteTableError(f"{where}: position_m {position!r} must be 0 to {MAX_POSITION_M:.0f} metres")
    lane_no: int | None = None
    if lane:
        if not lane.isdigit() or not 1 <= int(lane) <= 16:
            raise InvalidSiteTableError(f"{where}: lane {lane!r} must be a whole number 1 to 16, or empty")
        lane_no = int(lane)
    return Site(sensor_id, segment, direction, position_m, lane_no)
