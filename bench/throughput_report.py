"""The printed figures of bench/throughput.py: the consumers' table and ratios, alert latency, peak RSS, targets."""

from __future__ import annotations

import os
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.throughput_latency import Latency
from bench.throughput_workers import PeakRss
from processors.drone.detectors import REMOTE_ID_FAILURE
from streams.models import Domain


@dataclass(frozen=True)
class Pair:
    """(d) and (e) measured one right after the other on the same input, in `order`."""

    d: float
    e: float
    order: str

    @property
    def ratio(self) -> float:
        return self.e / self.d


def median_ratio(pairs: Sequence[Pair]) -> float:
    """Return the median of the pairs' e/d: one pair caught by the machine's drift does not decide it."""
    return statistics.median(p.ratio for p in pairs)


def print_pairs(pairs: Sequence[Pair]) -> None:
    """Print each (d, e) pair with its ratio, and their median."""
    print(f"\n(d) and (e) {len(pairs)} times, alternating which goes first\n")
    print("| pair | order | (d) events/s | (e) events/s | e/d |")
    print("|---:|---|---:|---:|---:|")
    for n, p in enumerate(pairs, 1):
        print(f"| {n} | {p.order} | {p.d:,.0f} | {p.e:,.0f} | {p.ratio:.3f} |")
    print(f"\nmedian e/d = {median_ratio(pairs):.3f}")


def print_throughput(events: int, rows: list[tuple[str, float, str]]) -> dict[str, float]:
    """Print the consumers' table and the ratios; return the rates by case letter."""
    print(
        f"\n{events:,} events, 8 partitions per topic, Apache Kafka 4.1 and Redis on this machine "
        f"({os.cpu_count()} cores), {datetime.now(UTC):%Y-%m-%d}\n"
    )
    print("| consumer | events/s | CPU s |")
    print("|---|---:|---:|")
    for label, rate, cpu in rows:
        print(f"| {label} | {rate:,.0f} | {cpu} |")
    rates = {label[1]: rate for label, rate, _ in rows}
    ratios = [
        f"{name} = {rates[name[0]] / rates[name[2]]:.3f}"
        for name in ("d/a", "d/b", "d/c", "e/d")
        if name[0] in rates and name[2] in rates
    ]
    print("\n" + "   ".join(ratios))
    return rates


def print_latency(runs: list[Latency]) -> None:
    """Print the alert latency table, one row per producer rate."""
    print(
        "\nalert latency, event produced -> alert in Redis (one worker; open-loop producer; a marker fix that "
        f"raises {REMOTE_ID_FAILURE} every 100 ms; alert time = its alert-events stream entry id)\n"
    )
    print("| producer rate | achieved/s | send late p99 ms | markers seen | p50 ms | p99 ms | max ms | worker |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for run in runs:
        seen = run.latencies_ms
        state = (
            f"fell behind: lag {run.lag_at_end:,} at the end ({run.lag_drained:,} 10 s later); "
            "latencies are of the markers applied by then"
            if run.behind
            else f"kept up: lag {run.lag_at_end:,} at the end"
        )
        p50, p99, top = (f"{v:,.0f}" for v in (run.percentile(50), run.percentile(99), max(seen, default=float("nan"))))
        print(
            f"| {run.rate:,.0f}/s | {run.achieved:,.0f} | {run.send_late_p99_ms:,.1f} | "
            f"{len(seen)}/{run.markers_sent} | {p50} | {p99} | {top} | {state}; CPU s {run.cpu[0]:.1f} |"
        )


def print_rss(rss: PeakRss, events: int, distinct: Counter[Domain]) -> None:
    """Print the worker's peak RSS line."""
    mb = 1024 * 1024
    parts = ", ".join(f"{d.value} {distinct[d]:,}" for d in Domain)
    held = ", ".join(f"{d.value} {rss.held[d]:,}" for d in Domain)
    print(
        f"\npeak RSS of one worker (children included, sampled every 0.2 s, {rss.samples:,} samples over "
        f"{rss.seconds:.0f} s) applying {events:,} events from {sum(distinct.values()):,} distinct sources "
        f"({parts}): {rss.peak_bytes / mb:,.0f} MB (first sample, 0.2 s after start: {rss.start_bytes / mb:,.0f} MB); "
        f"sources with state in Redis after it: {sum(rss.held.values()):,} ({held})"
    )


def print_targets(
    rates: dict[str, float], runs: list[Latency], rss: PeakRss | None, target_rate: float, pairs: Sequence[Pair] = ()
) -> None:
    """Print each target of issue #9 as met, missed or not measured (e/d: the median of several pairs)."""

    def verdict(ok: bool, figure: str) -> str:
        return f"{'met' if ok else 'MISSED'} ({figure})"

    out = []
    if "d" in rates:
        out.append("(d) >= 100,000 events/s: " + verdict(rates["d"] >= 100_000, f"{rates['d']:,.0f}"))
    if len(pairs) > 1:
        ratio = median_ratio(pairs)
        out.append(f"e/d >= 1.5: {verdict(ratio >= 1.5, f'{ratio:.2f}')}, the median of {len(pairs)} pairs")
    elif "d" in rates and "e" in rates:
        out.append("e/d >= 1.5: " + verdict(rates["e"] / rates["d"] >= 1.5, f"{rates['e'] / rates['d']:.2f}"))
    at_target = [r for r in runs if r.rate == target_rate]
    if at_target:
        run = at_target[0]
        ok = not run.behind and run.percentile(99) < 200
        figure = "worker fell behind" if run.behind else f"p99 {run.percentile(99):,.0f} ms"
        out.append(f"alert p99 < 200 ms at {target_rate:,.0f}/s: " + verdict(ok, figure))
    if rss is not None:
        out.append("peak RSS < 400 MB: " + verdict(rss.peak_bytes < 400 * 2**20, f"{rss.peak_bytes / 2**20:,.0f} MB"))
    print("\ntargets: " + "; ".join(out))
