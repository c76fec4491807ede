"""GET /metrics: Prometheus text, no key needed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from api.deps import KeysDep, OptionsDep, RedisDep
from api.services.metrics import render_metrics

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, redis: RedisDep, keys: KeysDep, options: OptionsDep) -> PlainTextResponse:
    """Return counters per topic, alerts by kind and status, partition freshness and request latency."""
    state = request.app.state
    lines = await render_metrics(redis, keys, options, state.alert_counts)
    lines += state.latency.render("citystream_http_request_duration_seconds")
    lines += state.response_cache.render("citystream_api_answers_total")
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8")
