"""Request latency per route, kept in process and rendered in the Prometheus text format."""

from __future__ import annotations

import bisect
import time
from collections import defaultdict

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LatencyHistogram:
    """Cumulative latency buckets per (method, route template)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(BUCKETS_S) + 1))
        self.sums: dict[tuple[str, str], float] = defaultdict(float)

    def observe(self, method: str, route: str, seconds: float) -> None:
        """Count one request."""
        self.counts[(method, route)][bisect.bisect_left(BUCKETS_S, seconds)] += 1
        self.sums[(method, route)] += seconds

    def render(self, name: str) -> list[str]:
        """Return the histogram's lines in the Prometheus text format."""
        lines = [
            f"# HELP {name} Time from request to response start, per route.",
            f"# TYPE {name} histogram",
        ]
        for (method, route), counts in sorted(self.counts.items()):
            labels = f'method="{method}",route="{escape(route)}"'
            total = 0
            for bound, count in zip((*BUCKETS_S, float("inf")), counts, strict=True):
                total += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f'{name}_bucket{{{labels},le="{le}"}} {total}')
            lines.append(f"{name}_sum{{{labels}}} {self.sums[(method, route)]:.6f}")
            lines.append(f"{name}_count{{{labels}}} {total}")
        return lines


def escape(value: str) -> str:
    """Escape a Prometheus label value."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class RequestTimer:
    """ASGI middleware: observe each HTTP request's time to response start under its route template."""

    def __init__(self, app: ASGIApp, histogram: LatencyHistogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request; unmatched paths count under `unmatched` so scanners cannot blow up the labels."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        observed = False

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                self.histogram.observe(scope["method"], route, time.perf_counter() - started)

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                observe()
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            observe()
