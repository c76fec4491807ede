"""A real `citystream api` process for tests, and its answers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from citystream.servers import ServerProcess, free_port
from streams.settings import Settings
from tests.support.worker import child_env, settings_env, wait_until


def get(url: str, key: str | None = None) -> tuple[int, dict[str, Any]]:
    """Return the status and JSON body of a GET (with an API key if given), 4xx/5xx included."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def _answers(url: str) -> bool:
    try:
        get(f"{url}/health")
        return True
    except OSError:
        return False


@contextmanager
def api_process(settings: Settings, log: Path, auth: bool = False) -> Iterator[str]:
    """Run `citystream api` for the settings on a free port; yield its base URL.

    Without `auth` it needs no key: the fault tests read /alerts while Redis is down, when no key could be
    checked. The dashboard test keeps auth on, as an operator would use it.
    """
    port = free_port()
    env = {
        **child_env(),
        **settings_env(settings),
        "CITY_API__HEALTH_TIMEOUT_S": "1",
        "CITY_API__AUTH_ENABLED": "true" if auth else "false",
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "citystream", "api", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _answers(url), 30, "the API to answer")
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


def outage(
    server: ServerProcess,
    name: str,
    seconds: float,
    api_url: str,
    while_down: Callable[[], None] = lambda: None,
) -> float:
    """Stop a server for `seconds`, asserting the API answers 503 naming it meanwhile; return the time it was down.

    `while_down` runs further checks during the outage. Returns once the server is back and /health is 200.
    """
    server.stop()
    stopped = time.monotonic()
    wait_until(lambda: get(f"{api_url}/health")[0] == 503, 20, f"the API to report {name} down")
    status, body = get(f"{api_url}/health")
    assert status == 503 and body["unavailable"] == [name]
    while_down()
    time.sleep(max(0.0, seconds - (time.monotonic() - stopped)))
    server.start()
    down = time.monotonic() - stopped
    wait_until(lambda: get(f"{api_url}/health")[0] == 200, 60, f"the API to see {name} again")
    return down
