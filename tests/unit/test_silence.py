"""Silent sources: the live check and the stream agree on one alert per silence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from geo.zones import ZoneIndex
from processors.drone.processor import DroneProcessor
from processors.energy.processor import EnergyProcessor
from processors.outcome import BatchOutcome
from processors.silence import SilenceRule, on_reading, silent_alert
from processors.traffic.processor import TrafficProcessor
from streams.models import AlertStatus, Domain, DroneTelemetry, EnergyReading, Severity, TrafficReading
from streams.settings import DEFAULT_ZONES_FILE, DroneRules, EnergyRules, Settings, TrafficRules
from tests.support.events import valid_value

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
RULE = SilenceRule("sensor_offline", Domain.traffic, Severity.medium, 300_000, "detector")


def traffic(at: datetime) -> TrafficReading:
    return TrafficReading.model_validate(valid_value("traffic") | {"sensor_id": "LD-1", "observed_at": at.isoformat()})


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def test_a_reading_after_a_long_gap_raises_the_silence_already_resolved() -> None:
    state: dict[str, Any] = {}
    out = BatchOutcome(Domain.traffic, 60)
    on_reading(RULE, traffic(T0), "z", state, out)
    on_reading(RULE, traffic(T0 + timedelta(seconds=299)), "z", state, out)
    assert out.alerts == {}
    on_reading(RULE, traffic(T0 + timedelta(seconds=299 + 400)), "z", state, out)
    (alert,) = out.alerts.values()
    assert (alert.kind, alert.status, alert.count) == ("sensor_offline", AlertStatus.resolved, 1)
    assert alert.measured_value == 400 and alert.threshold == 300 and alert.unit == "s"
    assert alert.first_seen == T0 + timedelta(seconds=299)
    assert alert.resolved_at == T0 + timedelta(seconds=699)
    assert out.silence_watch == {"LD-1": ms(T0 + timedelta(seconds=699))}


def test_the_live_check_opens_the_same_alert_the_return_resolves_once() -> None:
    state: dict[str, Any] = {}
    out = BatchOutcome(Domain.traffic, 60)
    on_reading(RULE, traffic(T0), "z", state, out)
    live = BatchOutcome(Domain.traffic, 60)
    assert not silent_alert(RULE, "LD-1", state, ms(T0) + 300_000, live)  # exactly the limit is not over it
    assert silent_alert(RULE, "LD-1", state, ms(T0) + 301_000, live)
    (opened,) = live.alerts.values()
    assert (opened.status, opened.measured_value, opened.zone_id) == (AlertStatus.open, 301, "z")
    assert live.silence_watch == {"LD-1": None}
    again = BatchOutcome(Domain.traffic, 60)
    assert not silent_alert(RULE, "LD-1", state, ms(T0) + 900_000, again)  # one alert per silence
    back = BatchOutcome(Domain.traffic, 60)
    on_reading(RULE, traffic(T0 + timedelta(seconds=1000)), "z", state, back)
    (resolved,) = back.alerts.values()
    assert resolved.id == opened.id
    assert (resolved.status, resolved.measured_value) == (AlertStatus.resolved, 1000)
    # The stream alone, without the live check, ends with the very same alert.
    replay_state: dict[str, Any] = {}
    replay = BatchOutcome(Domain.traffic, 60)
    on_reading(RULE, traffic(T0), "z", replay_state, replay)
    on_reading(RULE, traffic(T0 + timedelta(seconds=1000)), "z", replay_state, replay)
    assert list(replay.alerts.values()) == [resolved]


def test_each_domain_watches_its_sources_with_its_own_timeout() -> None:
    settings = Settings(
        environment="test",
        traffic=TrafficRules(offline_after_s=120),
        drone=DroneRules(telemetry_loss_s=15),
        energy=EnergyRules(offline_after_s=900),
    )
    zones = ZoneIndex.from_file(DEFAULT_ZONES_FILE)
    assert TrafficProcessor(settings).silence.timeout_ms == 120_000
    assert EnergyProcessor(settings).silence.kind == "meter_offline"
    drone = DroneProcessor(settings, zones)
    assert (drone.silence.kind, drone.silence.timeout_ms) == ("telemetry_loss", 15_000)


def test_a_drone_on_the_ground_may_go_quiet_an_airborne_one_may_not() -> None:
    settings = Settings(environment="test", drone=DroneRules(telemetry_loss_s=15))
    processor = DroneProcessor(settings, ZoneIndex.from_file(DEFAULT_ZONES_FILE))

    def fix(status: str, at: datetime) -> DroneTelemetry:
        return DroneTelemetry.model_validate(
            valid_value("drone") | {"drone_id": "UAS-9", "status": status, "observed_at": at.isoformat()}
        )

    landed: dict[str, Any] = {}
    out = BatchOutcome(Domain.drone, 60)
    processor.process(fix("ground", T0), "z", landed, out)
    assert out.silence_watch == {"UAS-9": None}
    assert not silent_alert(processor.silence, "UAS-9", landed, ms(T0) + 60_000, out)
    flying: dict[str, Any] = {}
    processor.process(fix("airborne", T0), "z", flying, out)
    assert silent_alert(processor.silence, "UAS-9", flying, ms(T0) + 16_000, out)
    assert any(a.kind == "telemetry_loss" and a.severity == Severity.high for a in out.alerts.values())


def test_a_meter_reading_feeds_the_watch_list() -> None:
    processor = EnergyProcessor(Settings(environment="test"))
    value = valid_value("energy") | {"meter_id": "MTR-1", "observed_at": T0.isoformat()}
    out = BatchOutcome(Domain.energy, 60)
    processor.process(EnergyReading.model_validate(value), "z", {}, out)
    assert out.silence_watch == {"MTR-1": ms(T0)}
