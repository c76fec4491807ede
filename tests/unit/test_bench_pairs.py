"""The throughput bench judges e/d on the median of alternating (d, e) pairs when it measured several."""

from __future__ import annotations

import pytest

from bench.throughput_report import Pair, median_ratio, print_pairs, print_targets


def test_median_ratio_is_not_decided_by_one_drifting_pair() -> None:
    pairs = [Pair(9_000, 13_500, "d, e"), Pair(9_000, 17_100, "e, d"), Pair(10_000, 14_000, "d, e")]
    assert [round(p.ratio, 2) for p in pairs] == [1.5, 1.9, 1.4]
    assert median_ratio(pairs) == pytest.approx(1.5)


def test_targets_use_the_median_of_several_pairs(capsys: pytest.CaptureFixture[str]) -> None:
    rates = {"d": 10_000.0, "e": 16_000.0}  # the table's own pair alone would meet the target
    pairs = [Pair(10_000, 16_000, "d, e"), Pair(10_000, 13_000, "e, d"), Pair(10_000, 14_000, "d, e")]
    print_targets(rates, [], None, 20_000, pairs)
    assert "e/d >= 1.5: MISSED (1.40), the median of 3 pairs" in capsys.readouterr().out
    print_targets(rates, [], None, 20_000, pairs[:1])
    assert "e/d >= 1.5: met (1.60)" in capsys.readouterr().out


def test_print_pairs_shows_each_pair_and_the_median(capsys: pytest.CaptureFixture[str]) -> None:
    print_pairs([Pair(8_000, 12_000, "d, e"), Pair(8_000, 10_000, "e, d")])
    out = capsys.readouterr().out
    assert "| 1 | d, e | 8,000 | 12,000 | 1.500 |" in out
    assert "| 2 | e, d | 8,000 | 10,000 | 1.250 |" in out
    assert "median e/d = 1.375" in out
