"""The alert indexes stay exact through every write, and filtered pages equal a brute-force filter of every alert.

Alerts have no expiry (no TTL, never removed from alert_index), so there is no expiry transition to follow.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from api.app import create_app
from api.roles import Role
from api.services.alert_pages import PageCache
from api.services.flapping import flapping_ids, folded_into
from streams.codec import encode
from streams.keys import Keys
from streams.models import Alert, AlertStatus, Domain, Severity
from streams.settings import Settings
from tests.api.alerts_data import make_alert, write_alerts
from tests.api.conftest import bearer, make_keys

RANK = {"open": 0, "acknowledged": 1, "resolved": 2}
KINDS = {Domain.traffic: "congestion", Domain.drone: "nofly_breach", Domain.energy: "voltage_sag"}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def assert_indexes_exact(settings: Settings) -> None:
    """Check every alert is in exactly its facet index and its episode index, with first_seen as score."""
    keys = Keys(settings.redis.key_prefix)
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    try:
        index = {_text(m): int(s) for m, s in client.zrange(keys.alert_index, 0, -1, withscores=True)}
        expected: dict[str, set[str]] = {}
        for alert_id, score in index.items():
            doc = orjson.loads(client.get(keys.alert(alert_id)) or b"{}")
            op = orjson.loads(client.hget(keys.alert_operator_states, alert_id) or b"{}")
            status = max(doc["status"], op.get("status", "open"), key=RANK.__getitem__)
            facet = f"{status}:{doc['domain']}:{doc['severity']}"
            record = client.hget(keys.alert_facets, alert_id)
            assert record is not None and _text(record) == f"{facet}|{doc['kind']}|{doc['source_id']}", alert_id
            expected.setdefault(keys.alert_facet_prefix + facet, set()).add(alert_id)
            assert client.zscore(keys.alert_episodes(doc["kind"], doc["source_id"]), alert_id) == score
        assert client.hlen(keys.alert_facets) == len(index)
        found = {_text(k) for k in client.scan_iter(match=keys.alert_facet_prefix + "*")}
        assert found == set(expected)
        for key, members in expected.items():
            stored = {_text(m): int(s) for m, s in client.zrange(key, 0, -1, withscores=True)}
            assert stored == {i: index[i] for i in members}, key
    finally:
        client.close()


def test_indexes_follow_open_update_ack_resolve_flapping_and_snooze(operator: TestClient, settings: Settings) -> None:
    write_alerts(settings, make_alert("a1", severity=Severity.medium))
    assert_indexes_exact(settings)
    # De-duplicated update of the same episode: later, counted twice, escalated.
    write_alerts(settings, make_alert("a1", severity=Severity.critical, count=2))
    assert_indexes_exact(settings)
    assert operator.post("/alerts/a1/ack").status_code == 200
    assert_indexes_exact(settings)
    # The worker writes the episode again (still open for it): the operator's acknowledgement holds.
    write_alerts(settings, make_alert("a1", severity=Severity.critical, count=3))
    assert_indexes_exact(settings)
    assert [a["status"] for a in operator.get("/alerts", params={"severity": "critical"}).json()["items"]] == [
        "acknowledged"
    ]
    # Resolved by the processor.
    write_alerts(settings, make_alert("a1", severity=Severity.critical, status=AlertStatus.resolved))
    assert_indexes_exact(settings)
    # Resolved by an operator.
    write_alerts(settings, make_alert("a2", source_id="loop-9"))
    assert operator.post("/alerts/a2/resolve").status_code == 200
    assert_indexes_exact(settings)
    assert operator.get("/alerts").json()["items"] == []
    # A flapping burst, then a snooze of its rule and source.
    write_alerts(settings, *[make_alert(f"f{i}", minutes_ago=20 - i, source_id="loop-5") for i in range(5)])
    assert_indexes_exact(settings)
    assert [(a["id"], a["folded"]) for a in operator.get("/alerts").json()["items"]] == [("f4", 4)]
    snooze = {"kind": "congestion", "source_id": "loop-5", "minutes": 30}
    assert operator.post("/snoozes", json=snooze).status_code in (200, 201)
    assert_indexes_exact(settings)
    assert operator.get("/alerts").json()["items"] == []
    assert [a["id"] for a in operator.get("/alerts", params={"include_snoozed": "true"}).json()["items"]] == ["f4"]


def random_alerts(rng: random.Random, count: int) -> list[Alert]:
    """Return alerts of every domain, severity and status, some sources flapping."""
    alerts = []
    for i in range(count):
        domain = rng.choice(list(Domain))
        alerts.append(
            make_alert(
                f"r{i:03d}",
                minutes_ago=rng.choice([rng.uniform(1, 300), 60 + (i % 6)]),  # some bursts near an hour ago
                kind=KINDS[domain],
                source_id=f"s{rng.randrange(8)}",
                severity=rng.choice(list(Severity)),
                status=rng.choice([AlertStatus.open, AlertStatus.open, AlertStatus.resolved]),
                domain=domain,
                zone_id=rng.choice(["changan", "shatian"]),
            )
        )
    return alerts


def brute_force(operator: TestClient, ids: list[str], params: dict[str, Any], window_ms: int = 600_000) -> list[str]:
    """Return the rows /alerts should show, from every alert read one by one and the pure flapping functions."""
    alerts = {i: operator.get(f"/alerts/{i}").json() for i in ids}
    statuses = set(params.get("status", ["open", "acknowledged"]))

    def matches(a: dict[str, Any]) -> bool:
        return (
            ("domain" not in params or a["domain"] == params["domain"])
            and ("severity" not in params or a["severity"] in params["severity"])
            and a["status"] in statuses
            and ("zone" not in params or a["zone_id"] == params["zone"])
            and (params.get("include_snoozed") == "true" or a["snoozed_until"] is None)
        )

    heads: dict[str, str] = {}
    groups: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for a in alerts.values():
        first = int(datetime.fromisoformat(a["first_seen"]).timestamp() * 1000)
        groups.setdefault((a["kind"], a["source_id"]), []).append((first, a["id"]))
    for episodes in groups.values():
        heads |= folded_into(episodes, flapping_ids(episodes, 4, window_ms), window_ms)
    shown = [
        a
        for a in alerts.values()
        if matches(a) and (params.get("fold") == "false" or not (a["id"] in heads and matches(alerts[heads[a["id"]]])))
    ]
    shown.sort(key=lambda a: (datetime.fromisoformat(a["first_seen"]), a["id"]), reverse=True)
    return [a["id"] for a in shown]


def pages(operator: TestClient, params: dict[str, Any], limit: int) -> list[str]:
    """Return every row of /alerts for these filters, following next_cursor."""
    seen: list[str] = []
    cursor = None
    while True:
        answer = operator.get("/alerts", params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200
        seen += [a["id"] for a in answer.json()["items"]]
        cursor = answer.json()["next_cursor"]
        if not cursor:
            return seen


FILTERS: list[dict[str, Any]] = [
    {},
    {"fold": "false"},
    {"domain": "energy", "severity": ["high"]},
    {"domain": "traffic", "severity": ["critical", "low"], "fold": "false"},
    {"status": ["resolved"]},
    {"status": ["open", "acknowledged", "resolved"], "zone": "changan"},
    {"status": ["acknowledged"], "include_snoozed": "true"},
    {"severity": ["medium"], "include_snoozed": "true"},
]


@pytest.mark.parametrize("limit", [7, 100])
def test_filtered_pages_equal_a_brute_force_filter(operator: TestClient, settings: Settings, limit: int) -> None:
    rng = random.Random(limit)
    alerts = random_alerts(rng, 120)
    for domain in Domain:
        mine = [a for a in alerts if a.domain == domain]
        write_alerts(settings, *mine)
    for alert in rng.sample(alerts, 30):
        operator.post(f"/alerts/{alert.id}/{rng.choice(['ack', 'resolve'])}")
    snoozed = alerts[0]
    operator.post("/snoozes", json={"kind": snoozed.kind, "source_id": snoozed.source_id, "minutes": 60})
    assert_indexes_exact(settings)
    ids = [a.id for a in alerts]
    for params in FILTERS:
        assert pages(operator, params, limit) == brute_force(operator, ids, params), params


def test_alerts_written_without_indexes_are_indexed_at_start_and_on_read(settings: Settings) -> None:
    keys = Keys(settings.redis.key_prefix)
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())

    def legacy(alert_id: str, minutes_ago: int) -> None:
        """Write an alert as versions before the indexes did: its JSON and alert_index only."""
        alert = make_alert(
            alert_id, minutes_ago=minutes_ago, severity=Severity.high, domain=Domain.energy, source_id=f"m-{alert_id}"
        )
        client.set(keys.alert(alert_id), encode(alert))
        client.zadd(keys.alert_index, {alert_id: int(alert.first_seen.timestamp() * 1000)})

    for i in range(30):
        legacy(f"old-{i:02d}", 100 - i)
    operator_key = make_keys(settings)[Role.operator]
    with TestClient(create_app(settings)) as api:
        assert_indexes_exact(settings)  # built at start
        legacy("late-1", 1)  # an older worker still writing after the start
        params = {"domain": "energy", "severity": "high", "limit": 5}
        rows = api.get("/alerts", params=params, headers=bearer(operator_key))
        assert [a["id"] for a in rows.json()["items"]] == ["late-1", "old-29", "old-28", "old-27", "old-26"]
        assert_indexes_exact(settings)
    client.close()


def test_a_kept_answer_is_never_served_after_a_change(operator: TestClient, settings: Settings) -> None:
    def ids() -> list[tuple[str, str]]:
        return [(a["id"], a["status"]) for a in operator.get("/alerts", params={"limit": 10}).json()["items"]]

    write_alerts(settings, make_alert("c1", minutes_ago=20, source_id="c-1"))
    assert ids() == ids() == [("c1", "open")]
    write_alerts(settings, make_alert("c2", minutes_ago=10, source_id="c-2"))  # the worker
    assert ids() == [("c2", "open"), ("c1", "open")]
    operator.post("/alerts/c1/ack")  # an operator
    assert ids() == [("c2", "open"), ("c1", "acknowledged")]
    snooze = operator.post("/snoozes", json={"kind": "congestion", "source_id": "c-2", "minutes": 5}).json()
    assert ids() == [("c1", "acknowledged")]
    operator.delete(f"/snoozes/{snooze['id']}")
    assert ids() == [("c2", "open"), ("c1", "acknowledged")]
    keys = Keys(settings.redis.key_prefix)
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    legacy = make_alert("c3", minutes_ago=5, source_id="c-3")
    client.set(keys.alert("c3"), encode(legacy))  # an older worker: no index, no version
    client.zadd(keys.alert_index, {"c3": int(legacy.first_seen.timestamp() * 1000)})
    client.close()
    assert ids() == [("c3", "open"), ("c2", "open"), ("c1", "acknowledged")]


def test_a_kept_answer_ends_with_its_version_and_at_the_first_snooze_end() -> None:
    cache = PageCache()
    end = datetime(2030, 1, 1, tzinfo=UTC)
    cache.put(("q",), 7, end, b"page")
    assert cache.get(("q",), 7, end - timedelta(seconds=1)) == (b"page", end)
    assert cache.get(("q",), 7, end) is None  # a snooze ended: its alerts show again
    assert cache.get(("q",), 8, end - timedelta(seconds=1)) is None  # something was written
