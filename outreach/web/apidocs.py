"""The API reference: ``/api/docs`` (Swagger UI) and ``/api/openapi.json``, both behind a login.

Swagger UI's script and stylesheet come from the ``fastapi-offline`` package and are served from this app
(:data:`ASSETS_PATH`), started by ``static/api-docs.js`` — no CDN and no inline script, so the page works on a
locked-down network under the app's Content-Security-Policy. The schema is readable with a web login (the
docs page fetches it with the cookie) or an API token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse

from outreach.web.pages import User, _context, _render, current_user

router = APIRouter(include_in_schema=False)
ASSETS_PATH = "/api/docs/assets"


def swagger_assets() -> Path:
    """The directory holding ``swagger-ui-bundle.js`` and ``swagger-ui.css`` (shipped by fastapi-offline)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


def openapi_schema(request: Request) -> dict[str, Any]:
    app = request.app
    if app.openapi_schema is None:
        app.openapi_schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                         routes=app.routes)
    schema: dict[str, Any] = app.openapi_schema
    return schema


@router.get("/api/openapi.json")
def openapi_json(request: Request) -> JSONResponse:
    from outreach.web.api import api_user
    from outreach.web.state import ApiAuthRequired

    if request.headers.get("Authorization"):
        api_user(request)  # raises ApiAuthRequired (401) for a bad token
    elif current_user(request) is None:
        raise ApiAuthRequired("authentication required: log in to the web app or send Authorization: Bearer <token>")
    return JSONResponse(openapi_schema(request))


@router.get("/api/docs", response_class=HTMLResponse)
def api_docs(request: Request, user: User) -> HTMLResponse:
    return _render(request, "api_docs.html", _context(request, user, assets=ASSETS_PATH))
