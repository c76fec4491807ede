"""Who may do what: the roles an API key carries."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """An API key's role; admin may do everything."""

    gateway = "gateway"  # ingest only
    operator = "operator"  # read alerts and act on them
    planner = "planner"  # read aggregates and zones
    admin = "admin"  # everything
