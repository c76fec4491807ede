"""GET /alerts and /alerts/{id} against a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
from fastapi.testclient import TestClient

from streams.codec import encode
from streams.keys import Keys
from streams.models import Alert, AlertStatus, Domain, GeoPoint, Severity
from streams.settings import Settings

KINDS = [(Domain.traffic, "congestion"), (Domain.drone, "nofly_breach"), (Domain.energy, "load_spike")]
SEVERITIES = [Severity.medium, Severity.critical, Severity.low]


def seed(settings: Settings, n: int, same_time_every: int = 1) -> list[Alert]:
    """Store n alerts; every `same_time_every` alerts share one first_seen (ties for the cursor)."""
    base = datetime.now(UTC) - timedelta(hours=2)
    keys = Keys(settings.redis.key_prefix)
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    alerts = []
    for i in range(n):
        domain, kind = KINDS[i % 3]
        first = base + timedelta(seconds=i // same_time_every)
        alert = Alert(
            id=f"alert-{i:04d}",
            domain=domain,
            kind=kind,
            severity=SEVERITIES[i % 3],
            status=AlertStatus.resolved if i % 4 == 0 else AlertStatus.open,
            source_id=f"src-{i % 7}",
            zone_id="changan" if i % 2 else "shatian",
            location=GeoPoint(coordinates=(113.7, 22.8)),
            first_seen=first,
            last_seen=first + timedelta(minutes=i % 5),
        )
        client.set(keys.alert(alert.id), encode(alert))
        client.zadd(keys.alert_index, {alert.id: int(first.timestamp() * 1000)})
        alerts.append(alert)
    client.close()
    return alerts


@pytest.mark.parametrize("same_time_every", [1, 7])
def test_cursor_pages_cover_every_alert_once_newest_first(
    client: TestClient, settings: Settings, same_time_every: int
) -> None:
    alerts = seed(settings, 150, same_time_every)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 40, "status": list(AlertStatus), "fold": "false"}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/alerts", params=params).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(a.id for a in alerts)
    assert len(seen) == len(set(seen))
    firsts = [next(a.first_seen for a in alerts if a.id == i) for i in seen]
    assert firsts == sorted(firsts, reverse=True)


@pytest.mark.parametrize(
    ("params", "predicate"),
    [
        ({"domain": "drone"}, lambda a: a.domain == Domain.drone),
        ({"kind": "load_spike"}, lambda a: a.kind == "load_spike"),
        ({"severity": "critical"}, lambda a: a.severity == Severity.critical),
        ({"status": "open"}, lambda a: a.status == AlertStatus.open),
        ({"zone": "changan", "domain": "traffic"}, lambda a: a.zone_id == "changan" and a.domain == Domain.traffic),
    ],
)
def test_filters_return_exactly_the_matching_alerts(
    client: TestClient, settings: Settings, params: dict[str, str], predicate
) -> None:  # type: ignore[no-untyped-def]
    alerts = seed(settings, 60)
    got = client.get("/alerts", params={**params, "limit": 1000}).json()["items"]
    active = {AlertStatus.open, AlertStatus.acknowledged}  # the default unless a status is asked for
    expected = [a.id for a in alerts if predicate(a) and ("status" in params or a.status in active)]
    assert sorted(a["id"] for a in got) == sorted(expected)


def test_since_filters_on_last_seen(client: TestClient, settings: Settings) -> None:
    alerts = seed(settings, 30)
    since = alerts[20].last_seen
    got = client.get("/alerts", params={"since": since.isoformat(), "limit": 1000}).json()["items"]
    expected = [a.id for a in alerts if a.last_seen >= since and a.status == AlertStatus.open]
    assert sorted(a["id"] for a in got) == sorted(expected)


def test_one_alert_by_id_and_404_for_unknown(client: TestClient, settings: Settings) -> None:
    seed(settings, 3)
    assert client.get("/alerts/alert-0001").json()["kind"] == "nofly_breach"
    missing = client.get("/alerts/no-such-alert")
    assert missing.status_code == 404 and "no-such-alert" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"cursor": "garbage"}, 400, "cursor"),
        ({"limit": 1001}, 422, "limit"),
        ({"severity": "apocalyptic"}, 422, "severity"),
        ({"domain": "water"}, 422, "domain"),
        ({"since": "yesterday"}, 422, "since"),
    ],
)
def test_bad_requests_get_a_4xx_that_names_the_problem(
    client: TestClient, params: dict[str, object], status: int, fragment: str
) -> None:
    response = client.get("/alerts", params=params)
    assert response.status_code == status
    assert fragment in response.text
