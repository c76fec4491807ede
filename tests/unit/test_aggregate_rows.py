"""The planners' JSON built without models equals the AggregatePage pydantic would write, byte for byte."""

from __future__ import annotations

import random

import orjson
import pytest

from api.services.aggregates import window_rows
from processors.metrics import WindowSums, window_aggregates
from streams.models import AggregatePage, Domain

SUM_FIELDS = {
    Domain.traffic: ("n", "speed_micro", "vehicles", "occ_micro", "cong_ms"),
    Domain.drone: ("n", "violations"),
    Domain.energy: ("n", "wh", "mv", "max_w"),
}


@pytest.mark.parametrize("domain", list(Domain))
@pytest.mark.parametrize("metric", [None, "readings", "fixes"])
def test_window_rows_serialise_like_the_aggregate_page(domain: Domain, metric: str | None) -> None:
    rng = random.Random(f"{domain}-{metric}")
    for _ in range(200):
        window_s = rng.choice([60, 900, 3600])
        start_ms = rng.randrange(1_700_000_000_000, 1_800_000_000_000) // 1000 * rng.choice([1, 1000, 60_000])
        sums = {name: rng.randrange(0, 10**9) for name in SUM_FIELDS[domain] if rng.random() < 0.9}
        window = WindowSums(domain, window_s, rng.choice(["changan", "meter:M1", "unzoned"]), start_ms, sums, 3)
        models = [a for a in window_aggregates(window) if metric is None or a.metric == metric]
        expected = AggregatePage(items=models).model_dump_json().encode()
        assert orjson.dumps({"items": window_rows(window, metric)}, option=orjson.OPT_UTC_Z) == expected
