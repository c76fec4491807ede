"""A global grid of roughly square cells of a size in metres, for counting corridors and finding neighbours.

Rows are `size_m` tall in latitude; each row is cut into cells `size_m` wide at the row's middle latitude,
so a cell is square within the projection error of one row and the grid needs no origin: every worker
and the API name the same cell for the same point. Cells of different rows do not line up.
"""

from __future__ import annotations

import functools
import math

from geo.exceptions import GeoError
from geo.metric import EARTH_RADIUS_M
from geo.zones import check_coordinates

M_PER_DEG_LAT = EARTH_RADIUS_M * math.pi / 180


@functools.lru_cache(maxsize=65536)  # rows of a city's few grids: a cosine per row, not per lookup
def _steps(iy: int, size_m: float) -> tuple[float, float]:
    """Return the (lon, lat) size in degrees of the cells of row iy."""
    dlat = size_m / M_PER_DEG_LAT
    middle = max(-89.0, min(89.0, (iy + 0.5) * dlat))
    return dlat / math.cos(math.radians(middle)), dlat


def _check_size(size_m: float) -> None:
    if not (math.isfinite(size_m) and size_m > 0):
        raise GeoError(f"grid cell size must be a positive number of metres, got {size_m}")


def cell_of(lon: float, lat: float, size_m: float) -> tuple[int, int]:
    """Return the (column, row) of the cell holding a point."""
    check_coordinates(lon, lat)
    _check_size(size_m)
    iy = math.floor(lat / (size_m / M_PER_DEG_LAT))
    dlon, _ = _steps(iy, size_m)
    return math.floor(lon / dlon), iy


def cell_id(ix: int, iy: int, size_m: float) -> str:
    """Return the name of a cell, e.g. `cell500:2536:126100` (size, row, column)."""
    return f"cell{round(size_m)}:{iy}:{ix}"


def parse_cell_id(name: str) -> tuple[int, int, float] | None:
    """Return (column, row, size_m) of a cell name, or None if it is not one."""
    head, _, rest = name.partition(":")
    row, _, column = rest.partition(":")
    if not head.startswith("cell") or not head[4:].isdigit():
        return None
    try:
        return int(column), int(row), float(head[4:])
    except ValueError:
        return None


def cell_bounds(ix: int, iy: int, size_m: float) -> tuple[float, float, float, float]:
    """Return (west, south, east, north) of a cell in degrees."""
    dlon, dlat = _steps(iy, size_m)
    return ix * dlon, iy * dlat, (ix + 1) * dlon, (iy + 1) * dlat


def cells_near(lon: float, lat: float, radius_m: float, size_m: float) -> list[tuple[int, int]]:
    """Return every cell that may hold a point within radius_m of (lon, lat), sorted."""
    check_coordinates(lon, lat)
    _check_size(size_m)
    dlat_r = radius_m / M_PER_DEG_LAT
    dlon_r = dlat_r / max(math.cos(math.radians(min(89.0, abs(lat) + dlat_r))), 1e-6)
    dlat = size_m / M_PER_DEG_LAT
    cells = []
    for iy in range(math.floor((lat - dlat_r) / dlat), math.floor((lat + dlat_r) / dlat) + 1):
        dlon, _ = _steps(iy, size_m)
        for ix in range(math.floor((lon - dlon_r) / dlon), math.floor((lon + dlon_r) / dlon) + 1):
            cells.append((ix, iy))
    return sorted(cells)
