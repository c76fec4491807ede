"""Apply the traffic detectors and aggregation to one reading."""

from __future__ import annotations

from typing import Any

from processors.baselines import local_hours
from processors.outcome import BatchOutcome
from processors.peers import Peers
from processors.silence import SilenceRule, on_reading
from processors.traffic.aggregations import (
    ANOMALY_MAX_FIELD,
    CONGESTED_STEP_MAX_MS,
    anomaly_milli,
    traffic_increments,
)
from processors.traffic.anomaly import DETECTORS, link_travel_time_s, score_readings
from processors.traffic.detectors import (
    congestion_detector,
    in_incident,
    incident_detector,
    normal_flow,
    stuck_detector,
)
from processors.traffic.sites import Site, SiteTable, load_sites
from streams.exceptions import ConfigError
from streams.models import Alert, AlertStatus, Domain, Severity, TrafficReading
from streams.settings import Settings

SEGMENT_PREFIX = "#incident|"  # a detector id cannot start with '#': segment episodes never collide with one


def segment_key(site: Site, partition: int) -> str:
    """Return the state key of a segment's incident episode as one partition sees it.

    With readings keyed by road segment, one partition holds the whole segment; the partition in the key keeps
    partitions from overwriting each other's episode if a gateway keys by detector instead.
    """
    return f"{SEGMENT_PREFIX}{site.road_segment}|{site.direction}|{partition}"


class TrafficProcessor:
    """Run every traffic rule for one reading against its sensor's state and, for incidents, its neighbour's."""

    domain = Domain.traffic

    def __init__(self, settings: Settings, sites: SiteTable | None = None) -> None:
        self.rules = settings.traffic
        self.sites = sites if sites is not None else load_sites(settings.sites_file)
        self.silence = SilenceRule(
            "sensor_offline", Domain.traffic, Severity.medium, int(self.rules.offline_after_s * 1000), "detector"
        )
        if self.rules.anomaly_detector not in DETECTORS:
            raise ConfigError(
                f"CITY_TRAFFIC__ANOMALY_DETECTOR={self.rules.anomaly_detector!r} is not a detector; "
                f"use one of {', '.join(sorted(DETECTORS))}"
            )
        self.anomaly = DETECTORS[self.rules.anomaly_detector]

    def related_sources(self, event: Any, partition: int) -> tuple[str, ...]:
        """Return the upstream detector and the segment episode the incident rule reads for this reading."""
        site = self.sites.site(event.source_id)
        upstream = self.sites.upstream(event.source_id)
        if site is None or upstream is None:
            return ()
        return upstream.sensor_id, segment_key(site, partition)

    def process(
        self,
        event: Any,
        zone_id: str,
        state: dict[str, Any],
        out: BatchOutcome,
        detect: bool = True,
        peers: Peers | None = None,
    ) -> None:
        """Add the reading to its zone window and run the detectors if it is in time order."""
        reading: TrafficReading = event
        groups = (f"sensor:{reading.sensor_id}",)
        if not detect:  # an older reading than the detector's newest: counted, no congested time
            out.add_reading(zone_id, reading.observed_ms, traffic_increments(reading), groups=groups)
            return
        previous_ms = state.get("silence", {}).get("last_ms")
        on_reading(self.silence, reading, zone_id, state, out)
        congestion = state.setdefault("congestion", {})
        incident = self._incident(reading, state, congestion, zone_id, out, peers or Peers())
        out.emit(incident)
        out.emit(
            self._congestion(reading, congestion, zone_id, incident_open=bool(state.get("incident", {}).get("in")))
        )
        out.emit(stuck_detector(reading, state.setdefault("stuck", {}), self.rules, zone_id))
        congested_ms = 0
        if "open" in congestion and previous_ms is not None:
            congested_ms = min(reading.observed_ms - previous_ms, CONGESTED_STEP_MAX_MS)
        score = self.anomaly_score(reading, state)
        out.add_reading(
            zone_id,
            reading.observed_ms,
            traffic_increments(reading, congested_ms, anomalous=score >= self.anomaly.alarm_score),
            maxima={ANOMALY_MAX_FIELD: anomaly_milli(score)},
            groups=groups,
        )

    def anomaly_score(self, reading: TrafficReading, state: dict[str, Any]) -> float:
        """Score the reading's speed, occupancy and, on a link the site table measures, its travel time.

        Each series has its own streaming detector state in the detector's state (fixed size, no look-ahead);
        the reading's score is the highest of its series' scores, in [0, 1).
        """
        series = {"speed": reading.avg_speed_kmh, "occupancy": reading.occupancy}
        site, upstream = self.sites.site(reading.sensor_id), self.sites.upstream(reading.sensor_id)
        if site is not None and upstream is not None and site.road_segment == reading.road_segment:
            link_m = abs(site.position_m - upstream.position_m)
            if link_m > 0:
                series["travel_time"] = link_travel_time_s(link_m, reading.avg_speed_kmh)
        return score_readings(state.setdefault("anomaly", {}), series, self.anomaly)

    def _incident(
        self,
        reading: TrafficReading,
        state: dict[str, Any],
        congestion: dict[str, Any],
        zone_id: str,
        out: BatchOutcome,
        peers: Peers,
    ) -> Alert | None:
        """Run the incident rule against the upstream detector's state if it comes through this partition."""
        site = self.sites.site(reading.sensor_id)
        if site is None or site.road_segment != reading.road_segment:
            # Not in the site table, or its readings name another segment than its row: the table does not
            # place it, so it is nobody's upstream neighbour and never an incident.
            state.pop("incident", None)
            return None
        own = state.setdefault("incident", {})
        own["part"] = peers.partition
        local_hour = local_hours(reading.observed_ms, self.rules.local_utc_offset_h) % 24
        normal = normal_flow(congestion, local_hour, self.rules)
        upstream_site = self.sites.upstream(reading.sensor_id)
        if upstream_site is None:  # the first detector of its road: remembered as the next one's upstream
            incident_detector(reading, own, normal, None, None, {}, self.rules, zone_id)
            return None
        upstream_state = (peers.state_of(upstream_site.sensor_id) or {}).get("incident")
        if upstream_state is not None and upstream_state.get("part") != peers.partition:
            upstream_state = None  # written by another partition: reading it would race, so the rule does not
        key = segment_key(site, peers.partition)
        segment = peers.shared(key)
        upstream = (upstream_site, upstream_state)
        alert = incident_detector(reading, own, normal, site, upstream, segment, self.rules, zone_id)
        if alert is not None or "open" in segment:
            out.dirty_sources.add(key)
        own["in"] = in_incident(segment, reading.sensor_id)
        return alert

    def _congestion(
        self, reading: TrafficReading, congestion: dict[str, Any], zone_id: str, incident_open: bool
    ) -> Alert | None:
        """Run the congestion rule, kept quiet while the detector's collapse is already an open incident.

        A congestion episode that starts inside an incident is not shown while the incident lasts (one alert
        for the blocked segment, not one more per lane); if it outlasts the incident it shows from then on.
        """
        was_open = congestion.get("open")
        alert = congestion_detector(reading, congestion, self.rules, zone_id)
        now_open = congestion.get("open")
        if now_open is not None and was_open is None and incident_open:
            now_open["quiet"] = True
        episode = now_open if now_open is not None else was_open
        if alert is None or episode is None or not episode.get("quiet"):
            return alert
        if incident_open or alert.status is AlertStatus.resolved:
            return None
        episode.pop("quiet")
        return alert
