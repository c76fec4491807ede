"""Drones: Remote ID telemetry -> no-fly breaches and per-zone airborne counts."""
