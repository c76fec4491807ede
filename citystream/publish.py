"""`citystream publish`: send a JSON-lines file of one domain's events to Kafka, with progress."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

import orjson

from streams.gateway import GatewayProducer, validate_items
from streams.models import Domain
from streams.settings import Settings

CHUNK = 2000


def publish_file(settings: Settings, path: Path, domain: Domain, out: TextIO = sys.stderr) -> tuple[int, int]:
    """Publish every valid line of a JSON-lines file; report refused lines; return (accepted, rejected)."""
    producer = GatewayProducer(settings.kafka, linger_ms=20)
    accepted = rejected = 0
    try:
        with path.open("rb") as fh:
            lines = [(n, line) for n, line in enumerate(fh, start=1) if line.strip()]
        for start in range(0, len(lines), CHUNK):
            chunk = lines[start : start + CHUNK]
            items: list[Any] = []
            numbers: list[int] = []
            for n, line in chunk:
                try:
                    items.append(orjson.loads(line))
                    numbers.append(n)
                except orjson.JSONDecodeError as exc:
                    rejected += 1
                    print(f"{path}:{n}: rejected: invalid JSON: {exc}", file=out)
            valid, refused = validate_items(domain, items)
            for r in refused:
                print(f"{path}:{numbers[r.index]}: rejected: {r.reason}", file=out)
            rejected += len(refused)
            accepted += producer.publish(domain, valid)
            print(f"published {accepted} of {len(lines)} lines ({rejected} rejected)", file=out, flush=True)
    finally:
        producer.close()
    return accepted, rejected
