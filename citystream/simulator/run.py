"""Drive a simulator in real time and hand each event to a publisher."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from citystream.simulator.core import CitySimulator

Publish = Callable[[str, str, dict[str, Any]], Awaitable[object] | object]


async def run_simulation(
    publish: Publish,
    sim: CitySimulator,
    duration_s: float | None = None,
    *,
    realtime: bool = True,
    step_s: float = 0.25,
    backfill_s: float = 0.0,
) -> int:
    """Publish the simulator's events from its start for duration_s (None: until cancelled); return how many.

    With backfill_s, the first backfill_s simulated seconds are published at once (history to warm up
    baselines), then simulated time follows the wall clock backfill_s ahead of the simulator's start.
    """
    lead = timedelta(seconds=backfill_s)
    end = None if duration_s is None else sim.start + lead + timedelta(seconds=duration_s)
    cursor, sent = sim.start, 0
    wall_start = time.monotonic()
    while end is None or cursor < end:
        # Simulated time follows the wall clock from the simulator's start; without realtime, run ahead in steps.
        elapsed = time.monotonic() - wall_start if realtime else (cursor - sim.start).total_seconds() + 60
        target = sim.start + lead + timedelta(seconds=elapsed)
        target = target if end is None else min(end, target)
        for domain, key, value in sim.events_between(cursor, target):
            result = publish(domain, key, value)
            if inspect.isawaitable(result):
                await result
            sent += 1
        cursor = target
        if end is None or cursor < end:
            await asyncio.sleep(step_s if realtime else 0)
    return sent
