"""Operator actions: every transition, 409 for illegal ones, idempotent repeats, history, worker writes kept apart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis
from fastapi.testclient import TestClient

from streams.keys import Keys
from streams.models import AlertStatus
from streams.settings import Settings
from tests.api.alerts_data import make_alert, write_alerts


def stream_entries(settings: Settings) -> list[dict[bytes, bytes]]:
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    try:
        return [fields for _, fields in client.xrange(Keys(settings.redis.key_prefix).alert_events)]
    finally:
        client.close()


def test_open_to_acknowledged_to_resolved_records_who_and_when(operator: TestClient, settings: Settings) -> None:
    write_alerts(settings, make_alert("a1"))
    acked = operator.post("/alerts/a1/ack")
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged" and acked.json()["processor_status"] == "open"
    resolved = operator.post("/alerts/a1/resolve")
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    history = operator.get("/alerts/a1/history").json()
    assert [(h["action"], h["by"], h["status"]) for h in history] == [
        ("open", "processor", "open"),
        ("ack", "operator", "acknowledged"),
        ("resolve", "operator", "resolved"),
    ]
    assert all(h["at"] for h in history)
    events = stream_entries(settings)
    assert [(e[b"id"], e[b"by"]) for e in events] == [(b"a1", b"processor"), (b"a1", b"operator"), (b"a1", b"operator")]


def test_an_open_alert_can_be_resolved_without_an_ack(operator: TestClient, settings: Settings) -> None:
    write_alerts(settings, make_alert("a1"))
    assert operator.post("/alerts/a1/resolve").json()["status"] == "resolved"


@pytest.mark.parametrize("action", ["ack", "resolve"])
def test_repeating_an_action_changes_nothing(operator: TestClient, settings: Settings, action: str) -> None:
    write_alerts(settings, make_alert("a1"))
    first = operator.post(f"/alerts/a1/{action}")
    again = operator.post(f"/alerts/a1/{action}")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert len(operator.get("/alerts/a1/history").json()) == 2
    assert len(stream_entries(settings)) == 2


@pytest.mark.parametrize("processor_status", [AlertStatus.open, AlertStatus.resolved])
def test_acknowledging_a_resolved_alert_is_409_naming_the_state(
    operator: TestClient, settings: Settings, processor_status: AlertStatus
) -> None:
    write_alerts(settings, make_alert("a1", status=processor_status))
    if processor_status == AlertStatus.open:
        operator.post("/alerts/a1/resolve")
    response = operator.post("/alerts/a1/ack")
    assert response.status_code == 409
    assert "resolved" in response.json()["detail"]
    assigned = operator.post("/alerts/a1/assign", json={"operator": "ana"})
    assert assigned.status_code == 409 and "resolved" in assigned.json()["detail"]


def test_a_processor_resolved_alert_is_resolved_and_in_history(operator: TestClient, settings: Settings) -> None:
    write_alerts(settings, make_alert("a1"))
    operator.post("/alerts/a1/ack")
    resolved = make_alert("a1", status=AlertStatus.resolved, count=3)
    write_alerts(settings, resolved.model_copy(update={"resolved_at": datetime.now(UTC)}))
    alert = operator.get("/alerts/a1").json()
    assert alert["status"] == "resolved" and alert["count"] == 3
    assert [h["by"] for h in operator.get("/alerts/a1/history").json()] == ["processor", "operator", "processor"]
    assert operator.post("/alerts/a1/resolve").status_code == 200  # already resolved: nothing to do


def test_worker_updates_keep_operator_state(operator: TestClient, settings: Settings) -> None:
    write_alerts(settings, make_alert("a1"))
    operator.post("/alerts/a1/ack")
    operator.post("/alerts/a1/assign", json={"operator": "ana"})
    write_alerts(settings, make_alert("a1", count=7))
    alert = operator.get("/alerts/a1").json()
    assert (alert["status"], alert["assignee"], alert["count"]) == ("acknowledged", "ana", 7)


def test_assign_and_notes(operator: TestClient, settings: Settings) -> None:
    write_alerts(settings, make_alert("a1"))
    assert operator.post("/alerts/a1/assign", json={"operator": "ana"}).json()["assignee"] == "ana"
    operator.post("/alerts/a1/assign", json={"operator": "ana"})
    operator.post("/alerts/a1/assign", json={"operator": "bo"})
    operator.post("/alerts/a1/notes", json={"text": "crew on site"})
    history = operator.get("/alerts/a1/history").json()
    assert [(h["action"], h.get("value")) for h in history[1:]] == [
        ("assign", "ana"),
        ("assign", "bo"),
        ("note", "crew on site"),
    ]
    listed = operator.get("/alerts", params={"assignee": "bo"}).json()["items"]
    assert [a["id"] for a in listed] == ["a1"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/alerts/nope/ack", None, 404),
        ("post", "/alerts/nope/resolve", None, 404),
        ("post", "/alerts/nope/notes", {"text": "x"}, 404),
        ("get", "/alerts/nope/history", None, 404),
        ("post", "/alerts/a%20b/ack", None, 422),
        ("post", "/alerts/" + "x" * 200 + "/ack", None, 422),
        ("post", "/alerts/a1/assign", {}, 422),
        ("post", "/alerts/a1/assign", {"operator": ""}, 422),
        ("post", "/alerts/a1/assign", {"operator": "ana", "extra": 1}, 422),
        ("post", "/alerts/a1/notes", {"text": ""}, 422),
        ("post", "/alerts/a1/notes", [1, 2], 422),
    ],
)
def test_bad_actions_are_4xx_with_a_message(
    operator: TestClient, settings: Settings, method: str, path: str, body: object, status: int
) -> None:
    write_alerts(settings, make_alert("a1"))
    response = operator.request(method.upper(), path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_a_body_that_is_not_json_is_422(operator: TestClient, settings: Settings) -> None:
    write_alerts(settings, make_alert("a1"))
    response = operator.post("/alerts/a1/notes", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
