"""/dashboard: the operator's and privacy officer's page, static files served with the API (no build step).

The page holds no data: it asks for an API key and reads everything through the same /v1 endpoints as any
client, so it shows exactly what that key's tenant and scopes allow.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from api.problems import Problem

STATIC = Path(__file__).resolve().parents[1] / "dashboard"
# Everything the page loads comes from here; outputs are shown from blob: URLs made from authenticated fetches.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; media-src 'self' blob:; "
       "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache"}
_ASSETS = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8",
           "favicon.svg": "image/svg+xml"}

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/dashboard")
def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/dashboard/")
def dashboard_slash() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=308)


@router.get("/dashboard/assets/{name}")
def asset(name: str) -> FileResponse:
    media_type = _ASSETS.get(name)
    if media_type is None:  # a fixed list: no path from the URL ever reaches the file system
        raise Problem(404, "not_found", "No such dashboard file.")
    return FileResponse(STATIC / name, media_type=media_type, headers=_HEADERS)
