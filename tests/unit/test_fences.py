"""Geofences of `geo.fences`: parsing, the grid index, and Tile38-style enter/exit/inside/cross, as tables."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from geo import BINHAIWAN_ZONES_FILE, GeoError, LocalProjection, haversine_m, load_zones
from geo.fences import (
    Fence,
    FenceError,
    FenceSet,
    FenceTracker,
    FixBatch,
    Validity,
    fences_from_zones,
    load_fences,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
LAT = 22.805  # the tracks below fly west to east along this latitude
# a 0.01 x 0.01 degree square (about 1025 m x 1112 m) centred on (113.705, 22.805)
SQUARE = box(113.70, 22.80, 113.71, 22.81)


def local_ms(hour: int, minute: int = 0) -> int:
    """Return epoch ms of a wall-clock time in Dongguan on 2026-06-01."""
    return int(datetime(2026, 6, 1, hour, minute, tzinfo=SHANGHAI).timestamp() * 1000)


NOON = local_ms(12)


def fly(
    tracker: FenceTracker, lons: list[float], height: float = 50.0, operator: str = "op-1", t_ms: int = NOON
) -> list[list[tuple[str, str, str | None]]]:
    """Fly drone d-1 through the given longitudes at LAT, one fix each, and return each fix's (fence, detect, alert)."""
    state: dict[str, Any] = {}
    return [
        [(e.fence_id, e.detect, e.alert) for e in tracker.track_one(state, "d-1", operator, lon, LAT, height, t_ms)]
        for lon in lons
    ]


# --- enter, inside, exit, cross ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("lons", "expected"),
    [
        # outside west -> inside -> still inside -> outside east
        (
            [113.695, 113.702, 113.708, 113.715],
            [[], [("nf", "enter", "no_fly")], [("nf", "inside", "no_fly")], [("nf", "exit", None)]],
        ),
        # both fixes outside, the straight segment passes through: cross (Tile38), no enter/exit
        ([113.695, 113.715], [[], [("nf", "cross", "no_fly")]]),
        # both fixes outside on the same side: nothing
        ([113.690, 113.695], [[], []]),
        # on the boundary counts as inside
        ([113.695, 113.70], [[], [("nf", "enter", "no_fly")]]),
    ],
)
def test_enter_inside_exit_cross(lons: list[float], expected: list[list[tuple[str, str, str | None]]]) -> None:
    tracker = FenceTracker(FenceSet([Fence("nf", "no_fly", SQUARE)]))
    assert fly(tracker, lons) == expected


def test_cross_passing_beside_the_fence_is_nothing() -> None:
    tracker = FenceTracker(FenceSet([Fence("nf", "no_fly", SQUARE)]))
    state: dict[str, Any] = {}
    tracker.track_one(state, "d-1", "op-1", 113.695, 22.795, 50, NOON)
    assert tracker.track_one(state, "d-1", "op-1", 113.715, 22.799, 50, NOON) == []  # south of the square


def test_cross_of_a_concave_fence_only_through_its_arms() -> None:
    # a U open to the north: a segment across the mouth crosses nothing, one lower down crosses the fence
    u = Polygon([(113.70, 22.80), (113.73, 22.80), (113.73, 22.83), (113.72, 22.83), (113.72, 22.81),
                 (113.71, 22.81), (113.71, 22.83), (113.70, 22.83)])  # fmt: skip
    fs = FenceSet([Fence("u", "no_fly", u)])
    assert fs.fences_crossed(113.711, 22.82, 113.719, 22.82) == []
    assert [f.id for f in fs.fences_crossed(113.711, 22.82, 113.719, 22.805)] == ["u"]
    assert fs.fences_at(113.715, 22.82) == []
    assert [f.id for f in fs.fences_at(113.715, 22.805)] == ["u"]


# --- permits, operating areas, height limits -------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "permits", "alert"),
    [
        ("op-holder", {"rz": {"op-holder"}}, None),
        ("op-other", {"rz": {"op-holder"}}, "restricted"),
        ("op-holder", {"rz": {"op-holder": Validity(end_ms=NOON - 1)}}, "restricted"),  # permit expired
        ("op-holder", {"rz": {"op-holder": Validity(start_ms=NOON - 1)}}, None),
    ],
)
def test_permit_holder_is_not_alerted_in_a_restricted_zone(
    operator: str, permits: dict[str, Any], alert: str | None
) -> None:
    tracker = FenceTracker(FenceSet([Fence("rz", "restricted", SQUARE)]), permits)
    assert fly(tracker, [113.695, 113.705], operator=operator) == [[], [("rz", "enter", alert)]]


def test_leaving_a_declared_operating_area_alerts_only_its_operator() -> None:
    fs = FenceSet([Fence("area", "operating_area", SQUARE)])
    tracker = FenceTracker(fs, {"area": {"op-1"}})
    lons = [113.705, 113.708, 113.715]
    assert fly(tracker, lons) == [
        [("area", "enter", None)],
        [("area", "inside", None)],
        [("area", "exit", "left_operating_area")],
    ]
    assert fly(tracker, lons, operator="op-2") == [[], [], []]  # not op-2's declared area


def test_above_max_height_inside_a_fence_alerts() -> None:
    fs = FenceSet([Fence("area", "operating_area", SQUARE, max_height_agl_m=60)])
    assert fly(FenceTracker(fs), [113.705], height=61) == [[("area", "enter", "above_max_height")]]
    assert fly(FenceTracker(fs), [113.705], height=60) == [[("area", "enter", None)]]
    assert fly(
        FenceTracker(FenceSet([Fence("a", "operating_area", SQUARE)]), max_height_agl_m=120), [113.705], 121
    ) == [[("a", "enter", "above_max_height")]]


def test_permits_are_checked() -> None:
    fs = FenceSet([Fence("nf", "no_fly", SQUARE), Fence("rz", "restricted", box(113.72, 22.80, 113.73, 22.81))])
    with pytest.raises(FenceError, match="unknown fence 'nope'"):
        FenceTracker(fs, {"nope": {"op-1"}})
    with pytest.raises(FenceError, match="no-fly zones take no permits"):
        FenceTracker(fs, {"nf": {"op-1"}})
    with pytest.raises(FenceError, match="not one string"):
        FenceTracker(fs, {"rz": "op-1"})


# --- time validity and heights --------------------------------------------------------------------


NIGHT = Validity(daily_from_s=22 * 3600, daily_to_s=6 * 3600)


@pytest.mark.parametrize(
    ("hour", "minute", "active"),
    [(23, 0, True), (12, 0, False), (21, 59, False), (22, 0, True), (5, 59, True), (6, 0, False), (0, 0, True)],
)
def test_night_window_in_local_time(hour: int, minute: int, active: bool) -> None:
    assert NIGHT.active_at(local_ms(hour, minute)) is active


@pytest.mark.parametrize(("hour", "expected"), [(23, [[], [("nf", "enter", "no_fly")]]), (12, [[], []])])
def test_fence_valid_only_at_night(hour: int, expected: list[Any]) -> None:
    tracker = FenceTracker(FenceSet([Fence("nf", "no_fly", SQUARE, validity=NIGHT)]))
    assert fly(tracker, [113.695, 113.705], t_ms=local_ms(hour)) == expected


def test_fence_leaves_force_at_six_while_the_drone_hovers() -> None:
    tracker = FenceTracker(FenceSet([Fence("nf", "no_fly", SQUARE, validity=NIGHT)]))
    state: dict[str, Any] = {}
    detects = [
        [e.detect for e in tracker.track_one(state, "d-1", "op-1", 113.705, LAT, 50, local_ms(5, m))] for m in (58, 59)
    ]
    detects.append([e.detect for e in tracker.track_one(state, "d-1", "op-1", 113.705, LAT, 50, local_ms(6))])
    assert detects == [["enter"], ["inside"], ["exit"]]


@pytest.mark.parametrize(
    ("height", "inside"),
    [(10.0, False), (29.9, False), (30.0, True), (75.0, True), (120.0, True), (120.1, False), (None, True)],
)
def test_altitude_floor_and_ceiling(height: float | None, inside: bool) -> None:
    fs = FenceSet([Fence("band", "restricted", SQUARE, floor_m=30, ceiling_m=120)])
    assert bool(fs.fences_at(113.705, LAT, height_m=height)) is inside
    assert bool(fs.fences_at(113.705, LAT)) is True  # without a height, the polygon alone


def test_descending_into_the_band_enters_and_climbing_out_exits() -> None:
    tracker = FenceTracker(FenceSet([Fence("band", "no_fly", SQUARE, floor_m=30, ceiling_m=120)]))
    state: dict[str, Any] = {}
    steps = [150.0, 100.0, 100.0, 130.0]
    got = [[e.detect for e in tracker.track_one(state, "d-1", "op-1", 113.705, LAT, h, NOON)] for h in steps]
    assert got == [[], ["enter"], ["inside"], ["exit"]]


def test_cross_respects_the_height_band() -> None:
    tracker = FenceTracker(FenceSet([Fence("low", "no_fly", SQUARE, ceiling_m=100)]))
    assert fly(tracker, [113.695, 113.715], height=150) == [[], []]  # overflies
    assert fly(tracker, [113.695, 113.715], height=80) == [[], [("low", "cross", "no_fly")]]


# --- metres --------------------------------------------------------------------------------------


def test_local_projection_metres_at_this_latitude() -> None:
    projection = LocalProjection(113.71, 22.8)
    x0, y0 = projection.to_xy(113.70, 22.80)
    x1, _ = projection.to_xy(113.71, 22.80)
    _, y1 = projection.to_xy(113.70, 22.81)
    # by hand: 0.01 deg * (6,371,008.8 m * pi / 180) = 1111.95 m of latitude; times cos(22.8 deg) = 0.92186
    assert x1 - x0 == pytest.approx(1025.07, abs=0.01)
    assert y1 - y0 == pytest.approx(1111.95, abs=0.01)
    assert haversine_m(113.70, 22.80, 113.71, 22.80) == pytest.approx(1025.07, rel=1e-5)


def test_margin_grows_fences_in_metres() -> None:
    fs = FenceSet([Fence("nf", "no_fly", SQUARE)], margin_m=100)
    # 80 m east of the square's east edge (0.01 deg of longitude = 1025.07 m here)
    lon = 113.71 + 0.01 * 80 / 1025.07
    assert [f.id for f in fs.fences_at(lon, LAT)] == ["nf"]
    assert fs.fences_at(lon + 0.01 * 40 / 1025.07, LAT) == []  # 120 m east
    assert FenceSet([Fence("nf", "no_fly", SQUARE)]).fences_at(lon, LAT) == []


# --- GeoJSON ---------------------------------------------------------------------------------------


def feature(fence_id: str, ring: list[list[float]] | None = None, **props: Any) -> dict[str, Any]:
    """Return a fence Feature (the SQUARE ring unless given)."""
    ring = ring or [[113.70, 22.80], [113.71, 22.80], [113.71, 22.81], [113.70, 22.81], [113.70, 22.80]]
    properties = {"id": fence_id, "kind": "no_fly", **props}
    return {"type": "Feature", "properties": properties, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    """Return a FeatureCollection with one good fence first."""
    return {"type": "FeatureCollection", "features": [feature("ok"), *features]}


BOW_TIE = [[113.70, 22.80], [113.71, 22.81], [113.71, 22.80], [113.70, 22.81], [113.70, 22.80]]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"type": "Feature"}, "not a GeoJSON FeatureCollection"),
        (
            collection(feature("bow", BOW_TIE)),
            r"feature 1 \('bow'\): invalid polygon: Self-intersection\[113.705 22.805\]",
        ),
        (collection(feature("k", kind="nofly")), r"feature 1 \('k'\): unknown kind 'nofly', expected one of no_fly"),
        (
            collection(feature("far", [[213.7, 22.8], [113.71, 22.8], [113.71, 22.81], [213.7, 22.8]])),
            r"feature 1 \('far'\): coordinates out of range: longitude 213.7 out of range",
        ),
        (
            collection(
                {
                    "type": "Feature",
                    "properties": {"id": "pt", "kind": "no_fly"},
                    "geometry": {"type": "Point", "coordinates": [113.7, 22.8]},
                }
            ),
            r"feature 1 \('pt'\): geometry must be a Polygon or MultiPolygon, got 'Point'",
        ),
        (
            collection(feature("band", floor_m=100, ceiling_m=50)),
            r"\('band'\): floor_m 100.0 must be below ceiling_m 50",
        ),
        (
            collection(feature("t", valid_from="2026-06-02T00:00", valid_until="2026-06-01T00:00")),
            r"feature 1 \('t'\): bad time range: start .* is not before end",
        ),
        (
            collection(feature("t", valid_from="tomorrow")),
            r"\('t'\): bad time range: valid_from 'tomorrow' is not an ISO 8601",
        ),
        (collection(feature("w", valid_daily="22:00-25:00")), r"\('w'\): bad daily window '22:00-25:00'"),
        (collection(feature("z", valid_daily="22:00-06:00", timezone="Mars/Base")), r"unknown time zone 'Mars/Base'"),
        (collection(feature("ok")), r"feature 1 \('ok'\): duplicate id, also feature 0"),
        (collection(feature("open", [[113.7, 22.8], [113.71, 22.8], [113.71, 22.81], [113.7, 22.81]])), "not closed"),
        ("{not json", "not JSON"),
    ],
)
def test_invalid_geojson_names_the_feature_and_reason(source: Any, message: str) -> None:
    with pytest.raises(FenceError, match=message) as caught:
        load_fences(source)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, GeoError)


def test_geojson_properties_become_the_fence() -> None:
    text = json.dumps(
        collection(
            feature(
                "night", kind="restricted", name="Port at night", floor_m=0, ceiling_m=150, valid_daily="22:00–06:00"
            ),
            feature(
                "area",
                kind="operating_area",
                max_height_agl_m=80,
                valid_from="2026-06-01T08:00+08:00",
                valid_until="2026-06-01T18:00",
            ),
        )
    )
    ok, night, area = load_fences(text)
    assert (ok.kind, ok.floor_m, ok.validity) == ("no_fly", None, None)
    assert (night.name, night.floor_m, night.ceiling_m) == ("Port at night", 0.0, 150.0)
    assert night.validity == Validity(daily_from_s=22 * 3600, daily_to_s=6 * 3600)
    assert area.max_height_agl_m == 80
    assert area.validity is not None and (area.validity.start_ms, area.validity.end_ms) == (local_ms(8), local_ms(18))


def test_shipped_zones_become_fences() -> None:
    fences = fences_from_zones(load_zones(BINHAIWAN_ZONES_FILE))
    assert {f.kind for f in fences} == {"no_fly", "restricted"}
    assert len(fences) == 5
    assert FenceSet(fences).get("restricted-humen-bridge") is not None


# --- the index and the batch path against plain shapely ------------------------------------------------


def random_fences(rng: np.random.Generator, count: int) -> list[Fence]:
    """Return seeded star-shaped (often concave) fences of 30-800 m over a 3 km square, some banded or at night."""
    projection = LocalProjection(113.70, 22.80)
    fences = []
    for i in range(count):
        k = int(rng.integers(5, 14))
        angle = (np.arange(k) + rng.uniform(0, 0.8, k)) * 2 * math.pi / k
        r = rng.uniform(30, 800) * rng.uniform(0.4, 1.0, k)
        centre = rng.uniform(-1500, 1500, 2)
        ring = projection.inverse(np.c_[r * np.cos(angle), r * np.sin(angle)] + centre)
        banded = rng.random() < 0.3
        fences.append(
            Fence(
                f"f{i}",
                ("no_fly", "restricted", "operating_area")[i % 3],  # type: ignore[arg-type]
                Polygon(ring),
                floor_m=20.0 if banded else None,
                ceiling_m=90.0 if banded else None,
                validity=NIGHT if rng.random() < 0.2 else None,
            )
        )
    return fences


@pytest.mark.parametrize("cell_m", [25.0, 50.0, 400.0])
def test_point_and_segment_queries_match_plain_shapely(cell_m: float) -> None:
    rng = np.random.default_rng(7)
    fences = random_fences(rng, 60)
    fs = FenceSet(fences, cell_m=cell_m)
    lon, lat = rng.uniform(113.68, 113.72, 1500), rng.uniform(22.78, 22.82, 1500)
    lon[:5], lat[:5] = 113.70, 22.80  # a point on many grid lines
    point, fence = fs.contains_2d(lon, lat)
    expected = [
        (p, f)
        for p in range(len(lon))
        for f in range(len(fences))
        if fences[f].polygon.intersects(Point(lon[p], lat[p]))
    ]
    assert list(zip(point.tolist(), fence.tolist(), strict=True)) == expected
    lon1, lat1 = lon + rng.normal(0, 0.002, len(lon)), lat + rng.normal(0, 0.002, len(lat))
    segment, fence = fs.query_segments(lon, lat, lon1, lat1)
    lines = [LineString([(lon[s], lat[s]), (lon1[s], lat1[s])]) for s in range(len(lon))]
    expected = [(s, f) for s in range(len(lon)) for f in range(len(fences)) if fences[f].polygon.intersects(lines[s])]
    assert list(zip(segment.tolist(), fence.tolist(), strict=True)) == expected


def reference_events(
    fences: list[Fence], fixes: list[tuple[str, float, float, float, int]]
) -> list[tuple[int, str, str]]:
    """Return (fix, fence id, detect) by the definition, one fix and one fence at a time with plain shapely."""

    def counts(fence: Fence, lon: float, lat: float, height: float, t_ms: int) -> bool:
        return fence.polygon.intersects(Point(lon, lat)) and fence.covers_height(height) and fence.active_at(t_ms)

    last: dict[str, tuple[float, float, float, int]] = {}
    events = []
    for i, (drone, lon, lat, height, t_ms) in enumerate(fixes):
        before = last.get(drone)
        for fence in fences:
            now = counts(fence, lon, lat, height, t_ms)
            was = before is not None and counts(fence, *before)  # as counted at the previous fix
            if now:
                events.append((i, fence.id, "inside" if was else "enter"))
            elif was:
                events.append((i, fence.id, "exit"))
            elif before is not None and (before[0], before[1]) != (lon, lat):
                low, high = min(before[2], height), max(before[2], height)
                floor = -math.inf if fence.floor_m is None else fence.floor_m
                in_band = high >= floor and low <= (math.inf if fence.ceiling_m is None else fence.ceiling_m)
                path = LineString([(before[0], before[1]), (lon, lat)])
                if in_band and fence.active_at(t_ms) and fence.polygon.intersects(path):
                    events.append((i, fence.id, "cross"))
        last[drone] = (lon, lat, height, t_ms)
    return events


def test_batch_tracker_matches_the_definition_and_keeps_state_across_batches() -> None:
    rng = np.random.default_rng(11)
    fences = random_fences(rng, 40)
    drones, steps = 20, 30
    lon = 113.70 + np.cumsum(rng.normal(0, 0.0015, (steps, drones)), axis=0) + rng.uniform(-0.01, 0.01, drones)
    lat = 22.80 + np.cumsum(rng.normal(0, 0.0015, (steps, drones)), axis=0) + rng.uniform(-0.01, 0.01, drones)
    height = np.clip(50 + np.cumsum(rng.normal(0, 15, (steps, drones)), axis=0), 0, 150)
    t_ms = np.repeat(local_ms(21, 59) + np.arange(steps) * 3000, drones)  # the night fences come into force mid-way
    ids = [f"d{d}" for d in range(drones)] * steps
    fixes = list(zip(ids, lon.reshape(-1).tolist(), lat.reshape(-1).tolist(), height.reshape(-1).tolist(),
                     t_ms.tolist(), strict=True))  # fmt: skip
    tracker = FenceTracker(FenceSet(fences, cell_m=60))
    got: list[tuple[int, str, str]] = []
    for lo in range(0, len(fixes), 7 * drones + 3):  # batches that split drones' sequences unevenly
        chunk = fixes[lo : lo + 7 * drones + 3]
        columns = list(zip(*chunk, strict=True))
        batch = FixBatch.from_columns(list(columns[0]), ["op"] * len(chunk), *columns[1:])
        events = tracker.track(batch)
        got += [(lo + i, e.fence_id, e.detect) for i, e in zip(events.fix.tolist(), events.to_list(), strict=True)]
    expected = reference_events(fences, fixes)
    assert sorted(got) == sorted(expected)
    assert {d for _, _, d in got} == {"enter", "inside", "exit", "cross"}


def test_state_is_plain_json_and_restores() -> None:
    tracker = FenceTracker(FenceSet([Fence("nf", "no_fly", SQUARE)]))
    tracker.track(FixBatch.from_columns(["d-1"], ["op-1"], [113.705], [LAT], [-1000.0], [NOON]))
    state = tracker.state("d-1")
    assert state == {"inside": ["nf"], "fix": [113.705, LAT, None, NOON]}  # -1000 m is Remote ID's unknown
    other = FenceTracker(FenceSet([Fence("nf", "no_fly", SQUARE)]))
    other.restore("d-1", json.loads(json.dumps(state)))
    events = other.track(FixBatch.from_columns(["d-1"], ["op-1"], [113.715], [LAT], [50.0], [NOON + 1000]))
    assert [(e.fence_id, e.detect) for e in events.to_list()] == [("nf", "exit")]
    assert tracker.state("never-seen") is None


def test_an_empty_fence_set_answers_nothing() -> None:
    fs = FenceSet([])
    assert fs.fences_at(113.7, 22.8) == [] and fs.fences_crossed(113.7, 22.8, 113.8, 22.9) == []
    assert fly(FenceTracker(fs), [113.70, 113.71]) == [[], []]


def test_fixes_are_checked_at_the_edge() -> None:
    with pytest.raises(GeoError, match="out of range"):
        FixBatch.from_columns(["d"], ["o"], [113.7], [91.0], [10.0], [0])
    with pytest.raises(GeoError, match="expected 2"):
        FixBatch.from_columns(["d", "e"], ["o", "o"], [113.7], [22.8], [10.0], [0])
    assert shapely.is_valid(SQUARE)
