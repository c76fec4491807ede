"""GET /alerts/stream on a real uvicorn server (resume with Last-Event-ID) and GET /metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from api.roles import Role
from citystream.servers import RedisServer
from streams.keys import Keys
from streams.models import Domain
from streams.settings import Settings
from tests.api.alerts_data import make_alert, write_alerts
from tests.api.conftest import LiveServer, api_settings, bearer, make_keys


def events(response: httpx.Response) -> Iterator[dict[str, str]]:
    """Yield each SSE event (fields id, event, data) or comment (field comment) as it arrives."""
    event: dict[str, str] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line:
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")
        elif event:
            yield event
            event = {}


def alert_events(response: httpx.Response, n: int) -> list[dict[str, str]]:
    """Return the next n non-comment events."""
    out = []
    for event in events(response):
        if "comment" not in event:
            out.append(event)
            if len(out) == n:
                break
    return out


@pytest.fixture
def live(redis_server: RedisServer) -> Iterator[tuple[LiveServer, Settings, dict[str, str]]]:
    settings = api_settings(redis_server.url, sse_heartbeat_s=1.0)
    keys = make_keys(settings)
    with LiveServer(settings) as server:
        yield server, settings, bearer(keys[Role.operator])


def test_changes_are_pushed_and_a_reconnect_resumes_after_last_event_id(
    live: tuple[LiveServer, Settings, dict[str, str]],
) -> None:
    server, settings, auth = live
    write_alerts(settings, make_alert("a1"))  # before connecting: not sent
    with httpx.Client(base_url=server.url, headers=auth, timeout=10) as http:
        with http.stream("GET", "/alerts/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert http.post("/alerts/a1/ack").status_code == 200
            write_alerts(settings, make_alert("a2", minutes_ago=5))
            first = alert_events(response, 2)
        assert [(e["event"], json.loads(e["data"])["id"]) for e in first] == [("alert", "a1"), ("alert", "a2")]
        assert json.loads(first[0]["data"])["status"] == "acknowledged"
        assert json.loads(first[0]["data"])["changed_by"] == "operator"
        assert all(re.fullmatch(r"\d+-\d+", e["id"]) for e in first)

        # While disconnected: two more changes.
        write_alerts(settings, make_alert("a3", minutes_ago=2))
        assert http.post("/alerts/a2/resolve").status_code == 200
        with http.stream("GET", "/alerts/stream", headers={"Last-Event-ID": first[0]["id"]}) as response:
            resumed = alert_events(response, 3)
        assert [(json.loads(e["data"])["id"], json.loads(e["data"])["changed_by"]) for e in resumed] == [
            ("a2", "processor"),
            ("a3", "processor"),
            ("a2", "operator"),
        ]
        assert resumed[0]["id"] == first[1]["id"]
        assert len({e["id"] for e in first + resumed}) == 4  # a1's ack, then every later change once


def test_the_stream_filters_and_sends_heartbeats(live: tuple[LiveServer, Settings, dict[str, str]]) -> None:
    server, settings, auth = live
    with httpx.Client(base_url=server.url, headers=auth, timeout=10) as http:
        with http.stream("GET", "/alerts/stream", params={"domain": "drone"}) as response:
            write_alerts(settings, make_alert("t1"))
            write_alerts(settings, make_alert("d1", domain=Domain.drone, kind="nofly_breach", source_id="CN-UAS-1"))
            seen: list[dict[str, str]] = []
            for event in events(response):  # the drone alert, then a heartbeat after a quiet second
                seen.append(event)
                if (event.get("comment") == "heartbeat" and any("data" in e for e in seen)) or len(seen) > 20:
                    break
        assert [json.loads(e["data"])["id"] for e in seen if "data" in e] == ["d1"]
        assert seen[-1] == {"comment": "heartbeat"}


def test_a_last_event_id_older_than_the_stream_is_an_error_event(
    live: tuple[LiveServer, Settings, dict[str, str]],
) -> None:
    server, settings, auth = live
    for i in range(3):
        write_alerts(settings, make_alert(f"a{i}"))
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    stream_key = Keys(settings.redis.key_prefix).alert_events
    oldest = client.xrange(stream_key, count=1)[0][0].decode()
    client.xtrim(stream_key, maxlen=1, approximate=False)
    client.close()
    with httpx.Client(base_url=server.url, headers=auth, timeout=10) as http:
        with http.stream("GET", "/alerts/stream", headers={"Last-Event-ID": oldest}) as response:
            (error,) = alert_events(response, 1)
        assert error["event"] == "error" and "no longer kept" in json.loads(error["data"])["detail"]
        for bad in ("yesterday", "1-2-3", "9" * 30 + "-0"):
            response = http.get("/alerts/stream", headers={"Last-Event-ID": bad})
            assert response.status_code in (400, 422) and response.json()["detail"]


def test_the_stream_needs_an_operator_key(live: tuple[LiveServer, Settings, dict[str, str]]) -> None:
    server, _settings, _ = live
    assert httpx.get(f"{server.url}/alerts/stream", timeout=5).status_code == 401


METRIC_LINE = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)*\})? -?[0-9.e+]+$|^[a-z_]+\{.*le="\+Inf".*\} \d+$')


def test_metrics_are_prometheus_text(client: TestClient, settings: Settings) -> None:
    write_alerts(settings, make_alert("a1"), make_alert("a2", source_id="loop-2"))
    client.post("/alerts/a2/resolve")
    r = redis.Redis.from_url(settings.redis.url.get_secret_value())
    keys = Keys(settings.redis.key_prefix)
    r.hset(keys.stats, mapping={"events:city.traffic": 10, "deadletter:city.traffic": 2, "late:city.traffic": 1})
    r.close()
    client.get("/alerts")
    response = client.get("/metrics")  # needs no key: see test_access
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = response.text.splitlines()
    for line in lines:
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or METRIC_LINE.match(line), line
    assert 'citystream_events_total{topic="city.traffic"} 10' in lines
    assert 'citystream_deadletters_total{topic="city.traffic"} 2' in lines
    assert 'citystream_late_events_total{topic="city.traffic"} 1' in lines
    assert 'citystream_alerts{kind="congestion",status="open"} 1' in lines
    assert 'citystream_alerts{kind="congestion",status="resolved"} 1' in lines
    assert any(
        line.startswith('citystream_http_request_duration_seconds_count{method="GET",route="/alerts"}')
        for line in lines
    )
    assert "# TYPE citystream_http_request_duration_seconds histogram" in lines
