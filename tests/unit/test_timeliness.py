"""Event-time decisions per event: on time, out of order, late, duplicate, flood."""

from __future__ import annotations

import pytest

from processors.timeliness import RECENT_KEPT, Timeliness, classify, remember

MIN = 60_000
T0 = 1_800_000_000_000 - 1_800_000_000_000 % MIN  # a window boundary


def decide(observed: int, recent: list[int], watermark: int, grace_ms: int = 30_000, spacing: int = 1000) -> Timeliness:
    return classify(observed, {"recent": list(recent)}, watermark, 60, grace_ms, spacing)[0]


@pytest.mark.parametrize(
    ("observed", "recent", "watermark", "expected"),
    [
        (T0 + 5_000, [], -1, Timeliness.on_time),
        (T0 + 5_000, [T0], T0, Timeliness.on_time),
        (T0 + 5_000, [T0 + 30_000], T0 + 30_000, Timeliness.out_of_order),
        (T0 + 5_000, [T0 + 5_000], T0 + 5_000, Timeliness.duplicate),
        (T0 + 5_500, [T0 + 5_000], T0 + 5_000, Timeliness.flood),
        (T0 + 4_500, [T0 + 5_000], T0 + 5_000, Timeliness.flood),
        (T0 + 6_000, [T0 + 5_000], T0 + 5_000, Timeliness.on_time),
        # window [T0, T0+60s) closes for good at T0+60s+30s of partition event time
        (T0 + 59_000, [], T0 + 89_999, Timeliness.out_of_order),
        (T0 + 59_000, [], T0 + 90_000, Timeliness.late),
        (T0 + 1_000, [T0 + 1_000], T0 + 10 * MIN, Timeliness.late),  # late wins over duplicate
    ],
)
def test_classify_table(observed: int, recent: list[int], watermark: int, expected: Timeliness) -> None:
    if expected is Timeliness.out_of_order and not recent:
        recent = [watermark]
    assert decide(observed, recent, watermark) is expected


def test_reasons_say_what_happened() -> None:
    late = classify(T0, {}, T0 + 10 * MIN, 60, 30_000, 1000)
    assert late[0] is Timeliness.late and "window closed" in late[1] and "grace 30 s" in late[1]
    flood = classify(T0 + 10, {"recent": [T0]}, T0, 60, 30_000, 1000)
    assert flood[0] is Timeliness.flood and "10 ms" in flood[1] and "1000 ms" in flood[1]
    assert "same observed_at" in classify(T0, {"recent": [T0]}, T0, 60, 30_000, 1000)[1]


def test_zero_grace_makes_anything_behind_a_closed_window_late() -> None:
    assert decide(T0 + 59_999, [T0 + 60_000 + 5_000], T0 + 65_000, grace_ms=0) is Timeliness.late
    assert decide(T0 + 60_000, [T0 + 65_000], T0 + 65_000, grace_ms=0) is Timeliness.out_of_order


def test_history_is_bounded() -> None:
    seen: dict[str, list[int]] = {}
    for i in range(100):
        remember(seen, T0 + i * 1000)  # type: ignore[arg-type]
    assert seen["recent"] == [T0 + i * 1000 for i in range(100 - RECENT_KEPT, 100)]
