"""Per-request cost of the API's busy endpoints in-process (no sockets), next to the trivial endpoint.

A companion of api_load.py for a shared machine: it fills a real Redis the same way, then calls the app
through httpx's ASGI transport one request at a time and prints the cost per request and its ratio to
`GET /bench/trivial`, as wall time (Redis round trips included) and as this process's CPU time.
With --profile NAME it prints a pyinstrument profile of that endpoint.

    .venv/bin/python bench/api_inprocess.py [--requests 300] [--windows 200000] [--profile alerts]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
import redis  # noqa: E402
from api_load import PREFIX, bench_app, endpoint_paths, fill_alerts, fill_windows  # noqa: E402

from citystream.servers import RedisServer  # noqa: E402
from streams.keys import Keys  # noqa: E402


async def measure(
    redis_url: str, key: str, now_ms: int, requests: int, profile: str | None, page_cache: bool = True
) -> None:
    """Call each endpoint `requests` times in a row; print ms per request and the ratio to the trivial one."""
    app = bench_app(redis_url)
    headers = {"Authorization": f"Bearer {key}"}
    costs: dict[str, float] = {}
    cpu_costs: dict[str, float] = {}
    async with app.router.lifespan_context(app):
        if not page_cache:
            from api.services.alert_pages import PageCache

            app.state.alert_pages = PageCache(max_entries=0)
            app.state.change_feed = None  # no kept answers in front of the routes either
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as client:
            for name, path in endpoint_paths(now_ms).items():
                for _ in range(20):
                    assert (await client.get(path)).status_code == 200
                began, cpu = time.perf_counter(), time.process_time()
                for _ in range(requests):
                    await client.get(path)
                costs[name] = (time.perf_counter() - began) / requests * 1000
                cpu_costs[name] = (time.process_time() - cpu) / requests * 1000
                if profile and profile in name:
                    from pyinstrument import Profiler

                    with Profiler(async_mode="enabled") as profiler:
                        for _ in range(requests):
                            await client.get(path)
                    print(profiler.output_text(color=False, show_all=False))
    floor = next(v for k, v in costs.items() if "trivial" in k)
    cpu_floor = next(v for k, v in cpu_costs.items() if "trivial" in k)
    print("| endpoint | wall ms per request | x trivial | API process CPU ms per request | x trivial |")
    print("|---|---:|---:|---:|---:|")
    for name, cost in costs.items():
        cpu = cpu_costs[name]
        print(f"| `{name}` | {cost:.2f} | {cost / floor:.1f} | {cpu:.2f} | {cpu / cpu_floor:.1f} |")
    print("(in-process through httpx's ASGI transport, one request at a time; CPU includes the httpx client's)")


def main() -> None:
    """Fill Redis, then time each endpoint in-process."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--windows", type=int, default=200_000)
    parser.add_argument("--profile", help="print a pyinstrument profile of the endpoint whose name contains this")
    parser.add_argument("--no-page-cache", action="store_true", help="compute every /alerts page, as if alerts changed")
    args = parser.parse_args()
    from api.auth import create_key
    from api.roles import Role

    rng = random.Random(6)
    now_ms = int(time.time() * 1000)
    with tempfile.TemporaryDirectory() as workdir, RedisServer(workdir=workdir) as server:
        client = redis.Redis.from_url(server.url)
        keys = Keys(PREFIX)
        fill_alerts(client, keys, args.alerts, now_ms, rng)
        fill_windows(client, keys, args.windows, now_ms, rng)
        key = create_key(client, keys, Role.admin, "bench")
        client.close()
        client = redis.Redis.from_url(server.url)
        client.config_resetstat()
        asyncio.run(measure(server.url, key, now_ms, args.requests, args.profile, not args.no_page_cache))
        stats = sorted(client.info("commandstats").items(), key=lambda kv: -kv[1]["usec"])
        print(
            "redis time by command:",
            ", ".join(f"{k[4:]} {v['usec_per_call']:.0f} us x {v['calls']}" for k, v in stats[:6]),
        )
        client.close()


if __name__ == "__main__":
    main()
