"""Case (b) of bench/throughput.py: a Quix Streams application doing a stateless pass-through.

    <quix venv>/bin/python bench/quix_passthrough.py --bootstrap HOST:PORT --events N TOPIC [TOPIC ...]

Consumes the given topics from the beginning (one StreamingDataFrame each, JSON values), counts, and exits
after N with one JSON line `{"seconds": first -> last consumed, "cpu": process seconds}`. It imports only
quixstreams and the standard library: it runs in its own venv (see bench/throughput.py, `quix_python`),
because quixstreams pins pydantic below the version citystream uses.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from typing import Any


def passthrough(bootstrap: str, topics: list[str], events: int) -> None:
    """Run the application until N values have passed, then print the timings and exit."""
    from quixstreams import Application

    app = Application(
        broker_address=bootstrap,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        loglevel="WARNING",
        use_changelog_topics=False,
        state_dir=os.path.join(tempfile.gettempdir(), "citystream-bench-quix-state"),  # not ./state in the repo
    )
    seen, first = 0, 0.0

    def count(_value: Any) -> None:
        nonlocal seen, first
        seen += 1
        if seen == 1:
            first = time.monotonic()
        if seen == events:
            seconds = time.monotonic() - first
            print(json.dumps({"seconds": seconds, "cpu": time.process_time()}), flush=True)
            os._exit(0)  # the measurement is done; skip the application's shutdown and final commit

    for name in topics:
        app.dataframe(app.topic(name, value_deserializer="json")).update(count)
    app.run()


def main() -> None:
    """Parse the arguments and run the pass-through."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("topics", nargs="+")
    args = parser.parse_args()
    passthrough(args.bootstrap, args.topics, args.events)


if __name__ == "__main__":
    main()
