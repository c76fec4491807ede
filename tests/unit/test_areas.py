"""Query areas: a bbox or a GeoJSON polygon is checked at the edge and selects the districts it touches."""

from __future__ import annotations

import json

import pytest

from geo.areas import parse_bbox, parse_polygon
from geo.exceptions import InvalidAreaError
from geo.zones import BINHAIWAN_ZONES_FILE, ZoneIndex
from processors.metrics import WindowSums, combine_windows
from streams.models import Domain

SQUARE = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1,2,3", "4 numbers"),
        ("1,2,3,x", "4 numbers"),
        ("nan,0,1,1", "longitude"),
        ("0,-91,1,1", "latitude"),
        ("2,0,1,1", "min must not exceed max"),
    ],
)
def test_bad_bboxes_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidAreaError, match=reason):
        parse_bbox(text)


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        ("[", "not JSON"),
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, "Polygon or MultiPolygon"),
        ({"type": "Polygon"}, "at least one ring"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "4 positions"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "not closed"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}, "Self-intersection"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [1, 1], [0, 0]]]}, "longitude"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [2, 0], [0, 0]]]}, "invalid"),
        ({"type": "Polygon", "coordinates": [[["a", 0], [1, 0], [1, 1], ["a", 0]]]}, "not a number"),
    ],
)
def test_bad_polygons_say_why(geometry: object, reason: str) -> None:
    text = geometry if isinstance(geometry, str) else json.dumps(geometry)
    with pytest.raises(InvalidAreaError, match=reason):
        parse_polygon(text)


def test_polygons_multipolygons_and_features_are_accepted() -> None:
    assert parse_polygon(json.dumps({"type": "Polygon", "coordinates": [SQUARE]})).area == 1
    multi = {"type": "MultiPolygon", "coordinates": [[SQUARE]]}
    assert parse_polygon(json.dumps({"type": "Feature", "geometry": multi, "properties": {}})).area == 1


def test_an_area_selects_every_district_it_touches() -> None:
    index = ZoneIndex.from_file(BINHAIWAN_ZONES_FILE)
    assert [z.id for z in index.zones_intersecting(parse_bbox("113.79,22.81,113.8,22.82"), "district")] == ["changan"]
    everything = index.zones_intersecting(parse_bbox("113,22,115,24"), "district")
    assert len(everything) == len(index.zones("district"))
    assert index.zones_intersecting(parse_bbox("0,0,1,1"), "district") == []


def test_windows_combine_by_summing_and_taking_maxima() -> None:
    windows = [
        WindowSums(Domain.energy, 60, "z", 0, {"n": 1, "wh": 100, "mv": 220_000, "max_w": 5000}),
        WindowSums(Domain.energy, 60, "z", 60_000, {"n": 3, "wh": 300, "mv": 660_000, "max_w": 2000}),
        WindowSums(Domain.drone, 60, "z", 0, {"n": 4}, distinct=3),
    ]
    assert combine_windows(windows[:2]) == ({"n": 4, "wh": 400, "mv": 880_000, "max_w": 5000}, 0)
    assert combine_windows(windows[2:]) == ({"n": 4}, 3)
