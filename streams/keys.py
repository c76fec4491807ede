"""Redis key layout shared by the workers (writers) and the API (reader)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Build every Redis key citystream uses under one prefix."""

    prefix: str = "cs"

    def alert(self, alert_id: str) -> str:
        """Return the key of one alert's JSON."""
        return f"{self.prefix}:alert:{alert_id}"

    @property
    def alert_index(self) -> str:
        """Return the sorted set of alert ids scored by first_seen (epoch ms)."""
        return f"{self.prefix}:alerts"

    @property
    def alert_facets(self) -> str:
        """Return the hash of alert id -> `status:domain:severity|kind|source_id`: its facet and episode indexes."""
        return f"{self.prefix}:alert-facets"

    @property
    def alerts_version(self) -> str:
        """Return the counter every write of an alert, its operator state or a snooze raises (API caches key on it)."""
        return f"{self.prefix}:alerts-version"

    @property
    def alert_facet_prefix(self) -> str:
        """Return the prefix of the facet indexes: `<prefix>status:domain:severity` is a sorted set like alert_index."""
        return f"{self.prefix}:alerts:"

    def alert_facet_index(self, status: str, domain: str, severity: str) -> str:
        """Return the sorted set of the ids of alerts of one effective status, domain and severity, by first_seen."""
        return f"{self.alert_facet_prefix}{status}:{domain}:{severity}"

    @property
    def alert_episode_prefix(self) -> str:
        """Return the prefix of the per rule+source episode indexes."""
        return f"{self.prefix}:alert-episodes:"

    def alert_episodes(self, kind: str, source_id: str) -> str:
        """Return the sorted set of the ids of one rule's alerts at one source, by first_seen (flapping reads it)."""
        return f"{self.alert_episode_prefix}{kind}|{source_id}"

    @property
    def alert_events(self) -> str:
        """Return the stream of alert changes (processor updates and operator actions), for live push and resume."""
        return f"{self.prefix}:alert-events"

    def window(self, domain: str, window_s: int, zone_id: str, start_ms: int) -> str:
        """Return the hash of one zone window's integer sums."""
        return f"{self.window_series(domain, window_s, zone_id)}{start_ms}"

    def window_series(self, domain: str, window_s: int, zone_id: str) -> str:
        """Return what the window hash keys of one zone and size start with (the window's start ms follows)."""
        return f"{self.prefix}:agg:{domain}:{window_s}:{zone_id}:"

    def window_members(self, domain: str, window_s: int, zone_id: str, start_ms: int) -> str:
        """Return the set of distinct sources counted in one zone window."""
        return f"{self.window_members_series(domain, window_s, zone_id)}{start_ms}"

    def window_members_series(self, domain: str, window_s: int, zone_id: str) -> str:
        """Return what the members set keys of one zone and size start with (the window's start ms follows)."""
        return f"{self.prefix}:aggset:{domain}:{window_s}:{zone_id}:"

    def window_index(self, domain: str, window_s: int) -> str:
        """Return the sorted set of `zone|start_ms` windows scored by start_ms."""
        return f"{self.prefix}:aggidx:{domain}:{window_s}"

    @property
    def windows_version_prefix(self) -> str:
        """Return what the windows version counters start with (the domain follows)."""
        return f"{self.prefix}:aggver:"

    def windows_version(self, domain: str) -> str:
        """Return the counter every write of a domain's windows raises (API answers kept on it are then stale)."""
        return f"{self.windows_version_prefix}{domain}"

    def windows_emitted(self, domain: str, window_s: int) -> str:
        """Return the sorted set of windows already sent to the aggregates topic, scored by start_ms."""
        return f"{self.prefix}:aggemitted:{domain}:{window_s}"

    def partition_offset(self, topic: str, partition: int) -> str:
        """Return the key holding the last offset applied from one partition."""
        return f"{self.prefix}:offset:{topic}:{partition}"

    def feeder(self, feeder_id: str) -> str:
        """Return the JSON state of one feeder: its meters' supply and its open outage, shared by all partitions."""
        return f"{self.prefix}:feeder:{feeder_id}"

    def fences(self, kind: str) -> str:
        """Return the GeoJSON FeatureCollection of one airspace kind set at run time (`PUT /zones/{kind}`)."""
        return f"{self.prefix}:fences:{kind}"

    @property
    def fences_version(self) -> str:
        """Return the counter that goes up with every fence change; workers rebuild their airspace when it moves."""
        return f"{self.prefix}:fences-version"

    def separation_slice(self, slice_index: int, tile: str) -> str:
        """Return the GEO set of airborne fixes (`drone|t_ms|height|lon|lat`) in one time slice and grid tile."""
        return f"{self.prefix}:sep2:{slice_index}:{tile}"

    def separation_tile(self, tile: str) -> str:
        """Return the counter raised by every write of fixes into one grid tile's GEO sets (watched, not read)."""
        return f"{self.prefix}:sep-tile:{tile}"

    def separation_pair(self, a: str, b: str) -> str:
        """Return the JSON episode state of one pair of drones (ids sorted)."""
        return f"{self.prefix}:sep-pair:{a}|{b}"

    def separation_open(self, drone_id: str) -> str:
        """Return the set of drones one drone has an open separation episode with."""
        return f"{self.prefix}:sep-open:{drone_id}"

    @property
    def separation_last(self) -> str:
        """Return the hash of drone id -> JSON [lon, lat, height, t_ms] of its latest airborne fix."""
        return f"{self.prefix}:sep-last"

    def silence_index(self, topic: str, partition: int) -> str:
        """Return the sorted set of a partition's watched sources scored by their last reading (event ms)."""
        return f"{self.prefix}:silence:{topic}:{partition}"

    @property
    def watermarks(self) -> str:
        """Return the hash of `topic:partition` -> `event_ms:wall_ms` of the last commit."""
        return f"{self.prefix}:watermarks"

    def state(self, domain: str) -> str:
        """Return the hash of per-source detector and counter state of one domain."""
        return f"{self.prefix}:state:{domain}"

    @property
    def stats(self) -> str:
        """Return the hash of exact counters (events, dead letters) per topic."""
        return f"{self.prefix}:stats"

    # API: operator state, keys, snoozes

    @property
    def alert_operator_states(self) -> str:
        """Return the hash of alert id -> operator state JSON (status, assignee), kept apart from worker writes."""
        return f"{self.prefix}:alert-ops"

    def alert_history(self, alert_id: str) -> str:
        """Return the list of one alert's operator actions as JSON entries, oldest first."""
        return f"{self.prefix}:alert-history:{alert_id}"

    @property
    def api_keys(self) -> str:
        """Return the hash of sha256(API key) -> key record JSON (name, role); revoked keys are removed."""
        return f"{self.prefix}:api-keys"

    @property
    def api_key_names(self) -> str:
        """Return the hash of key name -> key record JSON, revoked ones included, for listing."""
        return f"{self.prefix}:api-key-names"

    @property
    def snoozes(self) -> str:
        """Return the hash of snooze id -> snooze JSON (kind, source_id, until)."""
        return f"{self.prefix}:snoozes"

    def rate_bucket(self, key_name: str) -> str:
        """Return the hash holding one API key's ingest token bucket."""
        return f"{self.prefix}:ratelimit:{key_name}"

    @property
    def api_key_digests(self) -> str:
        """Return the hash of key name -> sha256 of the key, to revoke by name."""
        return f"{self.prefix}:api-key-digests"
