"""Pure geometry: zones of the pilot area, the index that finds them, and metric helpers (no Kafka, no Redis)."""

from geo.exceptions import GeoError, InvalidCoordinateError, InvalidZoneError
from geo.metric import LocalProjection, buffer_m, haversine_m
from geo.zones import BINHAIWAN_ZONES_FILE, ZONE_KINDS, Zone, ZoneIndex, ZoneKind, check_coordinates, load_zones

__all__ = [
    "BINHAIWAN_ZONES_FILE",
    "ZONE_KINDS",
    "GeoError",
    "InvalidCoordinateError",
    "InvalidZoneError",
    "LocalProjection",
    "Zone",
    "ZoneIndex",
    "ZoneKind",
    "buffer_m",
    "check_coordinates",
    "haversine_m",
    "load_zones",
]
