"""The dashboard page and its files: served without a key, right content types, a 'self'-only CSP; and GET /drones."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from api.roles import Role
from geo.zones import ZoneIndex
from processors.drone.processor import DroneProcessor
from processors.outcome import BatchOutcome
from streams.keys import Keys
from streams.models import Domain, DroneTelemetry
from streams.settings import Settings
from streams.topics import Topics
from tests.api.conftest import bearer
from tests.support.events import valid_value

STATIC = Path(__file__).resolve().parents[2] / "api" / "static"
JS_TYPES = ("text/javascript", "application/javascript")


class Assets(HTMLParser):
    """Collect the page's script and stylesheet references, and anything inline."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline_scripts = 0
        self.inline_styles = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self._in_script = True
            if a.get("src"):
                self.refs.append(a["src"] or "")
        if tag == "link" and a.get("href"):
            self.refs.append(a["href"] or "")
        if tag == "style" or "style" in a or any(k.startswith("on") for k in a):
            self.inline_styles += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def test_the_page_is_served_without_a_key_with_a_self_only_csp(app_client: TestClient) -> None:
    response = app_client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["connect-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    page = Assets()
    page.feed(response.text)
    assert page.inline_scripts == 0, "scripts must live in files: the CSP refuses inline ones"
    assert page.inline_styles == 0, "no <style>, style= or on*= handlers: the CSP refuses them"
    assert {"/static/dashboard.css", "/static/js/main.js", "/static/favicon.svg"} <= set(page.refs)


@pytest.mark.parametrize(
    ("path", "types"),
    [
        ("/static/dashboard.css", ("text/css",)),
        ("/static/favicon.svg", ("image/svg+xml",)),
        *[(f"/static/js/{p.name}", JS_TYPES) for p in sorted((STATIC / "js").glob("*.js"))],
    ],
)
def test_each_static_file_has_its_content_type_and_the_csp(
    app_client: TestClient, path: str, types: tuple[str]
) -> None:
    response = app_client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in types
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert response.headers["x-content-type-options"] == "nosniff"


def test_every_module_import_resolves_and_nothing_comes_from_elsewhere(app_client: TestClient) -> None:
    for script in sorted((STATIC / "js").glob("*.js")):
        source = script.read_text()
        for target in re.findall(r'^import .* from "(\.[^"]+)";$', source, flags=re.MULTILINE):
            assert app_client.get(f"/static/js/{target.removeprefix('./')}").status_code == 200, (script, target)
        # The only absolute URL is SVG's namespace name, which is never fetched.
        urls = set(re.findall(r"https?://[^\s\"'`)]+", source)) - {"http://www.w3.org/2000/svg"}
        assert not urls, f"{script.name} refers to {urls}: the dashboard must work offline"
    for other in [STATIC / "index.html", STATIC / "dashboard.css"]:
        assert not re.findall(r"https?://", other.read_text()), other


def test_a_missing_static_file_is_404(app_client: TestClient) -> None:
    assert app_client.get("/static/nothing.js").status_code == 404


def _fly(
    settings: Settings,
    client: redis.Redis,
    drone_id: str,
    lon: float,
    lat: float,
    at: datetime,
    status: str = "airborne",
) -> None:
    """Apply one fix as the worker does: the drone processor updates the state, the sink writes it and the watch."""
    fix = DroneTelemetry.model_validate(
        valid_value(Domain.drone, drone_id=drone_id, lon=lon, lat=lat, observed_at=at.isoformat(), status=status)
    )
    keys, topic = Keys(settings.redis.key_prefix), Topics(settings.kafka.topic_namespace).drone
    raw = client.hget(keys.state("drone"), drone_id)
    state = orjson.loads(raw) if raw else {}
    out = BatchOutcome(Domain.drone, 60)
    DroneProcessor(settings, ZoneIndex.from_file(settings.zones_file)).process(fix, "binhaiwan-core", state, out)
    index = keys.silence_index(topic, sum(drone_id.encode()) % settings.kafka.partitions)
    for source, last_ms in out.silence_watch.items():
        if last_ms is None:
            client.zrem(index, source)
        else:
            client.zadd(index, {source: last_ms})
    client.hset(keys.state("drone"), drone_id, orjson.dumps(state))


def test_drones_lists_each_airborne_drones_latest_fix(
    app_client: TestClient, api_keys: dict[Role, str], settings: Settings
) -> None:
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        _fly(settings, client, "CN-UAS-0001", 113.700, 22.760, now - timedelta(seconds=20))
        _fly(settings, client, "CN-UAS-0001", 113.701, 22.761, now - timedelta(seconds=10))
        _fly(settings, client, "CN-UAS-0002", 113.650, 22.800, now - timedelta(seconds=5))
        _fly(settings, client, "CN-UAS-0003", 113.640, 22.900, now - timedelta(minutes=10))  # heard long ago
    finally:
        client.close()
    for role in (Role.operator, Role.planner):
        response = app_client.get("/drones", headers=bearer(api_keys[role]))
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [d["drone_id"] for d in items] == ["CN-UAS-0002", "CN-UAS-0001"]
        assert items[1] | {"observed_at": None} == {
            "drone_id": "CN-UAS-0001",
            "lon": 113.701,
            "lat": 22.761,
            "zone_id": "binhaiwan-core",
            "observed_at": None,
        }
        assert datetime.fromisoformat(items[1]["observed_at"]) == now - timedelta(seconds=10)
    older = app_client.get("/drones?max_age_s=3600&limit=2", headers=bearer(api_keys[Role.operator])).json()["items"]
    assert [d["drone_id"] for d in older] == ["CN-UAS-0002", "CN-UAS-0001"]
    every = app_client.get("/drones?max_age_s=3600", headers=bearer(api_keys[Role.operator])).json()["items"]
    assert [d["drone_id"] for d in every][-1] == "CN-UAS-0003"


def test_a_landed_drone_leaves_the_list(app_client: TestClient, api_keys: dict[Role, str], settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        _fly(settings, client, "CN-UAS-0009", 113.7, 22.76, now - timedelta(seconds=5))
        assert len(app_client.get("/drones", headers=bearer(api_keys[Role.operator])).json()["items"]) == 1
        _fly(settings, client, "CN-UAS-0009", 113.7, 22.76, now, status="ground")
    finally:
        client.close()
    assert app_client.get("/drones", headers=bearer(api_keys[Role.operator])).json() == {"items": []}
