"""The Faust app factory: one place that turns settings into a configured faust.App."""

from __future__ import annotations

import tempfile
from pathlib import Path

import faust

from streams.codec import register_codec
from streams.security import faust_credentials
from streams.settings import Settings


def create_faust_app(settings: Settings, app_id: str | None = None) -> faust.App:
    """Build a Faust app for citystream's brokers; nothing connects until the worker starts."""
    register_codec()
    kafka = settings.kafka
    name = app_id or settings.worker.group_id
    datadir = Path(tempfile.gettempdir()) / "citystream-faust"
    datadir.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    return faust.App(
        name,
        # Faust makes `<id>-data/` for table files; citystream keeps no state there (tables are in memory, the
        # truth in Redis), so it goes to the temp dir instead of littering the working directory.
        datadir=datadir / f"{name}-data",
        broker=";".join(f"kafka://{s}" for s in kafka.bootstrap_list),
        broker_client_id=kafka.client_id,
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        topic_allow_declare=True,
        broker_session_timeout=kafka.session_timeout_s,
        broker_heartbeat_interval=kafka.heartbeat_interval_s,
        broker_request_timeout=kafka.request_timeout_s,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_enabled=False,
        broker_credentials=faust_credentials(kafka),
        autodiscover=False,
    )
