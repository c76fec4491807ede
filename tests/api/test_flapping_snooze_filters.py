"""Flapping folds, snoozes, and the list's filters, sorting and counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.services.flapping import flapping_ids, folded_into
from streams.models import AlertStatus, Domain, Severity
from streams.settings import Settings
from tests.api.alerts_data import make_alert, write_alerts

MIN = 60_000


@pytest.mark.parametrize(
    ("minutes", "flapping"),
    [
        ([0, 1, 2, 3], {"e3"}),  # four within ten minutes: the newest flaps
        ([0, 1, 2], set()),  # three are not enough
        ([0, 4, 8, 12], set()),  # never four within ten minutes
        ([0, 1, 2, 3, 5], {"e4"}),  # only the newest of the burst
        ([0, 1, 2, 3, 30, 31], {"e3"}),  # a later pair does not flap
    ],
)
def test_flapping_is_the_newest_of_n_episodes_within_m_minutes(minutes: list[int], flapping: set[str]) -> None:
    episodes = [(m * MIN, f"e{i}") for i, m in enumerate(minutes)]
    assert flapping_ids(episodes, 4, 10 * MIN) == flapping


def test_the_burst_before_a_flapping_alert_folds_into_it() -> None:
    episodes = [(m * MIN, f"e{i}") for i, m in enumerate([0, 5, 6, 7, 10])]
    assert folded_into(episodes, {"e4"}, 10 * MIN) == {"e1": "e4", "e2": "e4", "e3": "e4"}  # e0 is 10 min before


def flapping_source(settings: Settings) -> None:
    """Five congestion episodes of loop-1 in eight minutes, and one quiet alert elsewhere."""
    burst = [make_alert(f"flap-{i}", minutes_ago=40 - 2 * i) for i in range(5)]
    write_alerts(settings, *burst, make_alert("quiet", minutes_ago=35, source_id="loop-2"))


def test_a_flapping_source_shows_as_one_row_with_the_fold_count(operator: TestClient, settings: Settings) -> None:
    flapping_source(settings)
    rows = operator.get("/alerts").json()["items"]
    assert [(a["id"], a["flapping"], a["folded"]) for a in rows] == [("flap-4", True, 4), ("quiet", False, 0)]
    unfolded = operator.get("/alerts", params={"fold": "false"}).json()["items"]
    assert len(unfolded) == 6 and [a["id"] for a in unfolded if a["flapping"]] == ["flap-4"]
    assert operator.get("/alerts/flap-4").json()["flapping"] is True
    assert operator.get("/alerts/flap-1").json()["flapping"] is False
    assert operator.get("/alerts/counts").json()["total"] == 2


def test_resolving_the_flapping_row_shows_the_rest_of_the_burst(operator: TestClient, settings: Settings) -> None:
    flapping_source(settings)
    operator.post("/alerts/flap-4/resolve")
    rows = operator.get("/alerts").json()["items"]
    assert [a["id"] for a in rows] == ["flap-3", "quiet", "flap-2", "flap-1", "flap-0"]


def test_a_snooze_hides_its_rule_and_source_until_asked(operator: TestClient, settings: Settings) -> None:
    write_alerts(settings, make_alert("a1"), make_alert("a2", source_id="loop-2"))
    created = operator.post("/snoozes", json={"kind": "congestion", "source_id": "loop-1", "minutes": 30})
    assert created.status_code == 201, created.text
    snooze = created.json()
    assert snooze["by"] == "operator"
    assert [a["id"] for a in operator.get("/alerts").json()["items"]] == ["a2"]
    shown = operator.get("/alerts", params={"include_snoozed": "true"}).json()["items"]
    assert {a["id"]: a["snoozed_until"] is not None for a in shown} == {"a1": True, "a2": False}
    assert [s["id"] for s in operator.get("/snoozes").json()] == [snooze["id"]]
    assert operator.delete(f"/snoozes/{snooze['id']}").status_code == 204
    assert operator.delete(f"/snoozes/{snooze['id']}").status_code == 404
    assert operator.get("/snoozes").json() == []
    assert len(operator.get("/alerts").json()["items"]) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "congestion", "source_id": "loop-1", "minutes": 0},
        {"kind": "congestion", "source_id": "loop-1", "minutes": 10**6},
        {"kind": "congestion", "source_id": "bad id!", "minutes": 5},
        {"kind": "", "source_id": "loop-1", "minutes": 5},
        {"source_id": "loop-1", "minutes": 5},
    ],
)
def test_bad_snoozes_are_422(operator: TestClient, body: dict[str, object]) -> None:
    response = operator.post("/snoozes", json=body)
    assert response.status_code == 422 and response.json()["detail"]


def varied(settings: Settings) -> None:
    write_alerts(
        settings,
        make_alert("t-old", minutes_ago=300, severity=Severity.low, source_id="loop-77"),
        make_alert("t-new", minutes_ago=10, severity=Severity.high, source_id="loop-78", zone_id="shatian"),
        make_alert("t-done", minutes_ago=20, status=AlertStatus.resolved),
    )
    write_alerts(
        settings,
        make_alert(
            "d-1",
            minutes_ago=50,
            domain=Domain.drone,
            kind="nofly_breach",
            source_id="CN-UAS-1",
            severity=Severity.critical,
        ),
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["t-new", "d-1", "t-old"]),
        ({"order": "asc"}, ["t-old", "d-1", "t-new"]),
        ({"sort": "severity"}, ["d-1", "t-new", "t-old"]),
        ({"sort": "severity", "order": "asc"}, ["t-old", "t-new", "d-1"]),
        ({"sort": "last_seen"}, ["t-new", "d-1", "t-old"]),
        ({"status": "resolved"}, ["t-done"]),
        ({"domain": "drone"}, ["d-1"]),
        ({"kind": "congestion"}, ["t-new", "t-old"]),
        ({"severity": ["high", "critical"]}, ["t-new", "d-1"]),
        ({"zone": "shatian"}, ["t-new"]),
        ({"q": "LOOP-7"}, ["t-new", "t-old"]),
        ({"q": "uas"}, ["d-1"]),
    ],
)
def test_filters_and_sorting(
    operator: TestClient, settings: Settings, params: dict[str, object], expected: list[str]
) -> None:
    varied(settings)
    assert [a["id"] for a in operator.get("/alerts", params=params).json()["items"]] == expected


def test_time_range_filters(operator: TestClient, settings: Settings) -> None:
    varied(settings)
    now = datetime.now(UTC)
    window = {"since": (now - timedelta(minutes=60)).isoformat(), "until": (now - timedelta(minutes=30)).isoformat()}
    assert [a["id"] for a in operator.get("/alerts", params=window).json()["items"]] == ["d-1"]
    naive = {"until": (now - timedelta(minutes=30)).replace(tzinfo=None).isoformat()}
    assert [a["id"] for a in operator.get("/alerts", params=naive).json()["items"]] == ["d-1", "t-old"]


@pytest.mark.parametrize("sort", ["first_seen", "last_seen", "severity"])
def test_cursor_pages_in_every_sort_cover_each_row_once(operator: TestClient, settings: Settings, sort: str) -> None:
    write_alerts(
        settings,
        *[make_alert(f"p{i}", minutes_ago=i % 7, source_id=f"s{i}", severity=list(Severity)[i % 5]) for i in range(23)],
    )
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        params: dict[str, object] = {"sort": sort, "limit": 5, **({"cursor": cursor} if cursor else {})}
        page = operator.get("/alerts", params=params).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(f"p{i}" for i in range(23))


def test_counts_per_severity_use_the_same_filters(operator: TestClient, settings: Settings) -> None:
    varied(settings)
    counts = operator.get("/alerts/counts").json()
    assert counts["total"] == 3
    assert counts["by_severity"] == {"informational": 0, "low": 1, "medium": 0, "high": 1, "critical": 1}
    assert operator.get("/alerts/counts", params={"domain": "traffic"}).json()["total"] == 2
    assert operator.get("/alerts/counts", params={"status": "resolved"}).json()["by_severity"]["medium"] == 1


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/alerts", {"sort": "colour"}, 422),
        ("/alerts", {"order": "sideways"}, 422),
        ("/alerts", {"status": "snoozed"}, 422),
        ("/alerts", {"until": "tomorrow"}, 422),
        ("/alerts", {"since": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"}, 400),
        ("/alerts", {"q": ""}, 422),
        ("/alerts", {"q": "x" * 65}, 422),
        ("/alerts", {"cursor": "1:2"}, 400),
        ("/alerts", {"cursor": "a:b:c"}, 400),
        ("/alerts", {"cursor": "x" * 300}, 422),
        ("/alerts", {"include_snoozed": "maybe"}, 422),
        ("/alerts/counts", {"severity": "apocalyptic"}, 422),
        ("/alerts", {"limit": 0}, 422),
    ],
)
def test_bad_filters_are_4xx_with_a_message(
    operator: TestClient, path: str, params: dict[str, object], status: int
) -> None:
    response = operator.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.json()["detail"]
