"""Measure geofencing throughput: citystream's FenceTracker against a plain loop of shapely.contains.

Builds 10,000 synthetic fences over the Binhaiwan Bay Area (seeded: star-shaped and L-shaped concave polygons
and rotated rectangles, 25 m to 2 km across, with height bands, night-only validity and permits), flies drones
along random tracks (one fix a second) and feeds their fixes to `FenceTracker.track` in time-ordered batches,
so enter/exit/inside/cross bookkeeping and per-drone state are part of the figure. Then, in the same run, it
times the naive approach (for each position, loop over every polygon calling `shapely.contains`) on a small
sample of positions and extrapolates, and a bulk `STRtree.query` for reference. Progress goes to stderr, the
table to stdout. Not a timed test: the figures go into bench/RESULTS.md.

    nice -n 10 .venv/bin/python bench/geofence.py [--fences 10000] [--drones 2000] [--seconds 100]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon

from geo.fences import DETECTS, Fence, FenceKind, FenceSet, FenceTracker, FixBatch, Validity
from geo.metric import LocalProjection

WEST, SOUTH, EAST, NORTH = 113.60, 22.70, 113.82, 22.92  # the demo area of geo/data/binhaiwan_zones.geojson
PROJECTION = LocalProjection((WEST + EAST) / 2, (SOUTH + NORTH) / 2)
START_MS = int(datetime(2026, 6, 1, 13, 0, 30, tzinfo=UTC).timestamp() * 1000)  # 21:00:30 in Dongguan
NIGHT = Validity(daily_from_s=22 * 3600, daily_to_s=6 * 3600)  # 22:00-06:00 Asia/Shanghai


def progress(message: str) -> None:
    """Print a progress line to stderr."""
    print(message, file=sys.stderr, flush=True)


def shape_m(rng: np.random.Generator, radius: float) -> NDArray[np.float64]:
    """Return the exterior ring, in metres about (0, 0), of a star, an L or a rotated rectangle."""
    style = rng.random()
    if style < 0.6:  # star-shaped: concave once radii vary, always simple since angles increase
        k = int(rng.integers(6, 25))
        angle = (np.arange(k) + rng.uniform(0, 0.8, k)) * 2 * math.pi / k  # gaps under pi: a simple ring
        r = radius * rng.uniform(0.45, 1.0, k)
        return np.c_[r * np.cos(angle), r * np.sin(angle)]
    if style < 0.8:  # L-shape
        a, b = radius, radius * rng.uniform(0.3, 0.7)
        ring = np.array([[-a, -a], [a, -a], [a, -a + b], [-a + b, -a + b], [-a + b, a], [-a, a]])
    else:
        a, b = radius, radius * rng.uniform(0.2, 1.0)
        ring = np.array([[-a, -b], [a, -b], [a, b], [-a, b]])
    turn = rng.uniform(0, math.pi)
    rotation = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    return ring @ rotation.T


def build_fences(count: int, rng: np.random.Generator) -> list[Fence]:
    """Return `count` fences: 78 % small (25-150 m), 20 % medium (150-500 m), 2 % large (0.6-2 km) in radius."""
    size = rng.random(count)
    low = np.where(size < 0.78, 25.0, np.where(size < 0.98, 150.0, 600.0))
    high = np.where(size < 0.78, 150.0, np.where(size < 0.98, 500.0, 2000.0))
    radius = np.exp(rng.uniform(np.log(low), np.log(high)))
    centre_lon, centre_lat = rng.uniform(WEST, EAST, count), rng.uniform(SOUTH, NORTH, count)
    kinds: list[FenceKind] = ["no_fly", "restricted", "operating_area"]
    fences = []
    for i in range(count):
        x0, y0 = PROJECTION.to_xy(centre_lon[i], centre_lat[i])
        ring = PROJECTION.inverse(shape_m(rng, float(radius[i])) + np.array([x0, y0]))
        kind = kinds[int(rng.choice(3, p=[0.6, 0.3, 0.1]))]
        banded = rng.random() < 0.2
        fences.append(
            Fence(
                id=f"fence-{i:05d}",
                kind=kind,
                polygon=Polygon(ring),
                floor_m=float(rng.choice([0.0, 30.0])) if banded else None,
                ceiling_m=float(rng.uniform(60, 200)) if banded else None,
                max_height_agl_m=60.0 if rng.random() < 0.05 else None,
                validity=NIGHT if rng.random() < 0.1 else None,
            )
        )
    return fences


def build_permits(fences: list[Fence], operators: int, rng: np.random.Generator) -> dict[str, set[str]]:
    """Give a fifth of the restricted zones and of the operating areas a few permit-holding operators."""
    permits: dict[str, set[str]] = {}
    for fence in fences:
        if fence.kind != "no_fly" and rng.random() < 0.2:
            permits[fence.id] = {f"op-{int(o):04d}" for o in rng.integers(0, operators, 3)}
    return permits


def fly(drones: int, seconds: int, rng: np.random.Generator) -> tuple[NDArray[np.float64], ...]:
    """Return (lon, lat, height) arrays shaped (seconds, drones): random-walk tracks at 4-20 m/s, one fix a second."""
    x = np.empty((seconds, drones))
    y, h = np.empty_like(x), np.empty_like(x)
    width, height = PROJECTION.to_xy(EAST, NORTH)
    x[0], y[0] = rng.uniform(-width, width, drones), rng.uniform(-height, height, drones)
    h[0] = rng.uniform(10, 150, drones)
    speed, heading = rng.uniform(4, 20, drones), rng.uniform(0, 2 * math.pi, drones)
    for t in range(1, seconds):
        heading += rng.normal(0, 0.15, drones)
        x[t] = np.clip(x[t - 1] + speed * np.cos(heading), -width, width)
        y[t] = np.clip(y[t - 1] + speed * np.sin(heading), -height, height)
        h[t] = np.clip(h[t - 1] + rng.normal(0, 1.5, drones), 5, 200)
    lonlat = PROJECTION.inverse(np.c_[x.reshape(-1), y.reshape(-1)])
    return lonlat[:, 0].reshape(x.shape), lonlat[:, 1].reshape(x.shape), h


def run_tracker(
    tracker: FenceTracker, tracks: tuple[NDArray[np.float64], ...], operators: int, batch_s: int
) -> tuple[float, float, Counter[str], int]:
    """Feed the fixes to the tracker in batches of `batch_s` seconds; return wall s, CPU s, events, alerts."""
    lon, lat, height = tracks
    seconds, drones = lon.shape
    drone_ids = [f"uas-{d:05d}" for d in range(drones)]
    operator_ids = [f"op-{d % operators:04d}" for d in range(drones)]
    batches = []
    for t0 in range(0, seconds, batch_s):
        steps = min(batch_s, seconds - t0)
        times = START_MS + np.repeat(np.arange(t0, t0 + steps) * 1000, drones)
        columns = (lon[t0 : t0 + steps], lat[t0 : t0 + steps], height[t0 : t0 + steps])
        batches.append((drone_ids * steps, operator_ids * steps, *(c.reshape(-1) for c in columns), times))
    counts: Counter[str] = Counter()
    alerts = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for number, (ids, ops, lons, lats, heights, times) in enumerate(batches, 1):
        events = tracker.track(FixBatch.from_columns(ids, ops, lons, lats, heights, times))
        counts.update(dict(zip(DETECTS, np.bincount(events.detect, minlength=4).tolist(), strict=True)))
        alerts += int(events.alert.sum())
        if number % 5 == 0 or number == len(batches):
            progress(f"  tracker: batch {number}/{len(batches)}")
    return time.perf_counter() - wall, time.process_time() - cpu, counts, alerts


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """Run work once and return its wall and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def plain_loop(polygons: list[Polygon], lons: NDArray[np.float64], lats: NDArray[np.float64]) -> int:
    """For each position, loop over every polygon with shapely.contains; return the containments found."""
    found = 0
    for i, (lon, lat) in enumerate(zip(lons.tolist(), lats.tolist(), strict=True)):
        point = shapely.Point(lon, lat)
        found += sum(1 for polygon in polygons if shapely.contains(polygon, point))
        if (i + 1) % 25 == 0:
            progress(f"  plain loop: {i + 1}/{len(lons)} positions")
    return found


def main() -> None:
    """Build fences and tracks, time the tracker, the plain loop and STRtree.query, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fences", type=int, default=10_000)
    parser.add_argument("--drones", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=100, help="track length: one fix per drone per second")
    parser.add_argument("--batch-seconds", type=int, default=5, help="seconds of fixes per tracker batch")
    parser.add_argument("--sample", type=int, default=100, help="positions timed with the plain loop")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    operators = max(args.drones // 4, 1)

    began = time.perf_counter()
    fences = build_fences(args.fences, rng)
    progress(f"built {len(fences):,} fences in {time.perf_counter() - began:.1f}s")
    began = time.perf_counter()
    fence_set = FenceSet(fences)
    progress(f"indexed them in {time.perf_counter() - began:.1f}s (grid of 50 m cells)")
    tracker = FenceTracker(fence_set, build_permits(fences, operators, rng))
    tracks = fly(args.drones, args.seconds, rng)
    positions = tracks[0].size
    progress(f"flew {args.drones:,} drones for {args.seconds} s: {positions:,} positions")

    progress("timing FenceTracker.track ...")
    wall, cpu, counts, alerts = run_tracker(tracker, tracks, operators, args.batch_seconds)

    flat_lon, flat_lat = tracks[0].reshape(-1), tracks[1].reshape(-1)
    progress("timing shapely STRtree.query(points, 'intersects') ...")
    tree = shapely.STRtree([f.polygon for f in fences])
    pairs: list[NDArray[np.intp]] = []
    tree_wall, tree_cpu = timed(lambda: pairs.append(tree.query(shapely.points(flat_lon, flat_lat), "intersects")))

    sample = rng.choice(positions, size=min(args.sample, positions), replace=False)
    progress(f"timing the plain loop on {len(sample)} positions x {len(fences):,} polygons ...")
    found: list[int] = []
    polygons = [f.polygon for f in fences]
    loop_wall, loop_cpu = timed(lambda: found.append(plain_loop(polygons, flat_lon[sample], flat_lat[sample])))
    _, ours = fence_set.contains_2d(flat_lon[sample], flat_lat[sample])

    rows = [
        ("(1) citystream FenceTracker.track: containment, height bands, validity, permits, "
         "enter/exit/inside/cross, per-drone state", positions, wall, cpu),
        ("(2) plain loop over the polygons, shapely.contains (sample, extrapolated)", len(sample), loop_wall, loop_cpu),
        ("(3) shapely STRtree.query(points, 'intersects'), containment only", positions, tree_wall, tree_cpu),
    ]  # fmt: skip
    print(
        f"\n{len(fences):,} fences, {args.drones:,} drones x {args.seconds} s = {positions:,} positions "
        f"in batches of {args.batch_seconds} s; one process, one thread, nice 10 on a shared 2-core machine\n"
    )
    print("| method | positions | wall s | CPU s | positions/s (wall) | positions/s (CPU) |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, count, seconds, cpu_s in rows:
        print(f"| {label} | {count:,} | {seconds:.2f} | {cpu_s:.2f} | {count / seconds:,.0f} | {count / cpu_s:,.0f} |")
    rate = [count / cpu_s for _, count, _, cpu_s in rows]
    print(
        f"\n(1)/(2) = {rate[0] / rate[1]:,.0f}x   (1)/(3) = {rate[0] / rate[2]:.2f}x   (by CPU time)"
        f"\n(2) is extrapolated from {len(sample)} random positions, each tested against all {len(fences):,} polygons"
        f" ({found[0]} containments; the grid index found {len(ours)} on the same sample, boundary included)."
        f"\n(2) and (3) only answer which polygons hold a point; (1) also does the bookkeeping counted below."
        f"\nfences per position (2-D): {pairs[0].shape[1] / positions:.2f}   events: "
        + ", ".join(f"{d} {counts[d]:,}" for d in DETECTS)
        + f"   alerts: {alerts:,}"
    )


if __name__ == "__main__":
    main()
