"""Zones, the zone index and metric helpers of `geo`, as tables."""

from __future__ import annotations

import copy
import itertools
import json
import math
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box

import geo.zones as zones_module
from geo import (
    BINHAIWAN_ZONES_FILE,
    GeoError,
    InvalidCoordinateError,
    InvalidZoneError,
    LocalProjection,
    Zone,
    ZoneIndex,
    buffer_m,
    check_coordinates,
    haversine_m,
    load_zones,
)

DEMO_BOX = box(113.60, 22.70, 113.82, 22.92)
DISTRICT_IDS = {"shatian", "humen-port", "weiyuan-island", "humen-town", "binhaiwan-core", "changan"}


@pytest.fixture(scope="module")
def index() -> ZoneIndex:
    return ZoneIndex.from_file(BINHAIWAN_ZONES_FILE)


@pytest.fixture(scope="module")
def districts(index: ZoneIndex) -> list[Zone]:
    return index.zones("district")


def _feature(zone_id: str, ring: list[list[float]], kind: str = "nofly", **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"id": zone_id, "name": zone_id, "kind": kind, **props},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


SQUARE = [[113.70, 22.80], [113.71, 22.80], [113.71, 22.81], [113.70, 22.81], [113.70, 22.80]]


def _collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [_feature("ok-square", SQUARE), *features]}


# --- the shipped file -------------------------------------------------------------------------


def test_shipped_file_loads_with_every_kind(index: ZoneIndex) -> None:
    assert {z.id for z in index.zones("district")} == DISTRICT_IDS
    assert {z.id for z in index.zones("nofly")} == {
        "nofly-airport-approach",
        "nofly-government-centre",
        "nofly-hospital-helipad",
    }
    assert {z.id for z in index.zones("restricted")} == {"restricted-humen-bridge", "restricted-port-cranes"}
    assert len(index) == 11


def test_districts_tile_the_demo_box(districts: list[Zone]) -> None:
    total = sum(z.geometry.area for z in districts)
    assert total == pytest.approx(DEMO_BOX.area, rel=1e-9)
    union = shapely.union_all([z.geometry for z in districts])
    assert union.equals(DEMO_BOX)
    assert union.symmetric_difference(DEMO_BOX).area < 1e-15


def test_districts_do_not_overlap(districts: list[Zone]) -> None:
    for a, b in itertools.combinations(districts, 2):
        assert a.geometry.intersection(b.geometry).area <= 1e-12, (a.id, b.id)


def test_shared_edges_use_identical_vertices(districts: list[Zone]) -> None:
    vertices = {z.id: {tuple(c) for c in z.geometry.exterior.coords} for z in districts}
    for a, b in itertools.permutations(districts, 2):
        for vertex in vertices[a.id]:
            if b.geometry.boundary.distance(Point(vertex)) < 1e-12:
                assert vertex in vertices[b.id], f"{a.id} vertex {vertex} is a T-junction on {b.id}"


def test_district_shapes_are_simple_polygons(districts: list[Zone]) -> None:
    for zone in districts:
        assert zone.geometry.geom_type == "Polygon"
        assert 5 <= len(zone.geometry.exterior.coords) - 1 <= 12, zone.id


@pytest.mark.parametrize(
    ("lon", "lat", "expected"),
    [
        (113.640, 22.900, "shatian"),
        (113.640, 22.850, "humen-port"),
        (113.630, 22.810, "weiyuan-island"),
        (113.700, 22.850, "humen-town"),
        (113.660, 22.740, "binhaiwan-core"),
        (113.790, 22.850, "changan"),
        (113.601, 22.701, "binhaiwan-core"),
        (113.819, 22.701, "changan"),
        (113.601, 22.919, "shatian"),
        (113.819, 22.919, "changan"),
        (113.700, 22.755, "binhaiwan-core"),
        (113.500, 22.800, None),
        (113.710, 22.950, None),
    ],
)
def test_sample_points_map_to_expected_district(index: ZoneIndex, lon: float, lat: float, expected: str | None) -> None:
    found = index.district_at(lon, lat)
    assert (found.id if found else None) == expected


@pytest.mark.parametrize(
    ("zone_id", "inside", "outside"),
    [
        ("nofly-airport-approach", (113.790, 22.725), (113.760, 22.710)),
        ("nofly-government-centre", (113.700, 22.755), (113.705, 22.755)),
        ("nofly-hospital-helipad", (113.790, 22.812), (113.793, 22.812)),
        ("restricted-humen-bridge", (113.615, 22.795), (113.615, 22.810)),
        ("restricted-port-cranes", (113.618, 22.850), (113.640, 22.850)),
    ],
)
def test_airspace_zone_contains_inside_not_outside(
    index: ZoneIndex, zone_id: str, inside: tuple[float, float], outside: tuple[float, float]
) -> None:
    zone = index.get(zone_id)
    assert zone is not None
    assert zone_id in [z.id for z in index.zones_at(*inside, kind=zone.kind)]
    assert zone_id not in [z.id for z in index.zones_at(*outside, kind=zone.kind)]
    assert DEMO_BOX.contains(zone.geometry)


@pytest.mark.parametrize(
    ("lon", "lat", "touching", "expected"),
    [
        (113.712, 22.790, {"binhaiwan-core", "humen-town"}, "binhaiwan-core"),
        (113.752, 22.798, {"binhaiwan-core", "changan", "humen-town"}, "binhaiwan-core"),
        (113.662, 22.866, {"humen-port", "humen-town", "shatian"}, "humen-port"),
        (113.600, 22.865, {"humen-port", "shatian"}, "humen-port"),
        (113.770, 22.835, {"changan", "humen-town"}, "changan"),
    ],
)
def test_point_on_shared_edge_maps_to_one_district(
    index: ZoneIndex, districts: list[Zone], lon: float, lat: float, touching: set[str], expected: str
) -> None:
    assert {z.id for z in districts if z.geometry.intersects(Point(lon, lat))} == touching
    for _ in range(3):
        found = index.district_at(lon, lat)
        assert found is not None
        assert found.id == expected
    assert index.district_ids([lon, lon], [lat, lat]) == [expected, expected]


def test_vectorised_district_ids_match_per_point_lookup(index: ZoneIndex, districts: list[Zone]) -> None:
    rng = np.random.default_rng(20240601)
    lons = rng.uniform(113.58, 113.84, 2000)
    lats = rng.uniform(22.68, 22.94, 2000)
    vertices = np.array([c for z in districts for c in z.geometry.exterior.coords])
    lons, lats = np.concatenate([lons, vertices[:, 0]]), np.concatenate([lats, vertices[:, 1]])
    vectorised = index.district_ids(lons, lats)
    one_by_one = [index.district_at(lo, la) for lo, la in zip(lons, lats, strict=True)]
    assert vectorised == [z.id if z else None for z in one_by_one]
    assert None in vectorised
    assert set(vectorised) - {None} == DISTRICT_IDS


def test_district_ids_of_lists_match_per_point_lookup(index: ZoneIndex, districts: list[Zone]) -> None:
    # Lists of floats (what the runner passes) take the cell cache; every answer must be the exact query's,
    # on a cold cache and a warm one, on vertices and shared edges too.
    rng = np.random.default_rng(20261130)
    lons = rng.uniform(113.58, 113.84, 3000).tolist()
    lats = rng.uniform(22.68, 22.94, 3000).tolist()
    for z in districts:
        for lon, lat in z.geometry.exterior.coords:
            lons += [lon, lon + 1e-12, lon - 1e-12]
            lats += [lat, lat - 1e-12, lat + 1e-12]
    fresh = ZoneIndex(index.zones())
    expected = [z.id if z else None for z in (index.district_at(lo, la) for lo, la in zip(lons, lats, strict=True))]
    assert fresh.district_ids(lons, lats) == expected
    assert fresh.district_ids(lons, lats) == expected
    assert [fresh.district_ids([lo], [la])[0] for lo, la in zip(lons[:300], lats[:300], strict=True)] == expected[:300]
    assert None in expected
    assert set(expected) - {None} == DISTRICT_IDS


def test_district_ids_of_overlapping_and_nested_districts() -> None:
    # Districts that overlap, one inside another, and one sharing an edge: a cell is answered from the cache
    # only when one district alone covers it.
    big = [[113.700, 22.800], [113.720, 22.800], [113.720, 22.820], [113.700, 22.820], [113.700, 22.800]]
    inner = [[113.7051, 22.8051], [113.7073, 22.8051], [113.7073, 22.8073], [113.7051, 22.8073], [113.7051, 22.8051]]
    over = [[113.715, 22.815], [113.730, 22.815], [113.730, 22.830], [113.715, 22.830], [113.715, 22.815]]
    beside = [[113.720, 22.800], [113.740, 22.800], [113.740, 22.810], [113.720, 22.810], [113.720, 22.800]]
    zones = [
        Zone(name, name, "district", shapely.Polygon(ring))
        for name, ring in (("b-big", big), ("a-inner", inner), ("c-over", over), ("d-beside", beside))
    ]
    index = ZoneIndex(zones)
    lons = [113.695 + i * 0.00049 for i in range(100) for _ in range(100)]
    lats = [22.795 + j * 0.00041 for _ in range(100) for j in range(100)]
    for ring in (big, inner, over, beside):
        lons += [c[0] for c in ring]
        lats += [c[1] for c in ring]
    expected = [z.id if z else None for z in (index.district_at(lo, la) for lo, la in zip(lons, lats, strict=True))]
    assert index.district_ids(lons, lats) == expected
    assert index.district_ids(lons, lats) == expected
    assert {"a-inner", "b-big", "c-over", "d-beside", None} <= set(expected)
    assert index.district_ids([113.706], [22.806]) == ["a-inner"]  # inside both: the lowest id
    assert index.district_ids([113.7175], [22.8175]) == ["b-big"]


def test_district_cell_cache_is_bounded(monkeypatch: pytest.MonkeyPatch, index: ZoneIndex) -> None:
    monkeypatch.setattr(zones_module, "DISTRICT_CELLS_MAX", 5)
    fresh = ZoneIndex(index.zones())
    rng = np.random.default_rng(7)
    lons, lats = rng.uniform(113.58, 113.84, 500).tolist(), rng.uniform(22.68, 22.94, 500).tolist()
    assert fresh.district_ids(lons, lats) == index.district_ids(np.array(lons), np.array(lats))
    assert len(fresh._district_cells) == 5


def test_district_ids_of_no_points(index: ZoneIndex) -> None:
    assert index.district_ids([], []) == []


def test_zones_on_path_finds_a_zone_crossed_between_two_outside_points(index: ZoneIndex) -> None:
    crossed = index.zones_on_path(113.700, 22.765, 113.700, 22.745, "nofly")
    assert [z.id for z in crossed] == ["nofly-government-centre"]
    assert index.zones_at(113.700, 22.765, "nofly") == index.zones_at(113.700, 22.745, "nofly") == []


@pytest.mark.parametrize(
    ("zone_id", "height_m", "covered"),
    [
        ("restricted-port-cranes", 0.0, True),
        ("restricted-port-cranes", 90.0, True),
        ("restricted-port-cranes", 90.5, False),
        ("restricted-humen-bridge", 250.0, False),
        ("nofly-government-centre", 5000.0, True),
    ],
)
def test_zone_covers_height(index: ZoneIndex, zone_id: str, height_m: float, covered: bool) -> None:
    zone = index.get(zone_id)
    assert zone is not None
    assert zone.covers_height(height_m) is covered


def test_geojson_round_trip_keeps_zones(index: ZoneIndex) -> None:
    exported = index.to_geojson()
    assert load_zones(json.loads(json.dumps(exported))) == index.zones()
    nofly = index.to_geojson("nofly")["features"]
    assert [f["id"] for f in nofly] == [z.id for z in index.zones("nofly")]
    assert all(f["properties"]["reason"] for f in nofly)
    cranes = next(f for f in index.to_geojson("restricted")["features"] if f["id"] == "restricted-port-cranes")
    assert cranes["properties"]["ceiling_m"] == 90
    assert "floor_m" not in cranes["properties"]


def test_get_unknown_zone_is_none(index: ZoneIndex) -> None:
    assert index.get("atlantis") is None


def test_unknown_kind_is_refused(index: ZoneIndex) -> None:
    with pytest.raises(GeoError, match="unknown zone kind 'heliport'"):
        index.zones_at(113.7, 22.8, "heliport")  # type: ignore[arg-type]


# --- validation ---------------------------------------------------------------------------------

BOW_TIE = [[113.70, 22.70], [113.72, 22.72], [113.72, 22.70], [113.70, 22.72], [113.70, 22.70]]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (_feature("bow-tie", BOW_TIE), "Self-intersection"),
        (
            _feature("far-north", [[113.7, 22.8], [113.8, 22.8], [113.8, 200.0], [113.7, 22.8]]),
            "latitude 200.0 out of range",
        ),
        (
            _feature("far-east", [[113.7, 22.8], [181.0, 22.8], [113.8, 22.9], [113.7, 22.8]]),
            "longitude 181.0 out of range",
        ),
        (_feature("nan-corner", [[113.7, 22.8], [math.nan, 22.8], [113.8, 22.9], [113.7, 22.8]]), "longitude nan"),
        (_feature("ok-square", SQUARE), "duplicate id"),
        (
            {**_feature("a-road", SQUARE), "geometry": {"type": "LineString", "coordinates": SQUARE}},
            "Polygon or MultiPolygon, got 'LineString'",
        ),
        (_feature("open-ring", [*SQUARE[:-1], [113.70, 22.805]]), "not closed"),
        (_feature("triangle-less", SQUARE[:3]), "at least 4 positions"),
        (_feature("heliport", SQUARE, kind="heliport"), "unknown kind 'heliport'"),
        (_feature("Bad Id", SQUARE), "not kebab-case"),
        (_feature("upside-down", SQUARE, floor_m=120, ceiling_m=60), "below ceiling_m"),
        (_feature("underground", SQUARE, floor_m=-5), "floor_m must be a finite number"),
        ({**_feature("no-geometry", SQUARE), "geometry": None}, "got None"),
    ],
)
def test_invalid_feature_is_refused_with_its_reason(bad: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidZoneError, match=r"^feature 1[ :]") as caught:
        load_zones(_collection(copy.deepcopy(bad)))
    assert reason in str(caught.value)
    assert repr(bad["properties"]["id"]) in str(caught.value)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ({"type": "Feature"}, "not a GeoJSON FeatureCollection"),
        ({"type": "FeatureCollection"}, "no 'features' list"),
        ('{"type": "FeatureCollection", ', "is not JSON"),
        ("/nonexistent/zones.geojson", "CITY_ZONES_FILE"),
    ],
)
def test_invalid_source_is_refused(source: Any, reason: str) -> None:
    with pytest.raises(InvalidZoneError, match=reason):
        load_zones(source)


def test_load_zones_accepts_text_and_path(tmp_path: Any) -> None:
    text = json.dumps(_collection())
    (tmp_path / "zones.geojson").write_text(text, encoding="utf-8")
    assert load_zones(text) == load_zones(tmp_path / "zones.geojson") == load_zones(str(tmp_path / "zones.geojson"))


def test_index_refuses_duplicate_ids() -> None:
    zone = load_zones(_collection())[0]
    with pytest.raises(InvalidZoneError, match="duplicate zone id 'ok-square'"):
        ZoneIndex([zone, zone])


@pytest.mark.parametrize(
    ("lon", "lat", "reason"),
    [
        (113.7, 22.8, None),
        (-180.0, -90.0, None),
        (180.0, 90.0, None),
        (113.7, 200.0, "latitude 200.0 out of range"),
        (-180.5, 22.8, "longitude -180.5 out of range"),
        (math.inf, 22.8, "longitude inf"),
        (113.7, math.nan, "latitude nan"),
        ("113.7", 22.8, "not a number"),
        (113.7, True, "not a number"),
    ],
)
def test_check_coordinates(lon: Any, lat: Any, reason: str | None) -> None:
    if reason is None:
        check_coordinates(lon, lat)
    else:
        with pytest.raises(InvalidCoordinateError, match=reason):
            check_coordinates(lon, lat)


@pytest.mark.parametrize(
    ("lons", "lats", "reason"),
    [
        ([113.7, 113.7], [22.8], "equal length"),
        ([113.7, 113.7], [22.8, 95.0], "point 1"),
        ([math.nan], [22.8], "point 0"),
    ],
)
def test_district_ids_refuses_bad_points(index: ZoneIndex, lons: list[float], lats: list[float], reason: str) -> None:
    with pytest.raises(InvalidCoordinateError, match=reason):
        index.district_ids(lons, lats)


def test_district_at_refuses_bad_point(index: ZoneIndex) -> None:
    with pytest.raises(InvalidCoordinateError, match="latitude 200"):
        index.district_at(113.7, 200.0)


# --- metric -------------------------------------------------------------------------------------


# WGS84 geodesic lengths; the mean sphere is up to 0.56 % long along the meridian at the equator.
@pytest.mark.parametrize(
    ("lon1", "lat1", "lon2", "lat2", "geodesic_m", "rel"),
    [
        (0.0, 0.0, 0.0, 1.0, 110_574.4, 0.006),
        (0.0, 0.0, 1.0, 0.0, 111_319.5, 0.002),
        (113.7, 22.3, 113.7, 23.3, 110_741.2, 0.005),
        (0.0, 0.0, 0.0, 90.0, 10_001_965.7, 0.001),
    ],
)
def test_haversine_against_geodesic(
    lon1: float, lat1: float, lon2: float, lat2: float, geodesic_m: float, rel: float
) -> None:
    assert haversine_m(lon1, lat1, lon2, lat2) == pytest.approx(geodesic_m, rel=rel)
    assert haversine_m(lon2, lat2, lon1, lat1) == pytest.approx(haversine_m(lon1, lat1, lon2, lat2), rel=1e-12)


@pytest.mark.parametrize(
    ("lon1", "lat1", "lon2", "lat2", "expected_m"),
    [
        (0.0, 0.0, 0.0, 1.0, 6_371_008.8 * math.pi / 180),
        (113.7, 22.8, 113.7, 22.8, 0.0),
        (0.0, 0.0, 180.0, 0.0, 6_371_008.8 * math.pi),
    ],
)
def test_haversine_on_the_mean_sphere(lon1: float, lat1: float, lon2: float, lat2: float, expected_m: float) -> None:
    assert haversine_m(lon1, lat1, lon2, lat2) == pytest.approx(expected_m, rel=1e-12, abs=1e-9)


PROJECTION = LocalProjection(113.71, 22.81)


def test_local_projection_round_trip() -> None:
    rng = np.random.default_rng(7)
    for lon, lat in zip(rng.uniform(113.60, 113.82, 2000), rng.uniform(22.70, 22.92, 2000), strict=True):
        back_lon, back_lat = PROJECTION.to_lonlat(*PROJECTION.to_xy(lon, lat))
        assert abs(back_lon - lon) < 1e-9
        assert abs(back_lat - lat) < 1e-9
    assert PROJECTION.to_xy(113.71, 22.81) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("lon1", "lat1", "lon2", "lat2"),
    [
        (113.60, 22.92, 113.82, 22.92),  # east-west along the north edge: the worst case
        (113.60, 22.70, 113.82, 22.70),
        (113.71, 22.70, 113.71, 22.92),
        (113.60, 22.70, 113.82, 22.92),
        (113.70, 22.755, 113.705, 22.755),
    ],
)
def test_local_projection_distances_match_haversine(lon1: float, lat1: float, lon2: float, lat2: float) -> None:
    x1, y1 = PROJECTION.to_xy(lon1, lat1)
    x2, y2 = PROJECTION.to_xy(lon2, lat2)
    assert math.hypot(x2 - x1, y2 - y1) == pytest.approx(haversine_m(lon1, lat1, lon2, lat2), rel=1e-3)


def test_local_projection_random_distances_within_a_thousandth() -> None:
    rng = np.random.default_rng(11)
    points = np.column_stack([rng.uniform(113.60, 113.82, 400), rng.uniform(22.70, 22.92, 400)])
    for (lon1, lat1), (lon2, lat2) in zip(points[::2], points[1::2], strict=True):
        x1, y1 = PROJECTION.to_xy(lon1, lat1)
        x2, y2 = PROJECTION.to_xy(lon2, lat2)
        assert math.hypot(x2 - x1, y2 - y1) == pytest.approx(haversine_m(lon1, lat1, lon2, lat2), rel=1e-3)


@pytest.mark.parametrize(("lon0", "lat0"), [(200.0, 22.8), (113.7, 89.0), (113.7, math.nan)])
def test_local_projection_refuses_bad_origin(lon0: float, lat0: float) -> None:
    with pytest.raises(InvalidCoordinateError):
        LocalProjection(lon0, lat0)


@pytest.mark.parametrize(
    ("east_of_centre_m", "inside"),
    [(250.0, True), (350.0, True), (395.0, True), (410.0, False), (450.0, False)],
)
def test_buffer_m_grows_a_zone_by_metres(index: ZoneIndex, east_of_centre_m: float, inside: bool) -> None:
    zone = index.get("nofly-government-centre")  # an octagon of 300 m radius round (113.700, 22.755)
    assert zone is not None
    projection = LocalProjection(113.700, 22.755)
    grown = buffer_m(zone.geometry, 100.0, projection)
    lon, lat = projection.to_lonlat(east_of_centre_m, 0.0)
    assert grown.contains(Point(lon, lat)) is inside
    assert grown.contains(zone.geometry)


def test_buffer_m_negative_shrinks_and_nan_is_refused(index: ZoneIndex) -> None:
    zone = index.get("nofly-airport-approach")
    assert zone is not None
    projection = LocalProjection(113.78, 22.73)
    assert zone.geometry.contains(buffer_m(zone.geometry, -200.0, projection))
    with pytest.raises(GeoError, match="finite"):
        buffer_m(zone.geometry, math.nan, projection)
