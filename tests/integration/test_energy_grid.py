"""Energy on real Kafka and Redis: every injected grid event makes its alert once; settlement windows are exact."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from citystream.servers import RedisServer
from citystream.simulator import CitySimulator, SimSize
from citystream.simulator.energy import SHORT_VOLTAGE_DIP
from geo.zones import ZoneIndex
from processors.windows import WindowStore
from streams.gateway import GatewayProducer
from streams.keys import Keys
from streams.models import Domain
from streams.topics import Topics, ensure_topics
from tests.support.citydata import batch_truth_windows
from tests.support.deployment import isolated_settings
from tests.support.faults import Results
from tests.support.worker import WorkerProcess, wait_until

pytestmark = pytest.mark.integration

MINUTES = 30


def test_each_injected_energy_event_alerts_once_and_settlement_windows_match_a_batch_recomputation(
    kafka_bootstrap: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = isolated_settings(
        "energy",
        kafka_bootstrap,
        redis_server.url,
        kafka={"partitions": 4},
        silence_s=900,
        worker={"window_grace_s": 0},
    )
    ensure_topics(settings.kafka)
    zones = ZoneIndex.from_file(settings.zones_file)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=MINUTES + 10)
    end = start + timedelta(minutes=MINUTES)
    sim = CitySimulator(zones, seed=8, start=start, sensors=SimSize(traffic_sensors=0, drones=0, meters=60))
    events = sim.events_between(start, end)
    producer = GatewayProducer(settings.kafka)
    for _, key, value in events:
        producer.send(Domain.energy, key, orjson.dumps(value))
    producer.flush(30)
    producer.close()
    results = Results(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        wait_until(lambda: results.progress() == len(events), 180, f"{len(events)} readings applied", worker)
        expected = Counter(
            (i.kind, i.source)
            for i in sim.injected
            if i.domain == Domain.energy and i.kind != SHORT_VOLTAGE_DIP and i.start < end - timedelta(seconds=30)
        )
        kinds = {kind for kind, _ in expected}
        assert {"feeder_outage", "meter_offline", "voltage_sag", "voltage_swell", "frequency_deviation"} <= kinds
        assert {"low_power_factor", "counter_fault", "load_spike"} <= kinds

        def found() -> Counter[tuple[str, str]]:
            return Counter((kind, source) for kind, source, _, _ in results.alerts().values())

        wait_until(lambda: found() == expected, 30, "one alert per injected energy event", worker)
        assert found() == expected
    finally:
        worker.stop()

    # 15-minute settlement kWh (per zone, meter and feeder), peak kW and mean voltage: exact.
    truth = {k: v for k, v in batch_truth_windows(events, zones, settings).items() if k[3] == 900}
    got = _windows(settings, 900)
    assert set(got) == set(truth)
    assert {k: (got[k], truth[k]) for k in truth if got[k] != truth[k]} == {}
    assert any(k[2].startswith("feeder:") and k[1] == "energy_kwh" for k in got)


def _windows(settings: object, size: int) -> dict[tuple[str, str, str, int, int], float]:
    import asyncio

    from redis.asyncio import Redis as AsyncRedis

    from streams.settings import Settings

    assert isinstance(settings, Settings)

    async def read() -> dict[tuple[str, str, str, int, int], float]:
        client = AsyncRedis.from_url(settings.redis.url.get_secret_value())
        store = WindowStore(client, Keys(settings.redis.key_prefix), size, Topics(settings.kafka.topic_namespace))
        out = {}
        for agg in await store.aggregates(Domain.energy, await store.window_refs(Domain.energy)):
            out[(agg.domain.value, agg.metric, agg.zone_id, size, int(agg.window_start.timestamp() * 1000))] = agg.value
        await client.aclose()
        return out

    return asyncio.run(read())
