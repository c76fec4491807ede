"""Structured logging: `time level logger key="value" ...` lines on stderr."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO") -> None:
    """Send logs to stderr in one line each, with the logger name and level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kafka-python logs every refused connection at ERROR while it retries; citystream reports the outcome itself.
    logging.getLogger("kafka").setLevel(logging.DEBUG if root.level == logging.DEBUG else logging.CRITICAL)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
