"""The anomaly score per reading in the traffic processor: scored series, window fields, bounded state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from processors.metrics import MAX_FIELDS, WindowSums, combine_windows
from processors.outcome import BatchOutcome
from processors.traffic.aggregations import ANOMALY_MAX_FIELD, traffic_metrics
from processors.traffic.anomaly import DETECTORS, initial_state, link_travel_time_s, score_reading, score_series
from processors.traffic.processor import TrafficProcessor
from processors.traffic.sites import parse_sites
from streams.exceptions import ConfigError
from streams.models import Domain, TrafficReading
from streams.settings import Settings, TrafficRules

T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=12)
SITES = parse_sites("sensor_id,road_segment,direction,position_m,lane\nUP,seg-7,forward,0,1\nAT,seg-7,forward,500,1\n")


def reading(sensor_id: str, i: int, speed: float, occupancy: float = 0.1) -> TrafficReading:
    return TrafficReading(
        sensor_id=sensor_id,
        observed_at=T0 + i * timedelta(seconds=30),
        lat=22.85,
        lon=113.70,
        road_segment="seg-7",
        lane=1,
        vehicle_count=8,
        avg_speed_kmh=speed,
        occupancy=occupancy,
    )


def steady(i: int) -> float:
    return 70.0 + (i % 5)  # a free-flowing detector with a little noise


def feed(processor: TrafficProcessor, readings: list[TrafficReading], state: dict[str, Any]) -> BatchOutcome:
    out = BatchOutcome(Domain.traffic, 60, zone_sizes=(60,), source_sizes=(60,))
    for r in readings:
        processor.process(r, "humen-town", state, out, True)
    return out


def window_metrics(out: BatchOutcome, group: str) -> list[dict[str, float]]:
    """Return each of a group's windows' metrics, with its maxima merged into its sums as Redis holds them."""
    merged = []
    for key, sums in sorted(out.sums.items()):
        if key[1] == group:
            fields = {**sums, **out.maxima.get(key, {})}
            merged.append({m: v for m, (v, _) in traffic_metrics(fields, 0, 60).items()})
    return merged


def test_a_collapse_after_a_steady_hour_scores_high_and_steady_readings_score_low() -> None:
    processor = TrafficProcessor(Settings(environment="test"), SITES)
    state: dict[str, Any] = {}
    calm = feed(processor, [reading("AT", i, steady(i)) for i in range(120)], state)
    late_calm = window_metrics(calm, "sensor:AT")[16:]  # after the warm-up of 30 readings
    assert all(w["anomalous_readings"] == 0 for w in late_calm)
    assert max(w["anomaly_score_max"] for w in late_calm) < 0.6
    crash = feed(processor, [reading("AT", 120, 5.0, occupancy=0.7)], state)
    (window,) = window_metrics(crash, "sensor:AT")
    assert window["anomaly_score_max"] >= 0.6
    assert window["anomalous_readings"] == 1


def test_speed_occupancy_and_the_links_travel_time_are_scored_as_the_series_code_scores_them() -> None:
    processor = TrafficProcessor(Settings(environment="test"), SITES)
    state: dict[str, Any] = {}
    speeds = [steady(i) if i != 80 else 12.0 for i in range(100)]
    feed(processor, [reading("AT", i, speed) for i, speed in enumerate(speeds)], state)
    params = DETECTORS["robust-z-long-envelope"]
    expected_series = {
        "speed": score_series(speeds, params),
        "occupancy": score_series([0.1] * len(speeds), params),
        "travel_time": score_series([link_travel_time_s(500, s) for s in speeds], params),
    }
    assert set(state["anomaly"]) == set(expected_series)  # AT has an upstream neighbour 500 m away
    replay: dict[str, Any] = {}
    for i, speed in enumerate(speeds):
        got = processor.anomaly_score(reading("AT", i, speed), replay)
        assert got == max(series[i] for series in expected_series.values())


def test_the_first_detector_of_a_road_has_no_link_to_time() -> None:
    processor = TrafficProcessor(Settings(environment="test"), SITES)
    state: dict[str, Any] = {}
    feed(processor, [reading("UP", i, steady(i)) for i in range(3)], state)
    assert set(state["anomaly"]) == {"speed", "occupancy"}


def test_state_is_bounded_json_and_resuming_from_it_scores_the_same() -> None:
    processor = TrafficProcessor(Settings(environment="test"), SITES)
    speeds = [steady(i) if i % 97 else 15.0 for i in range(600)]
    straight: dict[str, Any] = {}
    whole = [processor.anomaly_score(reading("AT", i, s), straight) for i, s in enumerate(speeds)]
    resumed: dict[str, Any] = {}
    parts = []
    for i, s in enumerate(speeds):
        if i % 50 == 0:  # as a worker does: the state goes to Redis as JSON and comes back
            resumed = orjson.loads(orjson.dumps(resumed))
        parts.append(processor.anomaly_score(reading("AT", i, s), resumed))
    assert parts == whole
    assert all(0.0 <= s < 1.0 for s in whole)
    assert all(set(series) == set(initial_state()) for series in straight["anomaly"].values())
    assert len(orjson.dumps(straight["anomaly"])) < 600


def test_an_out_of_order_reading_is_counted_but_not_scored() -> None:
    processor = TrafficProcessor(Settings(environment="test"), SITES)
    state: dict[str, Any] = {}
    feed(processor, [reading("AT", i, steady(i)) for i in range(3)], state)
    before = orjson.dumps(state["anomaly"])
    out = BatchOutcome(Domain.traffic, 60)
    processor.process(reading("AT", 1, 3.0), "humen-town", state, out, False)
    assert orjson.dumps(state["anomaly"]) == before
    assert not out.maxima
    assert sum(s["n"] for s in out.sums.values()) == 1


def test_windows_combine_the_top_score_as_a_maximum() -> None:
    windows = [
        WindowSums(Domain.traffic, 60, "z", 0, {"n": 2, "anom_n": 1, ANOMALY_MAX_FIELD: 730}),
        WindowSums(Domain.traffic, 60, "z", 60_000, {"n": 3, "anom_n": 0, ANOMALY_MAX_FIELD: 210}),
    ]
    sums, _ = combine_windows(windows)
    assert ANOMALY_MAX_FIELD in MAX_FIELDS
    assert sums[ANOMALY_MAX_FIELD] == 730
    metrics = traffic_metrics(sums, 0, 120)
    assert metrics["anomaly_score_max"] == (0.73, "score")
    assert metrics["anomalous_readings"] == (1.0, "readings")


def test_an_unknown_detector_stops_the_processor_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="robust-z-long-envelope"):
        TrafficProcessor(Settings(environment="test", traffic=TrafficRules(anomaly_detector="nope")), SITES)


def test_a_stopped_link_costs_an_hour_not_infinity() -> None:
    assert link_travel_time_s(500, 0.0) == 3600.0
    assert link_travel_time_s(500, 36.0) == pytest.approx(50.0)
    state = initial_state()
    assert 0.0 <= score_reading(state, link_travel_time_s(500, 0.0), DETECTORS["robust-z"]) < 1.0


def test_a_spike_smaller_than_the_series_recent_spikes_is_bounded_by_its_share_of_them() -> None:
    # A travel time quiet at 100 s with a 1,000 s spike every 50 readings: its scale stays small.
    calm = [100.0 + (i % 3) for i in range(50)]
    series = [*calm, 1000.0] * 8 + [*calm, 550.0, *calm[:30], 3000.0]
    share, long = (score_series(series, name) for name in ("robust-z-envelope-share", "robust-z-long-envelope"))
    half = len(series) - 32  # the 550 s spike: half of what the series showed lately
    assert long[half] > 0.9  # measured against the calm readings' scale it looked as bad as the big spikes
    assert share[half] < 0.5  # against the recent spikes it is about half of one
    assert share[-1] == long[-1] > 0.9  # beyond anything recent (and past the cooldown): scored in full by both
    edge = DETECTORS["robust-z-envelope-share"]
    assert max(s for i, s in enumerate(share) if series[i] < 1000) < 1 - 2.718281828 ** (
        -edge.envelope_z / edge.temperature
    )
