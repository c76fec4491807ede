"""The incident rule: a sudden collapse at one detector while its upstream neighbour still flows freely."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors.outcome import BatchOutcome
from processors.peers import Peers
from processors.traffic.detectors import CONGESTION, INCIDENT, incident_detector
from processors.traffic.processor import TrafficProcessor, segment_key
from processors.traffic.sites import Site, parse_sites
from streams.models import Alert, AlertStatus, Domain, TrafficReading
from streams.settings import Settings, TrafficRules

# At the start of an hour, so every sequence stays in one hour of the learned baselines.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
STEP = timedelta(seconds=30)
SEGMENT = "seg-7"
SITES = parse_sites(
    "sensor_id,road_segment,direction,position_m,lane\n"
    "UP-L1,seg-7,forward,0,1\n"
    "UP-L2,seg-7,forward,0,2\n"
    "AT-L1,seg-7,forward,500,1\n"
    "AT-L2,seg-7,forward,500,2\n"
)
FREE, JAM = 80.0, 10.0
WARMUP = 6  # free readings before anything happens: the detectors' normal is learned (4 needed)


def reading(sensor_id: str, i: int, speed: float, occupancy: float | None = None, offset_s: int = 0) -> TrafficReading:
    return TrafficReading(
        sensor_id=sensor_id,
        observed_at=T0 + i * STEP + timedelta(seconds=offset_s),
        lat=22.85,
        lon=113.70,
        road_segment=SEGMENT,
        lane=int(sensor_id[-1]) if sensor_id[-1].isdigit() else 1,
        vehicle_count=8,
        avg_speed_kmh=speed,
        occupancy=occupancy if occupancy is not None else (0.6 if speed < 30 else 0.1),
    )


class Road:
    """A partition's worth of traffic state driven through the processor, alerts kept by id (latest version)."""

    def __init__(self, sites: Any = SITES, rules: TrafficRules | None = None, partition: int = 3) -> None:
        settings = Settings(environment="test", traffic=rules or TrafficRules())
        self.processor = TrafficProcessor(settings, sites)
        self.peers = Peers({}, partition)
        self.alerts: dict[str, Alert] = {}
        self.versions: list[Alert] = []
        self.dirty: set[str] = set()

    def feed(self, readings: list[TrafficReading]) -> None:
        for r in sorted(readings, key=lambda r: r.observed_at):
            out = BatchOutcome(Domain.traffic, 60)
            state = self.peers.states.setdefault(r.sensor_id, {})
            self.processor.process(r, "humen-town", state, out, True, self.peers)
            self.versions += out.alerts.values()
            self.alerts |= out.alerts
            self.dirty |= out.dirty_sources

    def of(self, kind: str) -> list[Alert]:
        return [a for a in self.alerts.values() if a.kind == kind]


def series(sensor_id: str, speeds: list[float], offset_s: int = 0) -> list[TrafficReading]:
    return [reading(sensor_id, i, s, offset_s=offset_s) for i, s in enumerate(speeds)]


def test_a_sudden_collapse_with_the_upstream_detector_free_is_one_incident_that_resolves() -> None:
    road = Road()
    at = [FREE] * WARMUP + [JAM] * 6 + [FREE] * 3
    road.feed(series("UP-L1", [FREE] * len(at)) + series("AT-L1", at, offset_s=5))
    (incident,) = road.of(INCIDENT)
    assert road.of(CONGESTION) == []  # the jammed detector's congestion is the incident: not shown twice
    assert incident.status is AlertStatus.resolved and incident.count == 6
    assert incident.source_id == SEGMENT and incident.severity.value == "high"
    assert incident.first_seen == T0 + WARMUP * STEP + timedelta(seconds=5)
    first = next(v for v in road.versions if v.kind == INCIDENT)
    assert first.status is AlertStatus.open and first.count == 1
    assert (first.measured_value, first.expected_value, first.threshold, first.threshold_type) == (
        JAM,
        FREE,
        40.0,
        "LOWER",
    )
    assert first.data["detector"] == "AT-L1"
    assert first.data["upstream_detector"] == "UP-L1"
    assert first.data["upstream_speed_kmh"] == FREE and first.data["upstream_expected_kmh"] == FREE
    assert first.data["upstream_age_s"] == 5.0
    assert "UP-L1" in first.description and "80.0 km/h" in first.description
    assert segment_key(SITES.site("AT-L1"), 3) in road.dirty  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "upstream", "at"),
    [
        ("upstream slow too: a queue, congestion", [FREE] * WARMUP + [JAM] * 7, [FREE] * WARMUP + [JAM] * 6 + [FREE]),
        ("gradual slow-down, not sudden", [FREE] * 14, [FREE] * WARMUP + [60, 45, 35, 25, JAM, JAM, JAM, FREE]),
        ("no upstream reading at all", [], [FREE] * WARMUP + [JAM] * 6 + [FREE]),
        ("upstream silent for minutes", [FREE] * 3, [FREE] * WARMUP + [JAM] * 6 + [FREE]),
    ],
)
def test_no_incident_unless_sudden_and_upstream_free_and_recent(
    case: str, upstream: list[float], at: list[float]
) -> None:
    road = Road()
    road.feed(series("UP-L1", upstream) + series("AT-L1", at, offset_s=5))
    assert road.of(INCIDENT) == [], case


def test_the_queue_case_still_raises_congestion() -> None:
    road = Road()
    road.feed(series("UP-L1", [FREE] * WARMUP + [JAM] * 7) + series("AT-L1", [FREE] * WARMUP + [JAM] * 6 + [FREE], 5))
    assert {a.source_id for a in road.of(CONGESTION)} == {"UP-L1", "AT-L1"}


def test_a_detector_missing_from_the_site_table_never_raises_an_incident() -> None:
    sites = parse_sites("sensor_id,road_segment,direction,position_m,lane\nUP-L1,seg-7,forward,0,1\n")
    road = Road(sites)
    road.feed(series("UP-L1", [FREE] * 13) + series("AT-L1", [FREE] * WARMUP + [JAM] * 6 + [FREE], offset_s=5))
    assert road.of(INCIDENT) == []
    assert len(road.of(CONGESTION)) == 1  # what it raised before the rule existed


def test_a_detector_whose_readings_name_another_segment_than_its_site_is_not_judged() -> None:
    road = Road()
    at = [r.model_copy(update={"road_segment": "seg-9"}) for r in series("AT-L1", [FREE] * WARMUP + [JAM] * 6, 5)]
    road.feed(series("UP-L1", [FREE] * 12) + at)
    assert road.of(INCIDENT) == []


def test_lanes_blocked_together_make_one_incident_resolved_when_the_last_recovers() -> None:
    road = Road()
    road.feed(
        series("UP-L1", [FREE] * 16)
        + series("UP-L2", [FREE] * 16, offset_s=2)
        + series("AT-L1", [FREE] * WARMUP + [JAM] * 4 + [FREE] * 6, offset_s=5)
        + series("AT-L2", [FREE] * WARMUP + [JAM] * 7 + [FREE] * 3, offset_s=9)
    )
    (incident,) = road.of(INCIDENT)
    assert road.of(CONGESTION) == []
    assert incident.data["detectors"] == ["AT-L1", "AT-L2"]
    assert incident.status is AlertStatus.resolved
    assert incident.resolved_at == T0 + 13 * STEP + timedelta(seconds=9)  # AT-L2's first free reading
    assert incident.count == 4 + 7


def test_a_second_blockage_after_recovery_is_a_second_episode() -> None:
    road = Road()
    at = [FREE] * WARMUP + [JAM] * 3 + [FREE] * 4 + [JAM] * 3 + [FREE]
    road.feed(series("UP-L1", [FREE] * len(at)) + series("AT-L1", at, offset_s=5))
    incidents = road.of(INCIDENT)
    assert len(incidents) == 2 and {a.status for a in incidents} == {AlertStatus.resolved}


def test_an_upstream_state_written_by_another_partition_is_not_read() -> None:
    """A gateway keying by detector puts neighbours on other partitions: reading their state would race."""
    road = Road(partition=3)
    road.feed(series("UP-L1", [FREE] * 12))
    road.peers.partition = 4  # AT-L1's readings come through partition 4
    road.feed(series("AT-L1", [FREE] * WARMUP + [JAM] * 6, offset_s=5))
    assert road.of(INCIDENT) == []


def test_the_processor_asks_for_the_upstream_state_and_the_segment_episode() -> None:
    processor = TrafficProcessor(Settings(environment="test"), SITES)
    at = reading("AT-L2", 0, FREE)
    assert processor.related_sources(at, 5) == ("UP-L2", "#incident|seg-7|forward|5")
    assert processor.related_sources(reading("UP-L1", 0, FREE), 5) == ()
    assert processor.related_sources(reading("NOT-LISTED", 0, FREE), 5) == ()


def test_the_rule_without_a_learned_normal_uses_the_fixed_congestion_speeds() -> None:
    rules = TrafficRules()
    site = Site("AT-L1", SEGMENT, "forward", 500.0, 1)
    up_site = Site("UP-L1", SEGMENT, "forward", 0.0, 1)
    upstream = {"ms": reading("UP-L1", 1, FREE).observed_ms, "speed": FREE, "free": [True]}
    state: dict[str, Any] = {}
    segment: dict[str, Any] = {}
    first = incident_detector(reading("AT-L1", 0, 70), state, None, site, (up_site, upstream), segment, rules, "z")
    alert = incident_detector(reading("AT-L1", 1, 12), state, None, site, (up_site, upstream), segment, rules, "z")
    assert first is None and alert is not None
    assert (alert.expected_value, alert.threshold) == (None, rules.congestion_speed_kmh)
    assert segment["open"]["members"] == ["AT-L1"]
