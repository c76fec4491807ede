"""Streaming anomaly scores for one sensor series (speed, occupancy or travel time), one reading at a time.

The score of a reading depends only on it and the readings before it (no look-ahead). The state of a series
is a small dict of numbers (fixed size, JSON-able) that the worker can keep in Redis per sensor; the
functions here are pure and do no I/O.

The detector is a robust z-score: a Huber-clipped exponentially weighted baseline and a clipped mean
absolute deviation as its scale, so a single outlier moves neither by more than `clip` scale units. The
z-score of a reading, or of its short-term level when that drifts away from the baseline, becomes a score in
[0, 1) through 1 - exp(-z / temperature). Once a score reaches `alarm_score`, scores are damped for
`cooldown` readings: one incident is reported once, not at every slow reading of it.

The "robust-z-envelope" detector also keeps an envelope of the series' recent extremes: an
upper and a lower bound that jump to any reading beyond them and otherwise relax back towards the baseline
with a half-life of `envelope_half_life` readings. A reading inside that envelope is no more extreme than
one the series showed lately, so its z-score counts `inside_weight` times: a sensor that spikes every day
stops alarming at each spike, while a deviation beyond anything recent still scores in full.

The "robust-z-long-envelope" detector (the default) remembers extremes for longer (a half-life of 1000
readings) but moves its envelope only `envelope_jump` (a quarter) of the way to a reading beyond it: spikes
of a size the series repeats keep the envelope wide for days, while one freak reading does not hide every
smaller deviation after it.

The "robust-z-envelope-share" detector (the default) is the long envelope with one more bound: inside the
envelope, a reading's z-score counts at most `envelope_z` times its distance from the baseline as a share of
the envelope's width on that side. A series that is quiet between large spikes has a small scale, so every
middling spike had a z-score near the largest ones'; measured against the spikes the series has shown lately,
a spike half their size scores about 0.4 instead of near 1. A reading at the envelope's edge scores at most
1 - exp(-envelope_z / temperature) (0.63); readings beyond the envelope score as before.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from streams.exceptions import CitystreamError


class SeriesInputError(CitystreamError):
    """A series row is not `timestamp,value` with a finite number; the message names the line."""


@dataclass(frozen=True)
class AnomalyParams:
    """The settings of one detector; the same for every series (none are learnt from labels)."""

    baseline_weight: float = 0.01
    level_weight: float = 0.5
    level_gain: float = 0.0
    clip: float = 4.0
    warmup: int = 30
    temperature: float = 8.0
    alarm_score: float = 0.6
    cooldown: int = 20
    damping: float = 0.0
    envelope_half_life: float = 0.0  # 0: no envelope, every reading's z-score counts in full
    inside_weight: float = 1.0
    envelope_jump: float = 1.0  # share of the way the envelope moves to a reading beyond it
    envelope_z: float = 0.0  # > 0: inside the envelope, |z| counts at most this times the reading's share of its width


DETECTORS: dict[str, AnomalyParams] = {
    "robust-z": AnomalyParams(),
    "robust-z-no-cooldown": AnomalyParams(cooldown=0),
    "robust-z-envelope": AnomalyParams(envelope_half_life=300.0, inside_weight=0.5),
    "robust-z-long-envelope": AnomalyParams(envelope_half_life=1000.0, inside_weight=0.5, envelope_jump=0.25),
    "robust-z-envelope-share": AnomalyParams(
        envelope_half_life=1000.0, inside_weight=0.5, envelope_jump=0.25, envelope_z=8.0
    ),
}
DEFAULT_DETECTOR = "robust-z-envelope-share"


def detector_params(name: str) -> AnomalyParams:
    """Return the settings of a named detector, or fail listing the known names."""
    try:
        return DETECTORS[name]
    except KeyError:
        raise SeriesInputError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}") from None


def initial_state() -> dict[str, Any]:
    """Return the state of a series that has seen no reading yet."""
    return {"n": 0, "base": 0.0, "scale": 0.0, "level": 0.0, "upper": 0.0, "lower": 0.0, "since_alarm": -1}


def score_reading(state: dict[str, Any], value: float, params: AnomalyParams) -> float:
    """Score one reading in [0, 1) against the series state, then fold the reading into that state."""
    if not math.isfinite(value):
        raise ValueError(f"reading is not a finite number: {value!r}")
    n = state["n"]
    state["n"] = n + 1
    if n == 0:
        state["base"] = state["level"] = state["upper"] = state["lower"] = value
        state["scale"] = 0.05 * abs(value) + 1e-3
        return 0.0
    base, level = state["base"], state["level"]
    scale = max(state["scale"], 1e-6)
    residual = value - base
    z = residual / scale
    level += params.level_weight * (value - level)
    drift = params.level_gain * abs(level - base) / scale
    # Huber step: a reading moves the baseline and its scale by at most `clip` scale units.
    clipped = max(-params.clip, min(params.clip, z))
    state["base"] = base + params.baseline_weight * clipped * scale
    state["scale"] = scale + params.baseline_weight * (min(abs(residual), params.clip * scale) - scale)
    state["level"] = level
    magnitude = _envelope_magnitude(state, value, base, max(abs(z), drift), params)
    if n < params.warmup:
        return 0.0
    score = 1.0 - math.exp(-magnitude / params.temperature)
    since = state["since_alarm"]
    if 0 <= since < params.cooldown:
        state["since_alarm"] = since + 1
        return score * params.damping
    if params.cooldown and score >= params.alarm_score:
        state["since_alarm"] = 0
    else:
        state["since_alarm"] = -1
    return score


def _envelope_magnitude(
    state: dict[str, Any], value: float, base: float, magnitude: float, params: AnomalyParams
) -> float:
    """Return how much the reading's z-score `magnitude` (against `base`) counts, then move the envelope.

    Beyond the recent extremes it counts in full; inside them `inside_weight` times and, with `envelope_z`
    set, at most `envelope_z` times the reading's share of the envelope's width on its side of the baseline:
    a reading that is a small part of the series' recent extremes does not score high just because the
    series is quiet between its spikes (the MAD scale is small).
    """
    if params.envelope_half_life <= 0:
        return magnitude
    upper, lower = state["upper"], state["lower"]
    if value > upper or value < lower:
        out = magnitude
    else:
        out = params.inside_weight * magnitude
        if params.envelope_z > 0:
            width = upper - base if value >= base else base - lower
            out = min(out, params.envelope_z * abs(value - base) / max(width, 1e-12))
    keep = 0.5 ** (1.0 / params.envelope_half_life)
    base = state["base"]  # the updated baseline: the envelope relaxes towards it
    upper = base + keep * (upper - base)
    lower = base + keep * (lower - base)
    state["upper"] = upper + params.envelope_jump * max(value - upper, 0.0)
    state["lower"] = lower + params.envelope_jump * min(value - lower, 0.0)
    return out


TRAVEL_TIME_CAP_S = 3600.0  # a stopped link's travel time counts as one hour, not infinity


def link_travel_time_s(link_m: float, speed_kmh: float) -> float:
    """Return the seconds a vehicle at `speed_kmh` needs for a link of `link_m` metres (capped)."""
    if speed_kmh <= 0:
        return TRAVEL_TIME_CAP_S
    return min(link_m * 3.6 / speed_kmh, TRAVEL_TIME_CAP_S)


def score_readings(states: dict[str, Any], values: dict[str, float], params: AnomalyParams) -> float:
    """Score one reading's series (speed, occupancy, travel time...), each against its own state; return the
    highest score. A series seen for the first time starts from `initial_state()`.
    """
    best = 0.0
    for name, value in values.items():
        state = states.get(name)
        if state is None:
            state = states[name] = initial_state()
        best = max(best, score_reading(state, value, params))
    return best


def score_series(values: Iterable[float], detector: str | AnomalyParams = DEFAULT_DETECTOR) -> list[float]:
    """Score every reading of one series in order with a fresh state, as a worker would."""
    params = detector if isinstance(detector, AnomalyParams) else detector_params(detector)
    state = initial_state()
    return [score_reading(state, value, params) for value in values]


def parse_series_rows(lines: Iterable[str]) -> list[tuple[str, str]]:
    """Parse a `timestamp,value` CSV (header first) into (timestamp, value text) pairs, or fail naming the line."""
    rows = []
    for number, line in enumerate(lines, start=1):
        if number == 1:
            continue
        text = line.strip()
        if not text:
            continue
        fields = [field.strip() for field in text.split(",")]
        if len(fields) != 2 or not fields[0]:
            raise SeriesInputError(f"line {number}: expected `timestamp,value`, got {text!r}")
        try:
            value = float(fields[1])
        except ValueError:
            raise SeriesInputError(f"line {number}: value {fields[1]!r} is not a number") from None
        if not math.isfinite(value):
            raise SeriesInputError(f"line {number}: value {fields[1]!r} is not a finite number")
        rows.append((fields[0], fields[1]))
    return rows
