"""The worker: Faust as the frame (producer, timers, lifecycle) around the batch intake and runner."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import faust
import mode
from aiokafka.errors import KafkaError
from faust.app.base import BootStrategy
from faust.exceptions import NotReady
from redis.exceptions import RedisError

from geo.zones import ZoneIndex
from processors import native
from processors.drone.fence_store import FenceSource
from processors.intake import BatchIntake
from processors.outcome import BatchOutcome, DeadLetter
from processors.runner import BatchRunner
from processors.sink import RedisSink
from processors.windows import WindowStore
from streams.app import create_faust_app
from streams.codec import codec_name
from streams.keys import Keys
from streams.models import Aggregate, Alert, Domain
from streams.redisio import redis_client
from streams.settings import Settings
from streams.topics import Topics

log = logging.getLogger(__name__)


def create_worker(settings: Settings) -> faust.App:
    """Build the worker app: the batch intake of the sensor topics, a window emitter timer, dead letters.

    The intake's consumer is the worker's member of the consumer group (`CITY_WORKER__GROUP_ID`). Faust's
    own consumer, conductor and tables have nothing to feed, so they are not started (Faust's documented
    boot strategy switch): Faust runs the producer, the timers and the worker's lifecycle.
    """
    app = create_faust_app(settings)
    app.boot_strategy = BootStrategy(app, enable_kafka_consumer=False)
    zones = ZoneIndex.from_file(settings.zones_file)
    redis = redis_client(settings.redis.url.get_secret_value(), socket_timeout=settings.redis.socket_timeout_s)
    keys = Keys(settings.redis.key_prefix)
    topics = Topics(settings.kafka.topic_namespace)
    alerts_topic = app.topic(topics.alerts, value_serializer=codec_name(Alert), key_serializer="raw")
    aggregates_topic = app.topic(topics.aggregates, value_serializer=codec_name(Aggregate), key_serializer="raw")
    deadletter_topic = app.topic(topics.deadletter, value_serializer="raw", key_serializer="raw")

    late_topic = app.topic(topics.late, value_serializer="raw", key_serializer="raw")

    async def publish(outcome: BatchOutcome) -> None:
        """Send dead letters, late events and changed alerts, waiting for Kafka's acks, before Redis is committed."""
        futures = []
        for target, refused in ((deadletter_topic, outcome.deadletters), (late_topic, outcome.late)):
            for dl in refused:
                futures.append(await target.send(key=dl.key, value=dl.value or b"", headers=refusal_headers(dl)))
                log.warning(
                    'refused event to="%s" topic="%s" partition=%d offset=%d stage="%s" reason="%s"',
                    target.get_topic_name(),
                    dl.topic,
                    dl.partition,
                    dl.offset,
                    dl.stage,
                    dl.reason,
                )
        for alert in outcome.alerts.values():
            futures.append(await alerts_topic.send(key=alert.id.encode(), value=alert))
        if futures:
            await asyncio.gather(*futures)

    retention_s = int(settings.worker.window_retention_h * 3600)

    async def seek(topic: str, partition: int, offset: int) -> None:
        """Make the intake read a partition again from an offset (the runner's hole guard and watchdog)."""
        await intake.seek(topic, partition, offset)

    drone = settings.drone
    fences = FenceSource(redis, keys, zones, drone.permits_file, drone.fence_refresh_s)
    runner = BatchRunner(settings, zones, RedisSink(redis, keys, retention_s), publish, seek, fences)
    inputs = {topics.for_domain(d) for d in Domain}
    intake = BatchIntake(settings, runner, sorted(inputs))

    @app.service
    class Intake(mode.Service):
        """Starts the batch intake with the app and stops it first on shutdown."""

        async def on_start(self) -> None:
            # The frame's ~110,000 objects (modules, Faust, aiokafka, pydantic, shapely) live as long as the
            # worker, yet every full collection walked them: 100-140 ms pauses that held live alerts back. Out
            # of the collector's sight from here on (reference counting still frees them, as ever). A batch's
            # events and outcome live until its commit, so with Python's 700 new objects per young collection
            # a 100,000-event replay ran 1,585 collections in 2.2 s of its 12 s; at 50,000, 5 in 0.06 s.
            gc.collect()
            gc.freeze()
            gc.set_threshold(settings.worker.gc_young_objects, 10, 10)
            verdict = native.install()  # decided when `processors` was first imported; said once per worker
            mode_ = "compiled" if verdict.files else "as plain Python"
            log.info('processors run %s reason="%s"', mode_, verdict.reason)
            await intake.start(on_failure=lambda exc: self.add_future(self.crash(exc)))

        async def on_stop(self) -> None:
            await intake.stop()

    sizes = {d: sorted({*settings.worker.zone_sizes(d.value), *settings.worker.source_sizes(d.value)}) for d in Domain}
    stores = {
        (domain, size): WindowStore(redis, keys, size, topics, settings.worker.idle_partition_s)
        for domain in Domain
        for size in sizes[domain]
    }

    @app.timer(settings.worker.emit_interval_s)
    async def emit_closed_windows() -> None:
        """Send every window's final figures (all sizes, zones and groups) once the watermark passed end + grace."""
        try:
            for (domain, _), windows in stores.items():
                refs = await windows.closed_unemitted(domain, settings.worker.window_grace_s)
                if not refs:
                    continue
                for agg in await windows.aggregates(domain, refs):
                    key = f"{agg.domain}:{agg.zone_id}:{agg.metric}".encode()
                    await aggregates_topic.send(key=key, value=agg)
                await windows.mark_emitted(domain, refs)
                await windows.forget_expired(domain)
        except RedisError as exc:
            log.warning('window emitter waiting for redis error="%s"', exc)
        except (KafkaError, NotReady) as exc:  # the windows stay unmarked and go out on a later tick
            log.warning('window emitter waiting for kafka error="%s"', exc)

    @app.timer(settings.worker.silence_check_s)
    async def check_silent_sources() -> None:
        """Alert on detectors, meters and airborne drones that went quiet, even when no message arrives at all."""
        now_ms = int(time.time() * 1000)
        try:
            for tp in sorted(intake.assignment()):
                if tp.topic in inputs:
                    end = intake.highwater(tp)
                    raised = await runner.check_silence(tp.topic, tp.partition, now_ms, end)
                    if raised:
                        log.info('silent sources alerted topic="%s" partition=%d count=%d', *tp, raised)
        except (RedisError, OSError) as exc:
            log.warning('silence check waiting for redis error="%s"', exc)

    @app.timer(settings.worker.stall_check_s)
    async def unstall_partitions() -> None:
        """Read a partition again from its Redis position when its records wait and nothing is applied."""
        mine = [tp for tp in intake.assignment() if tp.topic in inputs]
        if not mine:
            return
        try:
            ends = await intake.end_offsets(mine)
            busy = intake.idle_for() < 1.0
            for tp in sorted(mine):
                await runner.unstall(tp.topic, tp.partition, ends.get(tp), settings.worker.stall_after_s, busy)
        except (RedisError, OSError, KafkaError) as exc:
            log.warning('stall check waiting error="%s"', exc)

    return app


def refusal_headers(dl: DeadLetter) -> dict[str, bytes]:
    """Return the Kafka headers that say why and from where a value was refused."""
    return {
        "citystream.error.reason": dl.reason.encode(),
        "citystream.error.stage": dl.stage.encode(),
        "citystream.source.topic": dl.topic.encode(),
        "citystream.source.partition": str(dl.partition).encode(),
        "citystream.source.offset": str(dl.offset).encode(),
    }
