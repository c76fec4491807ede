"""The city's zones: districts from the zones file, airspace fences from Redis (set at run time) or the file."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from geo.zones import ZoneIndex
from processors.drone.airspace import AIRSPACE_KINDS, FENCE_KIND, AirspaceKind
from processors.drone.fence_store import read_collections, write_collection
from streams.keys import Keys

API_KIND = {fence_kind: kind for kind, fence_kind in FENCE_KIND.items()}


async def current_zones(redis: Redis, keys: Keys, zones: ZoneIndex, kind: str | None) -> dict[str, Any]:
    """Return the zones in force as one GeoJSON FeatureCollection (one kind if asked), with the fence version."""
    version, collections, runtime = await read_collections(redis, keys, zones)
    features: list[dict[str, Any]] = []
    if kind in (None, "district"):
        features += zones.to_geojson("district")["features"]
    for airspace_kind in AIRSPACE_KINDS:
        if kind not in (None, airspace_kind):
            continue
        for feature in collections[airspace_kind]["features"]:
            props = dict(feature.get("properties") or {})
            props["kind"] = API_KIND.get(props.get("kind", ""), airspace_kind)
            props["source"] = "runtime" if airspace_kind in runtime else "file"
            features.append({**feature, "properties": props})
    return {"type": "FeatureCollection", "version": version, "features": features}


async def replace_fences(redis: Redis, keys: Keys, zones: ZoneIndex, kind: AirspaceKind, body: Any) -> dict[str, Any]:
    """Validate and store the fences of one kind, replacing the previous ones; return the new version."""
    version, count = await write_collection(redis, keys, zones, kind, body)
    return {"kind": kind, "fences": count, "version": version}
