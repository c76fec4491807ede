"""A fixed, seeded input of all three domains with known incidents, and its plain batch truth."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from geo.grid import cell_id, cell_of
from geo.zones import ZoneIndex
from processors.drone.detectors import VIOLATIONS
from processors.drone.processor import DroneProcessor
from processors.energy.processor import EnergyProcessor
from processors.outcome import BatchOutcome
from processors.traffic.detectors import congestion_detector
from processors.traffic.processor import TrafficProcessor
from streams.models import MODEL_BY_DOMAIN, Domain, TrafficReading
from streams.settings import EnergyRules, Settings, TrafficRules

# (lon, lat) inside each district, from geo/data/README.md
DISTRICT_POINTS = [
    (113.640, 22.900),
    (113.640, 22.850),
    (113.630, 22.810),
    (113.700, 22.850),
    (113.660, 22.740),
    (113.790, 22.850),
]

Event = tuple[str, str, dict[str, Any]]  # (domain, key, value)


@dataclass
class CityInput:
    """Events in publish order, and the incidents they contain."""

    events: list[Event]
    congested_sensors: set[str]
    nofly_drones: set[str]
    spiking_meters: set[str]


def _iso(t: datetime) -> str:
    return t.isoformat()


def make_city_input(
    seed: int = 7, start: datetime | None = None, minutes: int = 8, sensors: tuple[int, int, int] = (12, 6, 10)
) -> CityInput:
    """Build a deterministic mixed stream of (traffic, drone, meter) sensors, by default from 30 minutes ago."""
    rng = random.Random(seed)
    n_traffic, n_drones, n_meters = sensors
    if start is None:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        start = now - timedelta(minutes=max(30, minutes + 5))
    events: list[tuple[datetime, Event]] = []
    congested = {"TLD-0000", "TLD-0001"}
    for i in range(n_traffic):
        lon, lat = DISTRICT_POINTS[i % len(DISTRICT_POINTS)]
        sid = f"TLD-{i:04d}"
        for k in range(minutes * 2):
            t = start + timedelta(seconds=30 * k + i)
            slow = sid in congested and 4 <= k < 10
            speed = round(rng.uniform(6, 14) if slow else rng.uniform(45, 75), 2)
            value = {
                "sensor_id": sid,
                "observed_at": _iso(t),
                "lat": lat + i * 1e-4,
                "lon": lon,
                "road_segment": f"seg-{i % 4}",
                "lane": 1 + i % 2,
                "vehicle_count": rng.randint(0, 25),
                "avg_speed_kmh": speed,
                "occupancy": round(0.6 if slow else rng.uniform(0.05, 0.3), 3),
            }
            events.append((t, ("traffic", sid, value)))
    nofly = {"CN-UAS-0000"}
    for d in range(n_drones):
        did = f"CN-UAS-{d:04d}"
        lon0, lat0 = (113.700, 22.768) if did in nofly else DISTRICT_POINTS[d % len(DISTRICT_POINTS)]
        for k in range(minutes * 6):
            t = start + timedelta(seconds=10 * k + d)
            lat = lat0 - k * 0.0005 if did in nofly and k < 60 else lat0 + 0.0002 * (k % 60)
            value = {
                "drone_id": did,
                "observed_at": _iso(t),
                "lat": round(lat, 6),
                "lon": lon0,
                # every sixth drone shares a district point: 20 m apart in height keeps them separated
                "altitude_m": 65.0 + 20 * (d // 6),
                "height_agl_m": 0.0 if k == 0 else 60.0 + 20 * (d // 6),
                "speed_h_mps": 8.0,
                "speed_v_mps": 0.0,
                "heading_deg": 180.0,
                "status": "ground" if k == 0 else "airborne",
                "operator_id": f"OP-DG-{d:03d}",
            }
            events.append((t, ("drone", did, value)))
    spiking = {"MTR-00000"}
    for m in range(n_meters):
        mid = f"MTR-{m:05d}"
        lon, lat = DISTRICT_POINTS[(m + 2) % len(DISTRICT_POINTS)]
        kwh = round(rng.uniform(100, 5000), 3)
        for k in range(minutes * 4):
            t = start + timedelta(seconds=15 * k + m)
            base = 1.0 + m * 0.3
            power = base * 6 if mid in spiking and 20 <= k < 23 else base * rng.uniform(0.9, 1.1)
            kwh = round(kwh + power * 15 / 3600, 3)
            value = {
                "meter_id": mid,
                "feeder_id": f"FDR-{m % 3:02d}",
                "observed_at": _iso(t),
                "lat": lat,
                "lon": lon,
                "active_power_kw": round(power, 3),
                "energy_kwh": kwh,
                "voltage_v": 221.0,
                "current_a": 5.0,
                "frequency_hz": 50.0,
                "power_factor": 0.95,
            }
            events.append((t, ("energy", mid, value)))
    events.sort(key=lambda e: e[0])
    return CityInput([e for _, e in events], congested, nofly, spiking)


def batch_truth(events: list[Event], zones: ZoneIndex, window_s: int = 60) -> dict[tuple[str, str, str, int], float]:
    """Recompute every zone window metric from scratch: {(domain, metric, zone, start_ms): value}."""
    return _truth(events, zones, window_s, lambda domain, v, zone_id: [zone_id])


def batch_truth_windows(
    events: list[Event], zones: ZoneIndex, settings: Settings
) -> dict[tuple[str, str, str, int, int], float]:
    """Recompute every window of every configured size, per zone and per meter/feeder group.

    Returns {(domain, metric, zone or group, window_s, start_ms): value}.
    """
    out: dict[tuple[str, str, str, int, int], float] = {}
    cell_m = settings.drone.corridor_cell_m

    def groups(d: str, v: dict[str, Any], z: str) -> list[str]:
        if d == "traffic":
            return [f"sensor:{v['sensor_id']}"]
        if d == "energy":
            return [f"meter:{v['meter_id']}", f"feeder:{v['feeder_id']}"]
        if d == "drone" and v["status"] != "ground":
            return [cell_id(*cell_of(v["lon"], v["lat"], cell_m), cell_m)]
        return []

    for domain in ("traffic", "drone", "energy"):
        mine = [e for e in events if e[0] == domain]
        tables = [(size, lambda d, v, z: [z]) for size in settings.worker.zone_sizes(domain)]
        tables += [(size, groups) for size in settings.worker.source_sizes(domain)]
        for size, group_of in tables:
            for (dom, metric, group, start), value in _truth(mine, zones, size, group_of).items():
                out[(dom, metric, group, size, start)] = value
    return out


def _truth(
    events: list[Event], zones: ZoneIndex, window_s: int, group_of: Callable[[str, dict[str, Any], str], list[str]]
) -> dict[tuple[str, str, str, int], float]:
    size = window_s * 1000
    sums: dict[tuple[str, str, int], dict[str, Any]] = defaultdict(
        lambda: {
            "n": 0,
            "speed": 0,
            "vehicles": 0,
            "occ": 0,
            "cong_ms": 0,
            "wh": 0,
            "mv": 0,
            "max_w": None,
            "drones": set(),
            "violations": 0,
            "anom_n": 0,
            "anom_max": 0,
        }
    )
    rules = EnergyRules()
    traffic_rules = TrafficRules()
    last: dict[str, tuple[int, int, float]] = {}  # meter -> (Wh, ms, kW) of its previous reading
    congestion: dict[str, dict[str, Any]] = defaultdict(dict)  # detector -> congestion detector state
    last_ms: dict[str, int] = {}  # detector -> its previous reading
    scorer = TrafficProcessor(Settings(environment="test"))
    anomaly_states: dict[str, dict[str, Any]] = defaultdict(dict)  # detector -> its series' detector states
    opened = _violations_opened(events, zones)
    for index, (domain, key, v) in enumerate(events):
        t = datetime.fromisoformat(v["observed_at"])
        ms = int(t.timestamp() * 1000)
        zone = zones.district_at(v["lon"], v["lat"])
        added_wh = 0
        congested_ms = 0
        score = 0.0
        if domain == "traffic":
            # Time since the detector's previous reading, when this reading finds it in a congestion episode.
            reading = TrafficReading.model_validate(v)
            congestion_detector(reading, congestion[key], traffic_rules, None)
            if "open" in congestion[key] and key in last_ms:
                congested_ms = min(ms - last_ms[key], 300_000)
            last_ms[key] = ms
            score = scorer.anomaly_score(reading, anomaly_states[key])
        if domain == "energy":
            # A counter going back (reset) or jumping beyond what the power allows adds nothing.
            wh, kw = round(v["energy_kwh"] * 1000), v["active_power_kw"]
            if key in last:
                prev_wh, prev_ms, prev_kw = last[key]
                allowed = max(prev_kw, kw, 0.0) * (ms - prev_ms) / 3600 * rules.counter_jump_factor + (
                    rules.counter_jump_tolerance_kwh * 1000
                )
                added_wh = wh - prev_wh if prev_wh <= wh and wh - prev_wh <= allowed else 0
            last[key] = (wh, ms, kw)
        for group in group_of(domain, v, zone.id if zone else "unzoned"):
            w = sums[(domain, group, ms - ms % size)]
            w["n"] += 1
            if domain == "traffic":
                w["speed"] += round(v["avg_speed_kmh"] * 1_000_000)
                w["vehicles"] += v["vehicle_count"]
                w["occ"] += round(v["occupancy"] * 1_000_000)
                w["cong_ms"] += congested_ms
                w["anom_n"] += score >= scorer.anomaly.alarm_score
                w["anom_max"] = max(w["anom_max"], round(score * 1000))
            elif domain == "drone":
                if v["status"] != "ground":
                    w["drones"].add(key)
                w["violations"] += opened.get(index, 0)
            else:
                w["wh"] += added_wh
                w["mv"] += round(v["voltage_v"] * 1000)
                watts = round(v["active_power_kw"] * 1000)
                w["max_w"] = watts if w["max_w"] is None else max(w["max_w"], watts)
    truth: dict[tuple[str, str, str, int], float] = {}
    for (domain, zone_id, start), w in sums.items():
        k = (domain, zone_id, start)
        if domain == "traffic":
            truth[("traffic", "avg_speed_kmh", *k[1:])] = w["speed"] / (w["n"] * 1_000_000)
            truth[("traffic", "vehicle_count", *k[1:])] = float(w["vehicles"])
            truth[("traffic", "flow_veh_h", *k[1:])] = w["vehicles"] * 3600 / window_s
            truth[("traffic", "occupancy", *k[1:])] = w["occ"] / (w["n"] * 1_000_000)
            truth[("traffic", "congestion_minutes", *k[1:])] = w["cong_ms"] / 60_000
            truth[("traffic", "readings", *k[1:])] = float(w["n"])
            truth[("traffic", "anomalous_readings", *k[1:])] = float(w["anom_n"])
            truth[("traffic", "anomaly_score_max", *k[1:])] = w["anom_max"] / 1000
        elif domain == "drone":
            truth[("drone", "drones_airborne", *k[1:])] = float(len(w["drones"]))
            truth[("drone", "fixes", *k[1:])] = float(w["n"])
            truth[("drone", "violations", *k[1:])] = float(w["violations"])
        else:
            truth[("energy", "energy_kwh", *k[1:])] = w["wh"] / 1000
            truth[("energy", "readings", *k[1:])] = float(w["n"])
            truth[("energy", "peak_kw", *k[1:])] = w["max_w"] / 1000
            truth[("energy", "mean_voltage_v", *k[1:])] = w["mv"] / w["n"] / 1000
    return truth


def _violations_opened(events: list[Event], zones: ZoneIndex) -> dict[int, int]:
    """Return {index of a drone fix: rule violations it opened}, from the alerts a plain in-order run raises.

    A violation is counted where its alert first appears: a new alert id of a violation kind.
    """
    processor = DroneProcessor(Settings(environment="test"), zones)
    states: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    opened: dict[int, int] = {}
    for index, (domain, key, value) in enumerate(events):
        if domain != "drone":
            continue
        event = MODEL_BY_DOMAIN[Domain.drone].model_validate(value)
        zone = zones.district_at(event.lon, event.lat)
        out = BatchOutcome(Domain.drone, 60)
        processor.process(event, zone.id if zone else "unzoned", states.setdefault(key, {}), out, True)
        new = [a for a in out.alerts.values() if a.kind in VIOLATIONS and a.id not in seen]
        seen.update(a.id for a in out.alerts.values())
        if new:
            opened[index] = len(new)
    return opened


def batch_alerts(events: list[Event], settings: Settings, zones: ZoneIndex) -> dict[str, tuple[str, str, str, int]]:
    """Run the domain processors over each source's events in order: {alert id: (kind, source, status, count)}."""
    processors = {
        "traffic": TrafficProcessor(settings),
        "drone": DroneProcessor(settings, zones),
        "energy": EnergyProcessor(settings),
    }
    states: dict[str, dict[str, Any]] = {}
    alerts: dict[str, tuple[str, str, str, int]] = {}
    for domain, key, value in events:
        event = MODEL_BY_DOMAIN[Domain(domain)].model_validate(value)
        zone = zones.district_at(event.lon, event.lat)
        out = BatchOutcome(Domain(domain), settings.worker.window_seconds)
        processors[domain].process(event, zone.id if zone else "unzoned", states.setdefault(key, {}), out, True)
        for alert in out.alerts.values():
            alerts[alert.id] = (alert.kind, alert.source_id, alert.status.value, alert.count)
    return alerts
