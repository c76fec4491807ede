"""Hour buckets learned online: averaged first, then an EWMA; an abnormal reading teaches once a day."""

from __future__ import annotations

from typing import Any

from processors.baselines import hour_of_week, local_hours, teach


def test_a_bucket_averages_its_first_readings_then_follows_an_ewma() -> None:
    table: dict[str, Any] = {}
    for value in (10.0, 20.0, 30.0):
        teach(table, "7", [value], day=1, abnormal=False, alpha=0.1, digits=(4,))
    assert table["7"] == [20.0, 3, -1]
    for _ in range(7):
        teach(table, "7", [20.0], day=1, abnormal=False, alpha=0.1, digits=(4,))
    teach(table, "7", [31.0], day=1, abnormal=False, alpha=0.25, digits=(4,))  # n = 11: 1/n < alpha
    assert table["7"] == [22.75, 11, -1]


def test_an_abnormal_reading_teaches_a_bucket_at_most_once_a_day() -> None:
    table: dict[str, Any] = {"17": [2.0, 1.0, 4, -1]}
    teach(table, "17", [12.0, 0.5], day=9, abnormal=True, alpha=0.05, digits=(3, 4))
    assert table["17"] == [4.0, 0.9, 5, 9]
    teach(table, "17", [12.0, 0.5], day=9, abnormal=True, alpha=0.05, digits=(3, 4))
    assert table["17"] == [4.0, 0.9, 5, 9], "the same day: not again"
    teach(table, "17", [12.0, 0.5], day=10, abnormal=True, alpha=0.05, digits=(3, 4))
    assert table["17"][2:] == [6, 10]


def test_local_time_of_china_standard_time() -> None:
    midnight_monday_cst = 1_795_363_200_000  # 2026-11-23 00:00 at +08:00 (a Monday)
    assert local_hours(midnight_monday_cst, 8.0) % 24 == 0
    assert hour_of_week(midnight_monday_cst, 8.0) == 0
    assert hour_of_week(midnight_monday_cst + 3_600_000 * 30, 8.0) == 30  # Tuesday 06:00
