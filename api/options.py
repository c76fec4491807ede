"""The API's settings, under the name the routes and services use."""

from __future__ import annotations

from streams.settings import ApiSettings, Settings

ApiOptions = ApiSettings


def api_options(settings: Settings) -> ApiSettings:
    """Return the API's settings."""
    return settings.api
