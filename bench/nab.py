"""Score citystream's streaming anomaly detector on NAB's realTraffic loop-detector series.

    python bench/nab.py [--detector NAME] [--data bench/data/nab] [--vary FIELD=V1,V2,... ...]

Runs the detector of `processors/traffic/anomaly.py` over the seven labelled realTraffic files of the
Numenta Anomaly Benchmark, through the same code as `citystream score-csv`, then scores it the way NAB's
`nab/sweeper.py` does: windows from `labels/combined_windows.json`, the first 15% of each file is a
probationary period, a detection inside a window earns the scaled sigmoid of its relative position (only
the earliest one per window counts), every detection outside a window costs the FP weight scaled by the
sigmoid of its distance after the preceding window, and a missed window costs the FN weight. One threshold
per profile is swept over all files together; the score is normalised as 100 * (raw - null) / (perfect -
null), where the null detector never detects and the perfect one detects each window at its first point.
A benchmark, not a test: it prints a table. `--vary` then prints the scores with one setting of the
detector changed at a time, to show how sensitive the scores are to it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from processors.traffic.anomaly import (  # noqa: E402
    DEFAULT_DETECTOR,
    DETECTORS,
    AnomalyParams,
    detector_params,
    parse_series_rows,
    score_series,
)

DATA = REPO / "bench" / "data" / "nab"
CORPUS = "realTraffic"
PROBATION_FRACTION = 0.15
PROBATION_CAP_ROWS = 5000


@dataclass(frozen=True)
class CostMatrix:
    """The weights of one NAB profile."""

    tp: float
    fp: float
    fn: float


@dataclass(frozen=True)
class ScoredRow:
    """One row after probation: its anomaly score, the window it counts for (None: outside) and its weight."""

    anomaly_score: float
    window: str | None
    weight: float


@dataclass(frozen=True)
class ThresholdResult:
    """The raw score and counts of detections when scores >= threshold are detections."""

    threshold: float
    score: float
    tp: int
    fp: int
    fn: int
    tn: int


def scaled_sigmoid(position: float) -> float:
    """Return NAB's scaled sigmoid: +0.987 at a window's left edge, 0 at its right edge, -1 far after it."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_length(rows: int, fraction: float = PROBATION_FRACTION) -> int:
    """Return how many leading rows NAB ignores: floor(15% of rows), at most 15% of 5000 rows."""
    return int(min(math.floor(fraction * rows), fraction * PROBATION_CAP_ROWS))


def parse_time(text: str) -> datetime:
    """Parse a NAB timestamp (data files and labels use slightly different formats)."""
    return datetime.fromisoformat(text.strip())


def window_indices(timestamps: list[datetime], windows: list[tuple[datetime, datetime]]) -> list[tuple[int, int]]:
    """Map each labelled window to the first and last row index it covers."""
    spans = []
    for start, end in windows:
        inside = [i for i, t in enumerate(timestamps) if start <= t <= end]
        if inside:
            spans.append((inside[0], inside[-1]))
    return spans


def weigh_rows(
    name: str, anomaly_scores: list[float], spans: list[tuple[int, int]], cost: CostMatrix
) -> list[ScoredRow]:
    """Weigh every row after probation as NAB's sweeper does: as a TP inside a window, as an FP outside."""
    max_tp = scaled_sigmoid(-1.0)
    probation = probation_length(len(anomaly_scores))
    window_at: dict[int, tuple[str, int, int]] = {}
    for left, right in spans:
        for i in range(left, right + 1):
            window_at[i] = (f"{name}|{left}", left, right)
    rows = []
    prev_right: int | None = None
    prev_width = 0
    for i, score in enumerate(anomaly_scores):
        where = window_at.get(i)
        if where is not None:
            window, left, right = where
            width = right - left + 1
            weight = scaled_sigmoid(-(right - i + 1) / width) * cost.tp / max_tp
        else:
            window = None
            position = 3.0 if prev_right is None else abs(prev_right - i) / max(prev_width - 1, 1)
            weight = scaled_sigmoid(position) * cost.fp
        if i >= probation:
            rows.append(ScoredRow(score, window, weight))
        if where is not None and i == where[2]:
            prev_right, prev_width = i, where[2] - where[1] + 1
    return rows


def sweep(rows: list[ScoredRow], cost: CostMatrix) -> list[ThresholdResult]:
    """Score every distinct threshold (detections are rows with score >= threshold), highest threshold first."""
    windows = {row.window for row in rows if row.window is not None}
    best_in_window = dict.fromkeys(windows, -cost.fn)
    fp_sum = 0.0
    tp = fp = 0
    fn = sum(1 for row in rows if row.window is not None)
    tn = len(rows) - fn
    results = [ThresholdResult(1.1, -cost.fn * len(windows), 0, 0, fn, tn)]
    ordered = sorted(rows, key=lambda row: row.anomaly_score, reverse=True)
    for i, row in enumerate(ordered):
        if row.window is None:
            fp += 1
            tn -= 1
            fp_sum += row.weight
        else:
            tp += 1
            fn -= 1
            best_in_window[row.window] = max(best_in_window[row.window], row.weight)
        last_of_threshold = i + 1 == len(ordered) or ordered[i + 1].anomaly_score != row.anomaly_score
        if last_of_threshold:
            score = fp_sum + sum(best_in_window.values())
            results.append(ThresholdResult(row.anomaly_score, score, tp, fp, fn, tn))
    return results


def score_at(rows: list[ScoredRow], cost: CostMatrix, threshold: float) -> ThresholdResult:
    """Return the raw score and counts of one threshold (detections: score >= threshold)."""
    result = ThresholdResult(1.1, 0.0, 0, 0, 0, 0)
    for candidate in sweep(rows, cost):
        if candidate.threshold < threshold:
            break
        result = candidate
    return result


def load_profiles(path: Path) -> dict[str, CostMatrix]:
    """Read NAB's config/profiles.json."""
    profiles = json.loads(path.read_text())
    return {
        name: CostMatrix(tp=p["CostMatrix"]["tpWeight"], fp=p["CostMatrix"]["fpWeight"], fn=p["CostMatrix"]["fnWeight"])
        for name, p in profiles.items()
    }


def load_windows(path: Path) -> dict[str, list[tuple[datetime, datetime]]]:
    """Read NAB's labels/combined_windows.json into datetime pairs per relative file path."""
    labels = json.loads(path.read_text())
    return {name: [(parse_time(a), parse_time(b)) for a, b in spans] for name, spans in labels.items()}


def read_series(path: Path) -> tuple[list[str], list[float]]:
    """Read a NAB `timestamp,value` file with the parser `citystream score-csv` uses."""
    with path.open() as handle:
        rows = parse_series_rows(handle)
    return [t for t, _ in rows], [float(v) for _, v in rows]


@dataclass(frozen=True)
class ProfileResult:
    """The swept threshold of one profile, its raw score and counts, and the normalised score."""

    profile: str
    result: ThresholdResult
    null: float
    perfect: float

    @property
    def normalised(self) -> float:
        """Return 100 * (raw - null) / (perfect - null)."""
        return 100.0 * (self.result.score - self.null) / (self.perfect - self.null)


def score_corpus(
    scored: dict[str, tuple[list[datetime], list[float]]],
    windows: dict[str, list[tuple[datetime, datetime]]],
    profiles: dict[str, CostMatrix],
) -> list[ProfileResult]:
    """Sweep one threshold per profile over all files together and normalise the best score."""
    out = []
    for profile, cost in profiles.items():
        rows: list[ScoredRow] = []
        for name, (timestamps, anomaly_scores) in scored.items():
            spans = window_indices(timestamps, windows.get(name, []))
            rows.extend(weigh_rows(name, anomaly_scores, spans, cost))
        results = sweep(rows, cost)
        best = max(results, key=lambda r: (r.score, r.threshold))
        n_windows = len({row.window for row in rows if row.window is not None})
        out.append(ProfileResult(profile, best, null=-cost.fn * n_windows, perfect=cost.tp * n_windows))
    return out


def run(detector: str | AnomalyParams, data: Path, quiet: bool = False) -> list[ProfileResult]:
    """Run the detector (a name or its settings) over every realTraffic file and score it under each NAB profile."""
    windows = load_windows(data / "labels" / "combined_windows.json")
    profiles = load_profiles(data / "config" / "profiles.json")
    scored = {}
    for path in sorted((data / "data" / CORPUS).glob("*.csv")):
        started = time.perf_counter()
        stamps, values = read_series(path)
        scores = score_series(values, detector)
        scored[f"{CORPUS}/{path.name}"] = ([parse_time(t) for t in stamps], scores)
        if not quiet:
            per_reading_us = 1e6 * (time.perf_counter() - started) / max(len(values), 1)
            print(f"scored {path.name}: {len(values)} readings, {per_reading_us:.1f} us/reading", file=sys.stderr)
    return score_corpus(scored, windows, profiles)


def variations(base: AnomalyParams, specs: list[str]) -> list[tuple[str, AnomalyParams]]:
    """Parse `FIELD=V1,V2,...` specs into labelled copies of the settings with that one field changed."""
    types = {f.name: f.type for f in fields(AnomalyParams)}
    out: list[tuple[str, AnomalyParams]] = []
    for spec in specs:
        name, _, values = spec.partition("=")
        if name not in types or not values:
            raise SystemExit(f"--vary {spec!r}: expected FIELD=V1,V2,... with FIELD one of {', '.join(types)}")
        cast = int if types[name] in (int, "int") else float
        out.extend((f"{name}={v}", replace(base, **{name: cast(v)})) for v in values.split(","))  # type: ignore[arg-type]
    return out


def main() -> int:
    """Print the normalised NAB score, threshold and counts of the chosen detector per profile."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=sorted(DETECTORS))
    parser.add_argument("--data", type=Path, default=DATA, help="a NAB checkout or bench/data/nab")
    parser.add_argument("--vary", nargs="*", default=[], metavar="FIELD=V1,V2", help="settings to vary one at a time")
    args = parser.parse_args()
    results = run(args.detector, args.data)
    print(f"NAB realTraffic (7 files), detector={args.detector}")
    print(f"{'profile':<20} {'score':>7} {'threshold':>10} {'raw':>8} {'TP':>4} {'FP':>4} {'FN':>5}")
    for r in results:
        t = r.result
        print(
            f"{r.profile:<20} {r.normalised:>7.1f} {t.threshold:>10.5f} {t.score:>8.3f} {t.tp:>4} {t.fp:>4} {t.fn:>5}"
        )
    if args.vary:
        print(f"\nsensitivity of {args.detector}, one setting changed at a time (normalised scores)")
        print(f"{'setting':<28} {'standard':>9} {'low FP':>7} {'low FN':>7}")
        for label, params in variations(detector_params(args.detector), args.vary):
            scores = [r.normalised for r in run(params, args.data, quiet=True)]
            print(f"{label:<28} {scores[0]:>9.1f} {scores[1]:>7.1f} {scores[2]:>7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
