"""The fast spatial pre-filters of the drone path agree with brute force on random input."""

from __future__ import annotations

import random

import shapely

from geo.metric import haversine_m
from processors.drone.airspace import BoxGrid
from processors.drone.separation import NearIndex


def test_box_grid_meets_exactly_the_boxes_shapely_finds() -> None:
    rng = random.Random(7)
    boxes = []
    for _ in range(40):
        w, s = 113.6 + rng.random() * 0.3, 22.7 + rng.random() * 0.2
        boxes.append((w, s, w + rng.random() * 0.05, s + rng.random() * 0.05))
    grid = BoxGrid(boxes)
    tree = shapely.STRtree([shapely.box(*b) for b in boxes])
    for i in range(3000):
        w, s = 113.55 + rng.random() * 0.4, 22.65 + rng.random() * 0.3
        size = 0.0 if i % 3 == 0 else rng.random() * (0.2 if i % 10 == 0 else 0.005)
        query = (w, s, w + size, s + size)
        assert grid.meets(*query) == bool(len(tree.query(shapely.box(*query)))), query


def test_near_index_finds_every_fix_within_the_radius_in_the_slices_around() -> None:
    rng = random.Random(11)
    radius, window_ms = 50.0, 5000
    index = NearIndex(radius, window_ms)
    fixes = []
    for i in range(2000):
        fix = (f"d{i}", rng.randrange(0, 60_000), None, 113.7 + rng.random() * 0.004, 22.8 + rng.random() * 0.004)
        fixes.append(fix)
        index.add(fix)
    for _ in range(300):
        lon, lat, t = 113.7 + rng.random() * 0.004, 22.8 + rng.random() * 0.004, rng.randrange(0, 60_000)
        s = t // window_ms
        expected = {
            f[0] for f in fixes if haversine_m(lon, lat, f[3], f[4]) < radius and abs(f[1] // window_ms - s) <= 1
        }
        assert {f[0] for f, _ in index.near(lon, lat, t, index.cells_near(lon, lat))} == expected


def test_near_within_a_time_gap_is_the_full_answer_filtered_in_the_same_order() -> None:
    rng = random.Random(5)
    radius, window_ms = 50.0, 5000
    index = NearIndex(radius, window_ms)
    for i in range(3000):  # a dense cluster: many fixes in each cell, as a swarm gives
        index.add(
            (f"d{i % 40}", rng.randrange(0, 60_000), None, 113.7 + rng.random() * 0.002, 22.8 + rng.random() * 0.002)
        )
    for _ in range(300):
        lon, lat, t = 113.7 + rng.random() * 0.002, 22.8 + rng.random() * 0.002, rng.randrange(0, 60_000)
        cells = index.cells_near(lon, lat)
        full = index.near(lon, lat, t, cells)
        assert index.near(lon, lat, t, cells, window_ms) == [(f, d) for f, d in full if abs(f[1] - t) <= window_ms]
