"""The operations dashboard: one page and its static files, under a Content-Security-Policy of 'self' only."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# Everything from this origin only; no inline script or style, no plugins, not framed by other sites.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate with the ETag each time, so an upgraded API never serves a stale script.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def dashboard() -> FileResponse:
    """Serve the dashboard page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


class DashboardFiles(StaticFiles):
    """The dashboard's scripts, styles and icons, with the page's security headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """Serve a static file with the security headers."""
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def static_files() -> DashboardFiles:
    """Return the app mounted at /static."""
    return DashboardFiles(directory=STATIC_DIR)
