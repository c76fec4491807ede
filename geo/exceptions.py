"""Errors of the geometry package, one line each, under the project's one base class."""

from streams.exceptions import CitystreamError


class GeoError(CitystreamError):
    """Base of every error raised by `geo`."""


class InvalidZoneError(GeoError):
    """A zone file or feature is unusable; the message names the feature and the reason."""


class InvalidCoordinateError(GeoError):
    """A longitude or latitude is out of range or not finite; the message names the value."""


class InvalidAreaError(GeoError):
    """A query area (bounding box or GeoJSON polygon) is unusable; the message says why."""
