"""Aggregates as CSV (one row per item, with a header) and as GeoJSON (one zone polygon per row group)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from api.models import ZoneAggregate
from geo.zones import ZoneIndex
from streams.models import Aggregate

NO_GEOMETRY_NOTE = (
    "rows without a zone polygon (meter:/feeder: groups, unzoned) are left out; ask format=json or csv for them"
)


def to_csv(items: Sequence[Aggregate] | Sequence[ZoneAggregate], columns: Sequence[str]) -> str:
    """Return the items as CSV: a header row naming the columns, then one row per item, times in ISO 8601."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for item in items:
        row = item.model_dump(mode="json")
        writer.writerow([row[c] for c in columns])
    return out.getvalue()


def to_geojson(items: Sequence[BaseModel], zone_index: ZoneIndex) -> dict[str, Any]:
    """Return a FeatureCollection: one Feature per zone and period, its metrics as `<domain>.<metric>` properties.

    Rows of a meter or feeder group (or unzoned) have no geometry: they are listed under `omitted` with a `note`.
    """
    features: dict[tuple[str, str, str], dict[str, Any]] = {}
    omitted: set[str] = set()
    for item in items:
        row = item.model_dump(mode="json")
        zone = zone_index.get(row["zone_id"])
        if zone is None:
            omitted.add(row["zone_id"])
            continue
        period = (row["zone_id"], row["window_start"], row["window_end"])
        feature = features.get(period)
        if feature is None:
            base = zone.to_feature()
            properties = {
                "zone_id": zone.id,
                "name": zone.name,
                "window_start": row["window_start"],
                "window_end": row["window_end"],
            }
            feature = features[period] = {"type": "Feature", "geometry": base["geometry"], "properties": properties}
        feature["properties"][f"{row['domain']}.{row['metric']}"] = row["value"]
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": list(features.values())}
    if omitted:
        collection["omitted"] = sorted(omitted)
        collection["note"] = NO_GEOMETRY_NOTE
    return collection
