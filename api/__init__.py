"""The HTTP service: operators' alerts, planners' aggregates, zones, ingest and health."""
