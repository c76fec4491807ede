"""Settings for every component, read from `CITY_*` environment variables (`__` nests)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.exceptions import ConfigError

DEFAULT_ZONES_FILE = Path(__file__).resolve().parent.parent / "geo" / "data" / "binhaiwan_zones.geojson"
DEFAULT_SITES_FILE = Path(__file__).resolve().parent.parent / "geo" / "data" / "binhaiwan_sites.csv"


class KafkaSettings(BaseModel):
    """Where the brokers are and how topics are laid out."""

    bootstrap_servers: str = "127.0.0.1:9092"
    partitions: int = Field(8, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1, le=7)
    client_id: str = "citystream"
    topic_namespace: str = Field("citystream", pattern=r"^[A-Za-z0-9_-]+$")
    session_timeout_s: float = Field(10.0, gt=0)
    heartbeat_interval_s: float = Field(3.0, gt=0)
    request_timeout_s: float = Field(30.0, gt=0)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                "CITY_KAFKA__SECURITY_PROTOCOL is SASL: set CITY_KAFKA__SASL_USERNAME and CITY_KAFKA__SASL_PASSWORD"
            )
        return self

    @property
    def bootstrap_list(self) -> list[str]:
        """Return the bootstrap servers as a list of host:port."""
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]


class RedisSettings(BaseModel):
    """Where results are kept."""

    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    key_prefix: str = Field("cs", pattern=r"^[A-Za-z0-9_.-]+$")
    socket_timeout_s: float = Field(5.0, gt=0)


class WorkerSettings(BaseModel):
    """How a worker consumes and batches."""

    group_id: str = "citystream-worker"
    batch_max: int = Field(2000, ge=1, le=100_000)
    batch_within_s: float = Field(0.2, gt=0, description="longest wait for the first records of a batch")
    fetch_wait_s: float = Field(
        0.025,
        gt=0,
        le=0.5,
        description="longest the broker holds a fetch for 64 KiB of records to gather (Kafka's fetch.max.wait.ms)",
    )
    batch_linger_s: float = Field(
        0.0, ge=0, le=5, description="after the first records arrive, how long to wait for more before processing"
    )
    commit_interval_s: float = Field(
        1.0, ge=0, le=60, description="how often applied offsets go to the group in Kafka (for lag figures only)"
    )
    gc_young_objects: int = Field(
        50_000,
        ge=100,
        description="new container objects between young-generation collections (Python's default is 700)",
    )
    window_seconds: int = Field(60, ge=1, description="the finest window; lateness is judged against it")
    zone_windows_s: dict[str, list[int]] = Field(
        default_factory=lambda: {"traffic": [60, 900, 3600], "drone": [60, 3600], "energy": [60, 900]},
        description="tumbling window sizes kept per zone, by domain; each a multiple of window_seconds",
    )
    source_windows_s: dict[str, list[int]] = Field(
        default_factory=lambda: {"traffic": [900, 3600], "drone": [3600], "energy": [900]},
        description="window sizes per group: detectors (sensor:<id>), meters, feeders (900 s settles), drone cells",
    )
    window_grace_s: float = Field(30.0, ge=0)
    emit_interval_s: float = Field(5.0, gt=0)
    silence_check_s: float = Field(5.0, gt=0, description="how often a worker looks for silent sensors, meters, drones")
    stall_check_s: float = Field(5.0, gt=0, description="how often a worker looks for partitions that stopped moving")
    stall_after_s: float = Field(
        20.0, gt=0, description="records waiting this long with none applied: read the partition again from Redis"
    )
    idle_partition_s: float = Field(30.0, gt=0)
    window_retention_h: float = Field(48.0, gt=0, description="how long zone windows stay in Redis")

    @model_validator(mode="after")
    def _window_sizes_align(self) -> WorkerSettings:
        for name, table in (("zone_windows_s", self.zone_windows_s), ("source_windows_s", self.source_windows_s)):
            for domain, sizes in table.items():
                if domain not in ("traffic", "drone", "energy"):
                    raise ValueError(f"CITY_WORKER__{name.upper()} names {domain!r}: use traffic, drone or energy")
                odd = [s for s in sizes if s <= 0 or s % self.window_seconds]
                if odd:
                    raise ValueError(
                        f"CITY_WORKER__{name.upper()}[{domain}] has {odd}: each window size must be a positive "
                        f"multiple of CITY_WORKER__WINDOW_SECONDS ({self.window_seconds})"
                    )
        return self

    def zone_sizes(self, domain: str) -> tuple[int, ...]:
        """Return the zone window sizes of a domain, the finest first (always including window_seconds)."""
        return tuple(sorted({self.window_seconds, *self.zone_windows_s.get(domain, [])}))

    def source_sizes(self, domain: str) -> tuple[int, ...]:
        """Return the per-source and per-group window sizes of a domain (may be empty)."""
        return tuple(sorted(set(self.source_windows_s.get(domain, []))))

    redis_retry_max_s: float = Field(10.0, gt=0)
    state_cache_per_partition: int = Field(
        2500, ge=1, description="sources' state a worker keeps in memory per partition; the rest is read from Redis"
    )


class TrafficRules(BaseModel):
    """Thresholds of the traffic detectors."""

    congestion_speed_kmh: float = Field(25.0, gt=0, description="onset speed of a detector without history yet")
    congestion_recover_kmh: float = Field(40.0, gt=0, description="recovery speed of a detector without history yet")
    congestion_min_readings: int = Field(3, ge=1)
    stuck_min_readings: int = Field(
        20, ge=2, description="a run of identical readings shorter than this is never stuck"
    )
    stuck_factor: float = Field(3.0, ge=1, description="stuck: a run this many times the detector's longest so far")
    congestion_onset_ratio: float = Field(0.5, gt=0, lt=1, description="slow: below this x the normal speed")
    congestion_recover_ratio: float = Field(0.75, gt=0, le=1, description="recovered: at this x the normal speed")
    congestion_occupancy_rise: float = Field(0.1, ge=0, le=1, description="dense: occupancy this much above normal")
    baseline_min_samples: int = Field(4, ge=1, description="readings an hour (or overall) needs to count as normal")
    baseline_alpha: float = Field(0.05, gt=0, le=1, description="EWMA weight of the newest reading in the normal")
    local_utc_offset_h: float = Field(8.0, ge=-12, le=14, description="local time for hours of the day (China: +8)")
    min_interval_s: float = Field(1.0, ge=0, description="readings of one detector closer than this are a flood")
    offline_after_s: float = Field(
        300.0, gt=0, description="a detector silent this long is offline (10 missed readings at PeMS's 30 s)"
    )
    incident_onset_ratio: float = Field(0.5, gt=0, lt=1, description="collapse: below this x the normal speed")
    incident_free_ratio: float = Field(
        0.8, gt=0, le=1, description="free-flowing: at or above this x the normal speed (before, and upstream)"
    )
    incident_recover_ratio: float = Field(0.75, gt=0, le=1, description="an incident detector recovers at this x")
    incident_sudden_readings: int = Field(
        2, ge=1, le=10, description="sudden: one of the detector's last this many readings was free-flowing"
    )
    incident_max_age_s: float = Field(
        90.0, gt=0, description="the previous and the upstream reading must be at most this old (event time)"
    )
    anomaly_detector: str = Field(
        "robust-z-envelope-share",
        description="streaming anomaly detector scoring each reading (see `citystream score-csv --detector`)",
    )

    @model_validator(mode="after")
    def _recover_above_onset(self) -> TrafficRules:
        if self.congestion_recover_kmh < self.congestion_speed_kmh:
            raise ValueError("congestion_recover_kmh must be >= congestion_speed_kmh")
        if self.congestion_recover_ratio < self.congestion_onset_ratio:
            raise ValueError("congestion_recover_ratio must be >= congestion_onset_ratio")
        if not self.incident_onset_ratio <= self.incident_recover_ratio <= self.incident_free_ratio:
            raise ValueError("incident ratios must be onset <= recover <= free")
        return self


class DroneRules(BaseModel):
    """Thresholds of the drone detectors."""

    min_interval_s: float = Field(0.05, ge=0, description="fixes of one drone closer than this are a flood")
    telemetry_loss_s: float = Field(30.0, gt=0, description="an airborne drone silent this long has lost telemetry")

    nofly_statuses: list[Literal["ground", "airborne", "emergency", "remote_id_failure"]] = [
        "airborne",
        "emergency",
        "remote_id_failure",
    ]
    max_height_agl_m: float = Field(
        120.0, gt=0, le=10_000, description="height above ground limit; a fence's max_height_agl_m overrides it inside"
    )
    max_speed_mps: float = Field(27.8, gt=0, le=255, description="horizontal speed limit (100 km/h)")
    permits_file: Path | None = Field(
        None, description="JSON {fence id: [operator ids]}: permits for restricted zones and declared operating areas"
    )
    fence_refresh_s: float = Field(1.0, gt=0, le=300, description="how often a worker checks for new fences")
    separation_horizontal_m: float = Field(50.0, gt=0, le=5000)
    separation_vertical_m: float = Field(15.0, gt=0, le=1000)
    separation_window_s: float = Field(
        5.0, gt=0, le=60, description="fixes of two drones at most this far apart in time are compared"
    )
    corridor_cell_m: float = Field(500.0, ge=50, le=10_000, description="grid cell of the busiest-corridor counts")


EN50160_VOLTAGE = {"nominal_voltage_v": 230.0, "voltage_upper_pct": 10.0, "voltage_lower_pct": 10.0}


class EnergyRules(BaseModel):
    """Thresholds of the energy detectors."""

    spike_factor: float = Field(3.0, gt=1)
    spike_min_kw: float = Field(2.0, ge=0)
    spike_min_samples: int = Field(10, ge=1)
    baseline_alpha: float = Field(0.1, gt=0, le=1)
    spike_min_hour_samples: int = Field(
        4, ge=1, description="readings an hour of the week needs before its own baseline replaces the overall one"
    )
    local_utc_offset_h: float = Field(8.0, ge=-12, le=14, description="local time for hours of the week (China: +8)")
    min_interval_s: float = Field(1.0, ge=0, description="readings of one meter closer than this are a flood")
    offline_after_s: float = Field(
        900.0, gt=0, description="a meter silent this long is offline (one settlement interval without a reading)"
    )
    voltage_preset: Literal["gbt12325", "en50160"] = Field(
        "gbt12325", description="voltage band defaults: GB/T 12325 220 V +7/-10 %, or EN 50160 230 V +/-10 %"
    )
    nominal_voltage_v: float = Field(220.0, gt=0, le=1000)
    voltage_upper_pct: float = Field(7.0, gt=0, le=50)
    voltage_lower_pct: float = Field(10.0, gt=0, lt=95)
    voltage_min_duration_s: float = Field(60.0, ge=0, le=86_400)
    interruption_pct: float = Field(5.0, ge=0, lt=50, description="below this % of nominal the supply is interrupted")
    nominal_frequency_hz: float = Field(50.0, gt=0, le=100)
    frequency_band_hz: float = Field(0.2, gt=0, le=5)
    frequency_min_duration_s: float = Field(10.0, ge=0, le=86_400)
    power_factor_min: float = Field(0.85, gt=0, le=1)
    power_factor_min_duration_s: float = Field(900.0, ge=0, le=86_400)
    power_factor_min_load_kw: float = Field(0.5, ge=0, description="power factor is judged only at this load or more")
    counter_jump_factor: float = Field(2.0, ge=1, description="a counter step above this x what the power allows")
    counter_jump_tolerance_kwh: float = Field(0.01, ge=0, le=1000)
    feeder_outage_min_meters: int = Field(3, ge=1, description="a feeder outage needs at least this many dark meters")
    feeder_outage_fraction: float = Field(0.5, gt=0, le=1, description="...and at least this share of the feeder")
    feeder_outage_window_s: float = Field(120.0, gt=0, description="...gone dark within this long of each other")

    @model_validator(mode="before")
    @classmethod
    def _apply_voltage_preset(cls, data: Any) -> Any:
        """Fill the voltage band from the preset; settings given explicitly still win."""
        if isinstance(data, dict) and data.get("voltage_preset") == "en50160":
            data = {**EN50160_VOLTAGE, **data}
        return data

    @classmethod
    def en50160(cls, **overrides: Any) -> EnergyRules:
        """Return rules with the EN 50160 voltage band (230 V +/-10 %)."""
        return cls(voltage_preset="en50160", **overrides)

    @property
    def voltage_band_v(self) -> tuple[float, float]:
        """Return the (lowest, highest) supply voltage inside the band."""
        nominal = self.nominal_voltage_v
        return nominal * (1 - self.voltage_lower_pct / 100), nominal * (1 + self.voltage_upper_pct / 100)

    @property
    def interruption_v(self) -> float:
        """Return the voltage below which the supply counts as interrupted."""
        return self.nominal_voltage_v * self.interruption_pct / 100


class RateLimit(BaseModel):
    """A token bucket: `per_s` requests a second on average, bursts of up to `burst`."""

    per_s: float = Field(gt=0)
    burst: int = Field(ge=1)


class ApiSettings(BaseModel):
    """How the HTTP service listens, what it accepts, who may do what, and how it pushes alerts."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    ingest_max_items: int = Field(5000, ge=1)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    ingest_timeout_s: float = Field(15.0, gt=0)
    health_timeout_s: float = Field(2.0, gt=0)
    auth_enabled: bool = Field(True, description="require an API key (off only for local experiments)")
    key_cache_s: float = Field(
        2.0,
        ge=0,
        le=60,
        description="how long a checked API key is trusted without asking Redis (a revoked key "
        "keeps working this long at most); 0: ask on every request",
    )
    ingest_rate: dict[str, RateLimit] = Field(
        default_factory=lambda: {
            "gateway": RateLimit(per_s=50, burst=100),
            "admin": RateLimit(per_s=50, burst=100),
        },
        description="ingest requests per API key, by role; a role not listed is not limited",
    )
    flapping_episodes: int = Field(4, ge=2, description="this many episodes of one rule and source ...")
    flapping_minutes: float = Field(10.0, gt=0, description="... opened within this many minutes is flapping")
    sse_heartbeat_s: float = Field(15.0, gt=0, le=300)
    sse_batch: int = Field(100, ge=1, le=10_000, description="stream entries one live client holds at most")
    response_cache_s: float = Field(
        1.0,
        ge=0,
        le=60,
        description="how long an answer of GET /alerts or /aggregates is kept at most; Redis's change notices end "
        "it sooner, as soon as alerts or windows change; 0: answer every request from Redis",
    )
    metrics_refresh_s: float = Field(10.0, ge=0)
    metrics_alert_sample: int = Field(5000, ge=100, description="alerts read per /metrics refresh at most")

    @model_validator(mode="after")
    def _rate_roles_exist(self) -> ApiSettings:
        unknown = set(self.ingest_rate) - {"gateway", "operator", "planner", "admin"}
        if unknown:
            raise ValueError(
                f"CITY_API__INGEST_RATE names {sorted(unknown)}: roles are gateway, operator, planner, admin"
            )
        return self


class Settings(BaseSettings):
    """All of citystream's settings; build once and pass down, never read at import time."""

    model_config = SettingsConfigDict(env_prefix="CITY_", env_nested_delimiter="__", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    zones_file: Path = DEFAULT_ZONES_FILE
    sites_file: Path = DEFAULT_SITES_FILE
    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    worker: WorkerSettings = WorkerSettings()
    api: ApiSettings = ApiSettings()
    traffic: TrafficRules = TrafficRules()
    drone: DroneRules = DroneRules()
    energy: EnergyRules = EnergyRules()

    @model_validator(mode="after")
    def _no_loopback_defaults_in_production(self) -> Settings:
        if self.environment == "production":
            if any(_is_loopback(urlsplit(f"kafka://{s}").hostname) for s in self.kafka.bootstrap_list):
                raise ConfigError(
                    "CITY_KAFKA__BOOTSTRAP_SERVERS points at loopback in production: set the brokers' addresses"
                )
            if _is_loopback(urlsplit(self.redis.url.get_secret_value()).hostname):
                raise ConfigError("CITY_REDIS__URL points at loopback in production: set the Redis address")
        return self


def _is_loopback(host: str | None) -> bool:
    """Return whether a host name or address is this machine (localhost, 127.0.0.0/8, ::1)."""
    if host is None or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
