"""The API's views: alerts (the stored Alert plus operator state), operator requests' bodies, zone figures."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from streams.models import Aggregate, Alert, AlertStatus, Domain, Severity, SourceId


class AlertRead(Alert):
    """An alert as operators see it: `status` is the effective one (processor and operator merged)."""

    processor_status: AlertStatus = AlertStatus.open
    assignee: str | None = None
    flapping: bool = False
    folded: int = Field(0, description="older episodes of this rule and source shown folded into this row")
    snoozed_until: datetime | None = None


class AlertReadPage(BaseModel):
    """One page of alerts and the cursor of the next one (None at the end)."""

    items: list[AlertRead]
    next_cursor: str | None = None


class AlertCounts(BaseModel):
    """How many alerts match, in total and per severity."""

    total: int
    by_severity: dict[Severity, int]


class Action(StrEnum):
    """What an operator can do to an alert."""

    ack = "ack"
    resolve = "resolve"
    assign = "assign"
    note = "note"


class HistoryEntry(BaseModel):
    """One change of an alert: who (an API key's name, or `processor`), when, and what."""

    action: Action | Literal["open"]
    by: str
    at: datetime
    status: AlertStatus = Field(description="the effective status after the change")
    value: str | None = Field(None, description="the assignee or the note's text")


class AssignBody(BaseModel):
    """Whom to assign an alert to."""

    model_config = ConfigDict(extra="forbid")

    operator: str = Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")


class NoteBody(BaseModel):
    """A note to keep with an alert."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)


class SnoozeCreate(BaseModel):
    """Hide one rule's alerts of one source for a while."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    source_id: SourceId
    minutes: int = Field(ge=1, le=7 * 24 * 60)


class Snooze(BaseModel):
    """An active snooze."""

    id: str
    kind: str
    source_id: str
    until: datetime
    by: str
    created_at: datetime


class DronePosition(BaseModel):
    """An airborne drone's latest fix, as the worker last applied it."""

    drone_id: str
    lon: float
    lat: float
    zone_id: str | None = None
    observed_at: datetime


class DronePage(BaseModel):
    """The airborne drones heard from recently, newest fix first."""

    items: list[DronePosition]


class ZoneAggregate(BaseModel):
    """One metric of one zone (or meter/feeder group) combined over the windows of a time range."""

    domain: Domain
    metric: str
    zone_id: str
    window_start: datetime = Field(description="start of the first window combined")
    window_end: datetime = Field(description="end of the last window combined")
    windows: int = Field(description="how many windows were combined")
    value: float
    unit: str
    samples: int = Field(description="readings (or fixes) in all the windows combined")


class ZoneAggregatePage(BaseModel):
    """Per-zone figures over a time range (`group_by=zone`, or the `top` zones by a metric)."""

    items: list[ZoneAggregate]


class ZoneSummary(BaseModel):
    """A zone's latest closed window of each domain (a domain without one is left out)."""

    zone_id: str
    name: str
    kind: str
    window_s: int = Field(description="the window size of the figures (the finest kept)")
    items: list[Aggregate]
