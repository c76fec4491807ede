"""The dashboard in headless Chromium on the whole stack (Apache Kafka, Redis, a worker, the API process).

An operator opens the page and enters a key; a drone flies into a no-fly zone; its alert must be on the map
and in the list within 5 s; acknowledging it in the page must change it in the API. Screenshots at
1920x1080 and 1366x768 go to test-output/dashboard/, and every request the page makes must go to the API.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from api.auth import create_key
from api.roles import Role
from streams.gateway import GatewayProducer
from streams.keys import Keys
from streams.models import Domain, DroneTelemetry
from streams.settings import Settings
from streams.topics import ensure_topics
from tests.support.api import api_process, get
from tests.support.deployment import isolated_settings
from tests.support.events import valid_value
from tests.support.worker import WorkerProcess, wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output" / "dashboard"
INTRUDER = "CN-UAS-0666"
NOFLY = "nofly-government-centre"  # around (113.700, 22.755), radius about 300 m


def chromium_path() -> str | None:
    """Return Debian's chromium (the Makefile installs it); browsers are never downloaded."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def fixes(drone_id: str, path: list[tuple[float, float]], end: datetime) -> list[DroneTelemetry]:
    """Return one fix a second along a path of (lon, lat), the last one at `end`."""
    start = end - timedelta(seconds=len(path) - 1)
    return [
        DroneTelemetry.model_validate(
            valid_value(
                Domain.drone,
                drone_id=drone_id,
                lon=lon,
                lat=lat,
                observed_at=(start + timedelta(seconds=i)).isoformat(),
                heading_deg=180.0,
            )
        )
        for i, (lon, lat) in enumerate(path)
    ]


@pytest.fixture
def stack(kafka_bootstrap: str, redis_server: object, tmp_path: Path) -> Iterator[tuple[Settings, str, str]]:
    """Run a worker and the API (keys required) on the session's Kafka and Redis; yield settings, URL, operator key."""
    settings = isolated_settings("dash", kafka_bootstrap, redis_server.url)  # type: ignore[attr-defined]
    ensure_topics(settings.kafka)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    keys = Keys(settings.redis.key_prefix)
    producer = GatewayProducer(settings.kafka)
    try:
        # A drone on patrol over Shatian: once it is counted, the worker is consuming.
        producer.publish(Domain.drone, fixes("CN-UAS-0100", [(113.64, 22.90 + i * 0.0003) for i in range(5)], _now()))
        wait_until(
            lambda: client.hget(keys.stats, f"events:{settings.kafka.topic_namespace}.drone") is not None,
            90,
            "the worker to apply the first fixes",
            worker,
        )
        key = create_key(client, keys, Role.operator, "e2e-operator")
        with api_process(settings, tmp_path / "api.log", auth=True) as url:
            yield settings, url, key
    finally:
        producer.close()
        client.close()
        worker.stop()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_an_operator_sees_a_nofly_breach_live_and_acknowledges_it(stack: tuple[Settings, str, str]) -> None:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium at /usr/bin/chromium: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    settings, url, key = stack
    OUTPUT.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    console_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        try:
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: console_errors.append(str(e)))
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{url}/")
            page.fill("#key-input", key)
            page.click("#key-submit")
            page.wait_for_selector("#connection[data-state='live']", timeout=10_000)
            page.wait_for_selector("svg.city-map path.zone-nofly[data-zone-id='nofly-government-centre']")
            page.wait_for_selector("#counts li[data-severity='critical']")

            # A drone flies south into the no-fly zone and hovers there: the breach stays open.
            path = [(113.700, 22.768 - i * 0.001) for i in range(13)] + [(113.700, 22.755)] * 3
            producer = GatewayProducer(settings.kafka)
            try:
                producer.publish(Domain.drone, fixes(INTRUDER, path, _now()))
            finally:
                producer.close()
            published = time.monotonic()
            row = page.wait_for_selector(f"tr.alert-row:has-text('{INTRUDER}')", timeout=5_000)
            marker = page.wait_for_selector(f"g.alert-marker[aria-label*='{INTRUDER}']", timeout=5_000)
            seen_after = time.monotonic() - published
            assert row is not None and marker is not None
            alert_id = row.get_attribute("data-alert-id")
            assert alert_id and marker.get_attribute("data-alert-id") == alert_id
            assert seen_after <= 5.0, f"the alert showed after {seen_after:.1f} s"
            assert "sev-critical" in (marker.get_attribute("class") or "")
            assert "CRITICAL" in row.inner_text() and "open" in row.inner_text()
            assert page.is_visible("#critical-banner") and INTRUDER in page.inner_text("#critical-text")
            page.wait_for_selector(f"g.drone[data-drone-id='{INTRUDER}']", timeout=5_000)

            # The details: the evidence and the history.
            marker.click()
            page.wait_for_selector(f"#alert-detail article[data-alert-id='{alert_id}']")
            page.wait_for_selector("#alert-detail ol.history li")
            detail = page.inner_text("#alert-detail")
            assert "measured" in detail and "60 m AGL" in detail and NOFLY in detail
            page.click("path.zone-district[data-zone-id='binhaiwan-core']")
            page.wait_for_selector("#zone-summary[data-zone-id='binhaiwan-core'] table.figures")
            page.wait_for_selector("#zone-charts figure.chart >> nth=4")
            assert page.evaluate("document.documentElement.scrollWidth") <= 1920
            page.screenshot(path=str(OUTPUT / "dashboard-1920x1080.png"))

            # Acknowledge from the list; the API must say so.
            page.click(f"tr[data-alert-id='{alert_id}'] button.act-ack")
            page.wait_for_selector(f"tr[data-alert-id='{alert_id}'] td.status[data-status='acknowledged']")
            status, body = get(f"{url}/alerts/{alert_id}", key)
            assert status == 200 and body["status"] == "acknowledged", body
            status, history = get(f"{url}/alerts/{alert_id}/history", key)
            assert [(h["action"], h["by"]) for h in history][-1] == ("ack", "e2e-operator")
            # Acknowledging twice is no change; resolving a resolved one would show the API's 409 message.

            page.set_viewport_size({"width": 1366, "height": 768})
            page.wait_for_timeout(300)
            assert page.evaluate("document.documentElement.scrollWidth") <= 1366, "horizontal scroll at 1366x768"
            page.screenshot(path=str(OUTPUT / "dashboard-1366x768.png"))
        finally:
            browser.close()

    api = urlsplit(url)
    elsewhere = [r for r in requests if urlsplit(r).netloc != api.netloc or urlsplit(r).scheme != api.scheme]
    assert requests and not elsewhere, f"the page asked other hosts: {elsewhere}"
    assert not console_errors, console_errors
    print(f"alert on the map and in the list {seen_after:.2f} s after publishing; screenshots in {OUTPUT}")
