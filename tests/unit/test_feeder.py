"""Feeder outage: one alert for a feeder whose meters go dark together, resolved with its duration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from processors.energy.feeder import FEEDER_OUTAGE, SupplyTransition, feeder_step, supply_transition
from processors.energy.processor import EnergyProcessor
from processors.outcome import BatchOutcome
from streams.models import AlertStatus, Domain, EnergyReading
from streams.settings import EnergyRules, Settings
from tests.support.events import valid_value

T0 = 1_795_000_000_000
RULES = EnergyRules()  # at least 3 meters and half the feeder, dark within 120 s of each other


def t(meter: int, at_s: float, dark: bool) -> SupplyTransition:
    return SupplyTransition("FDR-7", f"MTR-{meter:03d}", T0 + int(at_s * 1000), dark, 113.7, 22.8, "changan")


def run(state: dict[str, Any] | None, transitions: list[SupplyTransition]) -> tuple[dict[str, Any], list[Any]]:
    return feeder_step("FDR-7", state, transitions, RULES)


def fed(n: int) -> dict[str, Any]:
    """A feeder whose n meters have all reported with supply."""
    state, alerts = run(None, [t(m, 0, False) for m in range(n)])
    assert alerts == []
    return state


def test_forty_meters_going_dark_make_one_outage_alert_listing_them() -> None:
    state = fed(50)
    alerts_seen: dict[str, Any] = {}
    # Forty meters lose supply over 30 s, reported in four batches (as four partitions would).
    for batch in range(4):
        state, alerts = run(
            state, [t(m, 10 + batch * 10 + m % 10 * 0.5, True) for m in range(batch * 10, batch * 10 + 10)]
        )
        alerts_seen.update({a.id: a for a in alerts})
    assert len(alerts_seen) == 1
    (alert,) = alerts_seen.values()
    assert (alert.kind, alert.status, alert.source_id) == (FEEDER_OUTAGE, AlertStatus.open, "FDR-7")
    assert alert.data["affected_meters"] == [f"MTR-{m:03d}" for m in range(40)]
    assert (alert.count, alert.data["meters_on_feeder"]) == (40, 50)
    assert alert.first_seen == datetime.fromtimestamp((T0 + 10_000) / 1000, UTC)
    # Power returns: the same alert resolves, with the outage's duration.
    state, alerts = run(state, [t(m, 600, False) for m in range(40)])
    assert [a.id for a in alerts] == [alert.id]
    assert alerts[0].status == AlertStatus.resolved
    assert alerts[0].data["outage_duration_s"] == 590
    assert state["episode"] is None


def test_one_dark_meter_is_not_a_feeder_outage() -> None:
    state, alerts = run(fed(10), [t(3, 50, True)])
    assert alerts == []
    assert state["meters"]["MTR-003"] == T0 + 50_000


def test_meters_dark_far_apart_in_time_are_not_one_outage() -> None:
    state = fed(4)
    for i, at in enumerate((0, 600, 1200)):
        state, alerts = run(state, [t(i, at, True)])
        assert alerts == []


def test_a_small_share_of_a_large_feeder_is_not_an_outage() -> None:
    _, alerts = run(fed(100), [t(m, 5, True) for m in range(10)])
    assert alerts == []


def test_a_meter_tells_its_feeder_once_and_then_only_on_a_change() -> None:
    state: dict[str, Any] = {}
    where = (113.7, 22.8, "changan")
    assert supply_transition(state, "FDR-1", "M1", T0, False, where) is not None
    assert supply_transition(state, "FDR-1", "M1", T0 + 1, False, where) is None
    dark = supply_transition(state, "FDR-1", "M1", T0 + 2, True, where)
    assert dark is not None and dark.dark
    assert supply_transition(state, "FDR-2", "M1", T0 + 3, True, where) is not None  # moved to another feeder


def test_the_energy_processor_reports_supply_transitions_of_in_order_readings() -> None:
    processor = EnergyProcessor(Settings(environment="test"))
    state: dict[str, Any] = {}
    out = BatchOutcome(Domain.energy, 60)
    for k, volts in enumerate((221.0, 220.0, 3.0, 2.5, 219.0)):
        at = datetime.fromtimestamp((T0 + k * 15_000) / 1000, UTC).isoformat()
        value = valid_value(Domain.energy, meter_id="M1", feeder_id="FDR-1", voltage_v=volts, observed_at=at)
        processor.process(EnergyReading.model_validate(value), "changan", state, out)
    assert [(tr.meter_id, tr.dark) for tr in out.supply_transitions] == [("M1", False), ("M1", True), ("M1", False)]
