"""The whole path on real Apache Kafka and Redis: events -> worker -> Redis, dead letters, exact aggregates."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pytest
import redis
from kafka import KafkaConsumer, TopicPartition

from geo.zones import ZoneIndex
from streams.gateway import GatewayProducer
from streams.keys import Keys
from streams.models import Domain
from streams.settings import Settings
from streams.topics import Topics, ensure_topics
from tests.support.citydata import CityInput, batch_truth, batch_truth_windows, make_city_input
from tests.support.deployment import isolated_settings
from tests.support.faults import Results
from tests.support.worker import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(kafka_bootstrap: str, redis_server: object) -> Settings:
    """Settings of one isolated deployment: its own topic namespace, key prefix and consumer group."""
    return isolated_settings(
        "it",
        kafka_bootstrap,
        redis_server.url,  # type: ignore[attr-defined]
        worker={"emit_interval_s": 1, "window_grace_s": 0, "idle_partition_s": 2},
    )


@pytest.fixture(scope="module")
def city() -> CityInput:
    """The fixed input of every test in this module."""
    return make_city_input(seed=7)


@pytest.fixture(scope="module")
def published(settings: Settings, city: CityInput) -> Iterator[dict[str, int]]:
    """Publish the city input with two malformed traffic values in the middle; return counts."""
    ensure_topics(settings.kafka)
    producer = GatewayProducer(settings.kafka)
    topics = Topics(settings.kafka.topic_namespace)
    half = len(city.events) // 2
    try:
        for domain, key, value in city.events[:half]:
            producer.publish_raw(topics.for_domain(Domain(domain)), key.encode(), orjson.dumps(value))
        producer.publish_raw(topics.traffic, b"TLD-0003", b'{"sensor_id": "TLD-0003", "observed_at": ')
        bad = dict(next(v for d, _, v in city.events if d == "traffic"), sensor_id="TLD-0003", lat=200)
        producer.publish_raw(topics.traffic, b"TLD-0003", orjson.dumps(bad))
        for domain, key, value in city.events[half:]:
            producer.publish_raw(topics.for_domain(Domain(domain)), key.encode(), orjson.dumps(value))
    finally:
        producer.close()
    yield {"valid": len(city.events), "bad": 2}


@pytest.fixture(scope="module")
def processed(
    settings: Settings, published: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Run one worker until every valid event's effect is in Redis."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = WorkerProcess(settings, log).start()
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    keys = Keys(settings.redis.key_prefix)

    def all_counted() -> bool:
        stats = {k.decode(): int(v) for k, v in client.hgetall(keys.stats).items()}
        events = sum(v for k, v in stats.items() if k.startswith("events:"))
        return (
            events == published["valid"]
            and stats.get(f"deadletter:{Topics(settings.kafka.topic_namespace).traffic}") == 2
        )

    def all_windows_emitted() -> bool:
        for domain in Domain:
            index = keys.window_index(domain.value, 60)
            if client.zcard(index) != client.zcard(keys.windows_emitted(domain.value, 60)):
                return False
        return True

    try:
        wait_until(all_counted, 90, "every event counted in Redis", worker)
        wait_until(all_windows_emitted, 60, "every window sent to the aggregates topic", worker)
        yield log
    finally:
        worker.stop()
        client.close()


def _redis_aggregates(settings: Settings) -> dict[tuple[str, str, str, int], float]:
    return Results(settings).aggregates()


def test_every_aggregate_equals_the_batch_truth(settings: Settings, city: CityInput, processed: Path) -> None:
    truth = batch_truth(city.events, ZoneIndex.from_file(settings.zones_file))
    got = _redis_aggregates(settings)
    assert set(got) == set(truth)
    mismatched = {k: (got[k], truth[k]) for k in truth if got[k] != truth[k]}
    assert not mismatched
    assert {k[0] for k in got} == {"traffic", "drone", "energy"}


def _alerts(settings: Settings) -> list[dict[str, object]]:
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    keys = Keys(settings.redis.key_prefix)
    ids = [i.decode() for i in client.zrange(keys.alert_index, 0, -1)]
    alerts = [orjson.loads(client.get(keys.alert(i)) or b"null") for i in ids]
    client.close()
    return alerts


def test_each_injected_incident_makes_exactly_one_alert(settings: Settings, city: CityInput, processed: Path) -> None:
    alerts = _alerts(settings)
    by_kind: dict[str, list[str]] = {}
    for a in alerts:
        by_kind.setdefault(str(a["kind"]), []).append(str(a["source_id"]))
    assert sorted(by_kind["congestion"]) == sorted(city.congested_sensors)
    assert sorted(by_kind["nofly_breach"]) == sorted(city.nofly_drones)
    assert sorted(by_kind["load_spike"]) == sorted(city.spiking_meters)
    assert all(a["status"] == "resolved" for a in alerts), "every injected incident ends within the input"
    breach = next(a for a in alerts if a["kind"] == "nofly_breach")
    assert breach["data"]["nofly_zone_id"] == "nofly-government-centre"  # type: ignore[index]
    assert breach["severity"] == "critical" and breach["count"] >= 2


def test_malformed_values_reach_the_dead_letter_topic_with_reason_and_origin(
    settings: Settings, processed: Path
) -> None:
    topics = Topics(settings.kafka.topic_namespace)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_list, enable_auto_commit=False, consumer_timeout_ms=5000
    )
    parts = [TopicPartition(topics.deadletter, p) for p in range(settings.kafka.partitions)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    records = list(consumer)
    consumer.close()
    assert len(records) == 2
    by_reason = {dict(r.headers)["citystream.error.reason"].decode(): r for r in records}
    json_error = next(r for reason, r in by_reason.items() if reason.startswith("invalid JSON"))
    lat_error = next(r for reason, r in by_reason.items() if reason.startswith("lat:"))
    assert json_error.value == b'{"sensor_id": "TLD-0003", "observed_at": '
    assert orjson.loads(lat_error.value)["lat"] == 200
    headers = dict(lat_error.headers)
    assert headers["citystream.source.topic"].decode() == topics.traffic
    assert int(headers["citystream.source.offset"]) >= 0
    assert "less than or equal to 90" in "".join(by_reason)


def test_a_full_replay_changes_nothing(settings: Settings, city: CityInput, processed: Path, tmp_path: Path) -> None:
    before_aggs = _redis_aggregates(settings)
    before_alerts = sorted(orjson.dumps(a, option=orjson.OPT_SORT_KEYS) for a in _alerts(settings))
    replay = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"group_id": "replay-" + uuid.uuid4().hex[:6]})}
    )
    worker = WorkerProcess(replay, tmp_path / "replay.log").start()
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    try:
        # The replaying group commits Kafka offsets as it goes; wait until it has read every partition to the end.
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_list)

        def caught_up() -> bool:
            offsets = admin.list_group_offsets(replay.worker.group_id).get(replay.worker.group_id, {})
            inputs = {Topics(settings.kafka.topic_namespace).for_domain(d) for d in Domain}
            done = sum(o.offset for tp, o in offsets.items() if tp.topic in inputs)
            return done >= len(city.events) + 2

        wait_until(caught_up, 90, "the replaying group to reach the end of every input partition", worker)
        admin.close()
    finally:
        worker.stop()
        client.close()
    assert _redis_aggregates(settings) == before_aggs
    assert sorted(orjson.dumps(a, option=orjson.OPT_SORT_KEYS) for a in _alerts(settings)) == before_alerts


def test_closed_windows_reach_the_aggregates_topic_with_their_final_values(
    settings: Settings, city: CityInput, processed: Path
) -> None:
    topics = Topics(settings.kafka.topic_namespace)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_list, consumer_timeout_ms=5000)
    parts = [TopicPartition(topics.aggregates, p) for p in range(settings.kafka.partitions)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    emitted: dict[tuple[str, str, str, int, int], set[float]] = {}
    for record in consumer:
        agg = orjson.loads(record.value)
        start = datetime.fromisoformat(agg["window_start"]).timestamp()
        size = int(datetime.fromisoformat(agg["window_end"]).timestamp() - start)
        key = (agg["domain"], agg["metric"], agg["zone_id"], size, int(start * 1000))
        emitted.setdefault(key, set()).add(agg["value"])
    consumer.close()
    # Every size (1 min, 15 min, 1 h per zone; 15-min settlement per meter and feeder) against a batch recomputation.
    truth = batch_truth_windows(city.events, ZoneIndex.from_file(settings.zones_file), settings)
    assert {k[3] for k in truth if k[0] == "energy" and k[2].startswith("feeder:")} == {900}
    assert set(emitted) == set(truth)
    assert {k: v for k, v in emitted.items() if v != {truth[k]}} == {}
