"""Smart meters on feeders: daily residential and commercial load, injected load spikes and power-quality faults."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from citystream.simulator.airspace import point_in
from citystream.simulator.base import DailyCurve, Injected, RawEvent, SimClock, first_tick, sub_rng
from geo.metric import LocalProjection
from geo.zones import ZoneIndex
from streams.models import Domain

INTERVAL_S = 15
INTERVAL_MS = INTERVAL_S * 1000
NOMINAL_V, MAX_DEVIATION = 220.0, 0.03
NOMINAL_HZ, MAX_HZ_DEVIATION = 50.0, 0.03
PF_RANGE = (0.85, 0.99)
FIRST_SPIKE_S = (180.0, 235.0)  # after the detector's 10-sample baseline (150 s of 15 s readings)
SPIKE_S = 60
SPIKE_FACTOR = (5.0, 8.0)
SPIKE_GAP_MINUTES = (4.0, 12.0)
SPIKE_MIN_LOAD_KW = 1.0  # below this, 5x stays under the detector's 2 kW minimum rise
COMMERCIAL_SHARE = 0.25
LOAD_SPIKE = "load_spike"  # the kinds processors.energy.detectors raises
VOLTAGE_SAG, VOLTAGE_SWELL = "voltage_sag", "voltage_swell"
FREQUENCY_DEVIATION, LOW_POWER_FACTOR, COUNTER_FAULT = "frequency_deviation", "low_power_factor", "counter_fault"
SHORT_VOLTAGE_DIP = "short_voltage_dip"  # injected, and shorter than the 60 s minimum: must raise nothing
# Power-quality faults of the first minutes, one meter each: (kind, start s, end s, value).
# A 120 s sag (>= 60 s in the band's minimum), a 20 s dip (at most two readings 15 s apart), a 120 s swell,
# a 45 s frequency excursion (>= 10 s), a 20-minute low power factor on a loaded commercial meter (alerts
# after 900 s), and counter faults: a reset to 0 kWh and a 50 kWh jump at one reading each.
QUALITY_FAULTS: tuple[tuple[str, float, float, float], ...] = (
    (VOLTAGE_SAG, 60, 180, NOMINAL_V * 0.86),
    (SHORT_VOLTAGE_DIP, 240, 260, NOMINAL_V * 0.87),
    (VOLTAGE_SWELL, 120, 240, NOMINAL_V * 1.10),
    (FREQUENCY_DEVIATION, 300, 345, NOMINAL_HZ + 0.35),
    (LOW_POWER_FACTOR, 30, 1230, 0.78),
    (COUNTER_FAULT, 400, 400, 0.0),  # reset: the counter restarts at the value
    (COUNTER_FAULT, 450, 450, 50.0),  # jump: the counter leaps by the value
)

FEEDER_OUTAGE, METER_OFFLINE = "feeder_outage", "meter_offline"
# One feeder loses supply for 4 minutes (every meter on it reads about 0 V and 0 kW), and one meter on
# another feeder stops reporting for 17 minutes (longer than the 15-minute offline limit).
OUTAGE_S = (480.0, 720.0)
OFFLINE_S = (540.0, 1560.0)

FEEDERS = (
    ("FDR-HM-01", "humen-town"),
    ("FDR-HM-02", "humen-town"),
    ("FDR-HP-01", "humen-port"),
    ("FDR-ST-01", "shatian"),
    ("FDR-WY-01", "weiyuan-island"),
    ("FDR-BH-01", "binhaiwan-core"),
    ("FDR-BH-02", "binhaiwan-core"),
    ("FDR-CA-01", "changan"),
)
# Fraction of a meter's peak load by local hour.
RESIDENTIAL = DailyCurve(
    [(0, 0.35), (5, 0.3), (7, 0.65), (8.5, 0.5), (12, 0.6), (14, 0.5), (17, 0.6), (19, 0.95), (21, 1.0), (23, 0.55)]
)
COMMERCIAL = DailyCurve([(0, 0.25), (7, 0.3), (9, 0.85), (11, 1.0), (17, 0.95), (19, 0.7), (21, 0.45), (23, 0.3)])


@dataclass
class Meter:
    """One smart meter: its customer's load profile, its counter and its own random stream."""

    meter_id: str
    feeder_id: str
    lon: float
    lat: float
    commercial: bool
    peak_kw: float
    phases: int
    power_factor: float
    voltage_offset: float
    energy_kwh: float
    phase_ms: int
    rng: random.Random
    noise: float = 0.0
    next_tick: int = 0
    faulted: dict[int, bool] = field(default_factory=dict)


class EnergyGenerator:
    """Generate one reading per meter every 15 s of simulated time."""

    def __init__(self, zones: ZoneIndex, clock: SimClock, projection: LocalProjection, count: int, seed: int) -> None:
        self.clock = clock
        self.injected: list[Injected] = []
        layout = sub_rng(seed, "energy", "layout")
        self._hz_waves = [
            (layout.uniform(0.006, 0.012), layout.uniform(60, 600), layout.uniform(0, 6.3)) for _ in range(3)
        ]
        self.meters = [_place_meter(i, zones, layout, seed) for i in range(count)]
        self._spike_rng = sub_rng(seed, "energy", "spikes")
        self._spikes: dict[int, list[tuple[int, int, float]]] = {}
        self._planned_until_ms = 0
        self._faults: dict[int, list[tuple[str, int, int, float]]] = {}
        self._plan_quality_faults(sub_rng(seed, "energy", "quality"))
        self._outage: tuple[str, int, int] | None = None
        self._offline: tuple[int, int, int] | None = None
        self._plan_outage_and_offline(sub_rng(seed, "energy", "outage"))

    def emit(self, begin_ms: int, end_ms: int, out: list[RawEvent]) -> None:
        """Append every reading with begin_ms <= observed ms < end_ms to out."""
        self._plan_spikes(end_ms)
        for index, meter in enumerate(self.meters):
            meter.next_tick = max(meter.next_tick, first_tick(meter.phase_ms, INTERVAL_MS, begin_ms))
            while (ms := meter.phase_ms + meter.next_tick * INTERVAL_MS) < end_ms:
                meter.next_tick += 1
                if self._offline and self._offline[0] == index and self._offline[1] <= ms < self._offline[2]:
                    continue  # the meter is silent
                out.append((ms, "energy", meter.meter_id, self._reading(index, meter, ms)))

    def _reading(self, index: int, meter: Meter, ms: int) -> dict[str, object]:
        rng, hour = meter.rng, self.clock.local_hour(ms)
        meter.noise = 0.85 * meter.noise + rng.gauss(0, 0.04)
        power = max(0.02, self._expected_kw(meter, hour) * (1 + meter.noise)) * self._spike_factor(index, ms)
        dark = (
            self._outage is not None and meter.feeder_id == self._outage[0] and self._outage[1] <= ms < self._outage[2]
        )
        if dark:
            power = 0.0
        meter.energy_kwh += power * INTERVAL_S / 3600
        sag = -0.012 * RESIDENTIAL(hour)  # evening peak pulls the low-voltage network down a little
        deviation = meter.voltage_offset + sag + rng.gauss(0, 0.003)
        voltage = NOMINAL_V * (1 + max(-MAX_DEVIATION, min(MAX_DEVIATION, deviation)))
        hz = self._frequency(ms) + rng.gauss(0, 0.002)
        hz = max(NOMINAL_HZ - MAX_HZ_DEVIATION, min(NOMINAL_HZ + MAX_HZ_DEVIATION, hz))
        pf = max(PF_RANGE[0], min(PF_RANGE[1], meter.power_factor + rng.gauss(0, 0.005)))
        if dark:
            voltage = round(rng.uniform(0.0, 2.0), 1)  # a meter's last-gasp readings without supply
        for kind, start, end, value in self._faults.get(index, ()):
            if kind == COUNTER_FAULT and start <= ms and not meter.faulted.get(start):
                meter.faulted[start] = True  # once, at the first reading from the fault's time on
                meter.energy_kwh = value if value == 0 else meter.energy_kwh + value
            elif start <= ms < end:
                if kind in (VOLTAGE_SAG, VOLTAGE_SWELL, SHORT_VOLTAGE_DIP):
                    voltage = value
                elif kind == FREQUENCY_DEVIATION:
                    hz = value
                elif kind == LOW_POWER_FACTOR:
                    pf = value
        return {
            "observed_at": self.clock.iso(ms),
            "lat": meter.lat,
            "lon": meter.lon,
            "meter_id": meter.meter_id,
            "feeder_id": meter.feeder_id,
            "active_power_kw": round(power, 3),
            "energy_kwh": round(meter.energy_kwh, 3),
            "voltage_v": round(voltage, 1),
            "current_a": round(power * 1000 / (voltage * pf * meter.phases), 2) if voltage > 0 else 0.0,
            "frequency_hz": round(hz, 3),
            "power_factor": round(pf, 3),
        }

    def _frequency(self, ms: int) -> float:
        """Return the grid frequency at ms: one slow wander shared by every meter."""
        t = ms / 1000
        wander = sum(a * math.sin(2 * math.pi * t / period + phase) for a, period, phase in self._hz_waves)
        return NOMINAL_HZ + max(-MAX_HZ_DEVIATION + 0.005, min(MAX_HZ_DEVIATION - 0.005, wander))

    @staticmethod
    def _expected_kw(meter: Meter, hour: float) -> float:
        return meter.peak_kw * (COMMERCIAL(hour) if meter.commercial else RESIDENTIAL(hour))

    def _spike_factor(self, index: int, ms: int) -> float:
        for start, end, factor in reversed(self._spikes.get(index, ())):
            if start <= ms:
                return factor if ms < end else 1.0
        return 1.0

    def _plan_quality_faults(self, rng: random.Random) -> None:
        """Give each power-quality fault of QUALITY_FAULTS its own meter; low power factor to a commercial one."""
        commercial = [i for i, m in enumerate(self.meters) if m.commercial]
        if len(self.meters) < len(QUALITY_FAULTS) + 1 or not commercial:
            return
        pf_meter = rng.choice(commercial)
        others = rng.sample([i for i in range(len(self.meters)) if i != pf_meter], len(QUALITY_FAULTS) - 1)
        for kind, start_s, end_s, value in QUALITY_FAULTS:
            index = pf_meter if kind == LOW_POWER_FACTOR else others.pop()
            start, end = round(start_s * 1000), round(end_s * 1000)
            self._faults.setdefault(index, []).append((kind, start, end, value))
            meter = self.meters[index]
            detail: dict[str, object] = {"feeder_id": meter.feeder_id, "value": value}
            if kind == COUNTER_FAULT:
                detail["fault"] = "reset" if value == 0 else "jump"
            self.injected.append(
                Injected(kind, Domain.energy, meter.meter_id, self.clock.at(start), self.clock.at(end), detail)
            )

    def _plan_outage_and_offline(self, rng: random.Random) -> None:
        """Black out one feeder whose meters have no other fault, and silence one meter of another feeder."""
        faulty = {self.meters[i].feeder_id for i in self._faults}
        feeders = sorted({m.feeder_id for m in self.meters} - faulty)
        if not feeders:
            return
        feeder_id = rng.choice(feeders)
        start, end = (round(x * 1000) for x in OUTAGE_S)
        self._outage = (feeder_id, start, end)
        on_it = sorted(m.meter_id for m in self.meters if m.feeder_id == feeder_id)
        self.injected.append(
            Injected(
                FEEDER_OUTAGE, Domain.energy, feeder_id, self.clock.at(start), self.clock.at(end), {"meters": on_it}
            )
        )
        others = [i for i, m in enumerate(self.meters) if m.feeder_id != feeder_id and i not in self._faults]
        if not others:
            return
        index = rng.choice(others)
        start, end = (round(x * 1000) for x in OFFLINE_S)
        self._offline = (index, start, end)
        meter = self.meters[index]
        self.injected.append(
            Injected(
                METER_OFFLINE,
                Domain.energy,
                meter.meter_id,
                self.clock.at(start),
                self.clock.at(end),
                {"feeder_id": meter.feeder_id},
            )
        )

    def _quiet(self, index: int, start: int, end: int) -> bool:
        """Return whether a meter is blacked out or silent at some time in [start, end)."""
        meter = self.meters[index]
        if self._outage and meter.feeder_id == self._outage[0] and start < self._outage[2] and self._outage[1] < end:
            return True
        return bool(self._offline and self._offline[0] == index and start < self._offline[2] and self._offline[1] < end)

    def _plan_spikes(self, until_ms: int) -> None:
        rng = self._spike_rng
        while self.meters and self._planned_until_ms < until_ms:
            if self._planned_until_ms == 0:
                start = round(rng.uniform(*FIRST_SPIKE_S) * 1000)
            else:
                start = self._planned_until_ms + round(rng.uniform(*SPIKE_GAP_MINUTES) * 60_000)
            end = start + SPIKE_S * 1000
            hour = self.clock.local_hour(start)
            loads = [self._expected_kw(m, hour) for m in self.meters]
            eligible = [
                i for i, load in enumerate(loads) if load >= SPIKE_MIN_LOAD_KW and not self._quiet(i, start, end)
            ]
            index = rng.choice(eligible) if eligible else max(range(len(loads)), key=loads.__getitem__)
            factor = round(rng.uniform(*SPIKE_FACTOR), 2)
            self._spikes.setdefault(index, []).append((start, end, factor))
            meter = self.meters[index]
            detail = {"feeder_id": meter.feeder_id, "factor": factor}
            self.injected.append(
                Injected(LOAD_SPIKE, Domain.energy, meter.meter_id, self.clock.at(start), self.clock.at(end), detail)
            )
            self._planned_until_ms = end


def _place_meter(i: int, zones: ZoneIndex, layout: random.Random, seed: int) -> Meter:
    """Return meter i on its feeder, somewhere in the feeder's district."""
    feeder_id, district_id = FEEDERS[i % len(FEEDERS)]
    districts = zones.zones("district")
    district = zones.get(district_id) or districts[i % len(districts)]
    lon, lat = point_in(district.geometry, layout)
    commercial = layout.random() < COMMERCIAL_SHARE
    return Meter(
        meter_id=f"MTR-{feeder_id[4:].replace('-', '')}-{i // len(FEEDERS) + 1:04d}",
        feeder_id=feeder_id,
        lon=round(lon, 6),
        lat=round(lat, 6),
        commercial=commercial,
        peak_kw=round(layout.uniform(10, 60) if commercial else layout.uniform(2, 6), 2),
        phases=3 if commercial else 1,
        power_factor=layout.uniform(0.86, 0.95) if commercial else layout.uniform(0.92, 0.98),
        voltage_offset=layout.uniform(-0.012, 0.012),
        energy_kwh=round(layout.uniform(20_000, 900_000) if commercial else layout.uniform(2_000, 30_000), 3),
        phase_ms=layout.randrange(INTERVAL_MS),
        rng=sub_rng(seed, "energy", i),
    )
