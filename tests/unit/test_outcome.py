"""Tumbling windows and what one batch accumulates in `processors.outcome`."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from processors.alerts import ms_to_dt
from processors.metrics import HAS_MEMBERS, METRIC_NAMES, METRICS
from processors.outcome import BatchOutcome, window_start_ms
from streams.models import Alert, AlertStatus, Domain, Severity

MINUTE_MS = 60_000
BOUNDARY = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a multiple of every window below


@pytest.mark.parametrize(
    ("observed_ms", "window_s", "expected"),
    [
        (0, 60, 0),
        (1, 60, 0),
        (59_999, 60, 0),
        (60_000, 60, 60_000),
        (60_001, 60, 60_000),
        (119_999, 60, 60_000),
        (BOUNDARY, 60, BOUNDARY),
        (BOUNDARY - 1, 60, BOUNDARY - MINUTE_MS),
        (BOUNDARY + 1, 60, BOUNDARY),
        (BOUNDARY + 59_999, 60, BOUNDARY),
        (BOUNDARY, 1, BOUNDARY),
        (BOUNDARY + 999, 1, BOUNDARY),
        (BOUNDARY - 1, 1, BOUNDARY - 1000),
        (BOUNDARY, 300, BOUNDARY),
        (BOUNDARY - 1, 300, BOUNDARY - 300_000),
        (BOUNDARY + 299_999, 300, BOUNDARY),
        (BOUNDARY, 3600, BOUNDARY),
        (BOUNDARY - 1, 3600, BOUNDARY - 3_600_000),
    ],
)
def test_window_start_ms(observed_ms: int, window_s: int, expected: int) -> None:
    start = window_start_ms(observed_ms, window_s)
    assert start == expected
    assert start <= observed_ms < start + window_s * 1000
    assert start % (window_s * 1000) == 0


def test_window_start_of_an_aware_datetime() -> None:
    at = datetime(2026, 1, 1, 0, 0, 59, 999_000, tzinfo=UTC)
    ms = int(at.timestamp() * 1000)
    assert window_start_ms(ms, 60) == BOUNDARY
    assert window_start_ms(ms + 1, 60) == BOUNDARY + MINUTE_MS


@pytest.mark.parametrize("ms", [0, 1, 999, BOUNDARY, BOUNDARY + 1, BOUNDARY + 123])
def test_ms_to_dt_is_aware_utc_and_exact(ms: int) -> None:
    at = ms_to_dt(ms)
    assert at.tzinfo is UTC
    assert at == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


# --- BatchOutcome -----------------------------------------------------------------------------


def test_add_sums_accumulates_per_zone_window() -> None:
    out = BatchOutcome(Domain.traffic, window_s=60)
    out.add_sums("changan", BOUNDARY, {"n": 1, "speed_micro": 50_000_000, "vehicles": 4})
    out.add_sums("changan", BOUNDARY, {"n": 1, "speed_micro": 30_000_000, "vehicles": 6})
    out.add_sums("changan", BOUNDARY + MINUTE_MS, {"n": 1, "vehicles": 2})
    out.add_sums("shatian", BOUNDARY, {"n": 1, "speed_micro": 10})
    assert out.sums == {
        (60, "changan", BOUNDARY): Counter({"n": 2, "speed_micro": 80_000_000, "vehicles": 10}),
        (60, "changan", BOUNDARY + MINUTE_MS): Counter({"n": 1, "vehicles": 2}),
        (60, "shatian", BOUNDARY): Counter({"n": 1, "speed_micro": 10}),
    }


def test_add_sums_does_not_keep_the_callers_dict() -> None:
    out = BatchOutcome(Domain.energy, window_s=60)
    increments = {"n": 1, "wh": 5}
    out.add_sums("changan", BOUNDARY, increments)
    out.add_sums("changan", BOUNDARY, increments)
    assert increments == {"n": 1, "wh": 5}
    assert out.sums[(60, "changan", BOUNDARY)] == {"n": 2, "wh": 10}


def test_add_member_counts_a_source_once() -> None:
    out = BatchOutcome(Domain.drone, window_s=60)
    for member in ["CN-UAS-1", "CN-UAS-2", "CN-UAS-1"]:
        out.add_member("changan", BOUNDARY, member)
    out.add_member("changan", BOUNDARY + MINUTE_MS, "CN-UAS-1")
    assert out.members == {
        (60, "changan", BOUNDARY): {"CN-UAS-1", "CN-UAS-2"},
        (60, "changan", BOUNDARY + MINUTE_MS): {"CN-UAS-1"},
    }


def alert(alert_id: str, count: int, status: AlertStatus = AlertStatus.open) -> Alert:
    start = ms_to_dt(BOUNDARY)
    return Alert(
        id=alert_id,
        domain=Domain.traffic,
        kind="congestion",
        severity=Severity.medium,
        status=status,
        source_id="TLD-0001",
        first_seen=start,
        last_seen=start + timedelta(seconds=30 * count),
        count=count,
    )


def test_emit_keeps_the_latest_version_per_id() -> None:
    out = BatchOutcome(Domain.traffic, window_s=60)
    versions = [alert("a", 3), alert("b", 3), alert("a", 4), None, alert("a", 5, AlertStatus.resolved)]
    for version in versions:
        out.emit(version)
    assert list(out.alerts) == ["a", "b"]
    assert out.alerts["a"].count == 5
    assert out.alerts["a"].status is AlertStatus.resolved
    assert out.alerts["b"].count == 3


def test_emit_none_changes_nothing() -> None:
    out = BatchOutcome(Domain.traffic, window_s=60)
    out.emit(None)
    assert out.alerts == {}


def test_a_new_outcome_is_empty() -> None:
    out = BatchOutcome(Domain.drone, window_s=60)
    assert (out.alerts, out.sums, out.members, out.deadletters, out.dirty_sources) == ({}, {}, {}, [], set())
    assert (out.events, out.max_event_ms) == (0, -1)
    other = BatchOutcome(Domain.drone, window_s=60)
    other.add_sums("changan", 0, {"n": 1})
    assert out.sums == {}


# --- metric definitions -----------------------------------------------------------------------

FULL_SUMS = {"n": 4, "speed_micro": 200_000_000, "vehicles": 9, "wh": 1500, "mv": 880_000, "max_w": 2500}


@pytest.mark.parametrize("domain", list(Domain))
def test_every_domain_emits_exactly_its_named_metrics(domain: Domain) -> None:
    metrics = METRICS[domain](FULL_SUMS, 2)
    assert tuple(metrics) == METRIC_NAMES[domain]
    assert all(isinstance(value, float) and isinstance(unit, str) and unit for value, unit in metrics.values())
    assert METRICS[domain]({}, 0) == {}


def test_only_drones_count_distinct_members() -> None:
    assert set(HAS_MEMBERS) == {Domain.drone}


def test_readings_summed_per_minute_then_per_size_equal_every_reading_added_to_every_size() -> None:
    rng = random.Random(3)
    staged = BatchOutcome(Domain.energy, 60, (60, 900, 3600), (900,))
    assert staged.staged == {}  # nothing pending before a reading
    expected_sums: dict[tuple[int, str, int], Counter[str]] = {}
    expected_max: dict[tuple[int, str, int], dict[str, int]] = {}
    expected_members: dict[tuple[int, str, int], set[str]] = {}
    for i in range(3000):
        zone, observed = f"zone-{rng.randrange(4)}", BOUNDARY + rng.randrange(0, 3 * 3_600_000)
        sums, maxima = {"n": 1, "wh": rng.randrange(0, 50)}, {"peak_w": rng.randrange(0, 9000)}
        member, groups = f"m{rng.randrange(40)}", (f"meter:m{i % 7}",)
        staged.add_reading(zone, observed, sums, maxima, member=member, groups=groups)
        for group, sizes in ((zone, (60, 900, 3600)), (groups[0], (900,))):
            for size in sizes:
                key = (size, group, window_start_ms(observed, size))
                expected_sums.setdefault(key, Counter()).update(sums)
                bucket = expected_max.setdefault(key, {})
                bucket["peak_w"] = max(bucket.get("peak_w", 0), maxima["peak_w"])
                expected_members.setdefault(key, set()).add(member)
    staged.settle()
    staged.settle()  # a second settle (a commit retried) adds nothing
    assert staged.sums == expected_sums
    assert staged.maxima == expected_max
    assert staged.members == expected_members
