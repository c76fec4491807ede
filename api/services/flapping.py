"""Flapping: one rule at one source opening many episodes in a short time.

Computed on read from the rule+source episode index the writers maintain (processors.alert_index):
an alert is flapping when at least N episodes of its kind and source (itself included) opened in the
M minutes up to its first_seen, and no newer episode opened within M minutes after it, so it is the
newest of its burst. The episodes of the M minutes before a flapping alert fold into it. Older
episodes of a long burst stay separate rows; they are normally resolved by then.
"""

from __future__ import annotations

from collections.abc import Iterable


def flapping_ids(episodes: Iterable[tuple[int, str]], min_episodes: int, window_ms: int) -> set[str]:
    """Return the ids of the flapping alerts among one rule+source's (first_seen ms, id) episodes."""
    ordered = sorted(episodes)
    flapping: set[str] = set()
    oldest = 0
    for i, (opened, alert_id) in enumerate(ordered):
        while opened - ordered[oldest][0] >= window_ms:
            oldest += 1
        newer_soon = i + 1 < len(ordered) and ordered[i + 1][0] - opened < window_ms
        if i - oldest + 1 >= min_episodes and not newer_soon:
            flapping.add(alert_id)
    return flapping


def folded_into(episodes: list[tuple[int, str]], flapping: set[str], window_ms: int) -> dict[str, str]:
    """Return, for each episode within window_ms before a flapping one, the id of that flapping alert."""
    ordered = sorted(episodes)
    heads: dict[str, str] = {}
    for j, (opened, alert_id) in enumerate(ordered):
        if alert_id not in flapping:
            continue
        i = j - 1
        while i >= 0 and opened - ordered[i][0] < window_ms:
            heads[ordered[i][1]] = alert_id
            i -= 1
    return heads
