"""The SDR review web app: ``create_app(application)`` builds it, ``outreach serve`` runs it.

Server-rendered pages (Jinja2, autoescaped) with htmx and Swagger UI served from the package — no CDN, so it
works on a locked-down laptop and no third-party script runs on the app's origin. Logins are server-side
sessions (revocable rows; the signed, HttpOnly, SameSite=Lax cookie only names one) and every form carries a
per-session CSRF token; the JSON API under ``/api/`` takes bearer tokens only (never the cookie), so a
forged cross-site request has nothing to ride on. Every response carries the security headers of
:mod:`outreach.web.security`; malformed or out-of-range input is a 404/422 page, never a 500. The app parses input, calls :class:`~outreach.review.queue.ReviewQueue`
and turns :class:`~outreach.errors.OutreachError` into a flash message or an HTTP error.
"""

from __future__ import annotations

import os
import secrets
from datetime import date

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from outreach.application import Application
from outreach.errors import NotFoundError, OutreachError
from outreach.review.queue import DatasetGateCheck, GateCheck, Regenerator, ReviewQueue
from outreach.settings import Settings
from outreach.web.security import LoginThrottle, SecurityHeaders
from outreach.web.state import WEB_DIR, ApiAuthRequired, LoginRequired, ReviewApp, status_for

SECRET_FILE = ".outreach-secret"


def secret_key(settings: Settings) -> str:
    """The session signing key: configured, or created once in OUTREACH_HOME (mode 600) so logins survive a
    restart without anyone having to invent a key."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = settings.resolved_home() / SECRET_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(key)
    return key


def create_app(
    application: Application | Settings | None = None,
    *,
    gate_check: GateCheck | None = None,
    regenerator: Regenerator | None = None,
) -> FastAPI:
    """Build the app for a migrated database. With ``OUTREACH_DATA_DIR`` (``settings.data_dir``) set, gates are
    re-checked against that data and "regenerate" drafts through the configured provider, unless callers pass
    their own."""
    from outreach.web import admin, api, apidocs, dashboard, intake, pages, tuning, unsubscribe

    if not isinstance(application, Application):
        application = Application.from_settings(application)
    settings = application.settings
    factory = application.sessions
    if settings.data_dir is not None and (gate_check is None or regenerator is None):
        from outreach.review.redraft import Redrafter
        from outreach.review.users import sender_source

        dataset = application.dataset(settings.data_dir)
        if gate_check is None:
            gate_check = DatasetGateCheck(settings.data_dir, settings.as_of or date.today(),
                                          rules_path=settings.rules_path, dataset=dataset)
        if regenerator is None:
            regenerator = Redrafter.for_dataset(dataset, settings, senders=sender_source(factory))
    queue = ReviewQueue(factory, gate_check=gate_check, regenerator=regenerator)

    app = FastAPI(
        title="outreach review API",
        version="1",
        description="Review queue for friction-led expansion emails. Authenticate with "
        "`Authorization: Bearer <token>` (create one with `outreach tokens create`).",
        docs_url=None,  # /api/docs and /api/openapi.json are served by outreach.web.apidocs, behind a login
        redoc_url=None,
        openapi_url=None,
    )
    app.state.review = ReviewApp(application=application, queue=queue,
                                 throttle=LoginThrottle(settings.login_limits_storage))
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key(settings),
        session_cookie="outreach_session",
        max_age=settings.session_hours * 3600,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    app.mount(apidocs.ASSETS_PATH, StaticFiles(directory=apidocs.swagger_assets()), name="swagger-assets")
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    app.include_router(apidocs.router)
    app.include_router(admin.router)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(tuning.router)
    app.include_router(unsubscribe.router)
    app.include_router(dashboard.router)
    intake.install(app, application)  # /v1 (Segment-compatible events), /webhooks (ESPs), /integrations

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _error: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        location = "/login" if target in ("/", "/queue") else f"/login?next={_quote(target)}"
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": location})
        if request.method == "GET":
            return RedirectResponse(location, status_code=303)
        return HTMLResponse(pages.render_login(request, error="Your session ended. Log in again."),
                            status_code=401)

    @app.exception_handler(ApiAuthRequired)
    async def api_auth_required(_request: Request, error: ApiAuthRequired) -> Response:
        return JSONResponse({"detail": error.message}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="outreach"'})

    @app.exception_handler(OutreachError)
    async def outreach_error(request: Request, error: OutreachError) -> Response:
        status = status_for(error)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": error.message, "hint": error.hint}, status_code=status)
        return HTMLResponse(pages.render_error(request, error, status), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = error.errors()
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": jsonable(problems), "hint": "see /api/docs for the parameters"},
                                status_code=422)
        in_path = any(p.get("loc", ("",))[0] == "path" for p in problems)
        first = problems[0] if problems else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "input"
        problem: OutreachError = (NotFoundError(f"no such page: {request.url.path}",
                                                hint=f"'{first.get('input')}' is not a valid {where}")
                                  if in_path else OutreachError(f"{where}: {first.get('msg', 'invalid')}"))
        status = 404 if in_path else 422
        return HTMLResponse(pages.render_error(request, problem, status), status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or error.status_code not in (404, 405):
            return JSONResponse({"detail": error.detail}, status_code=error.status_code,
                                headers=getattr(error, "headers", None))
        problem = NotFoundError(f"no such page: {request.url.path}") if error.status_code == 404 else \
            OutreachError(f"{request.method} is not allowed on {request.url.path}")
        return HTMLResponse(pages.render_error(request, problem, error.status_code), status_code=error.status_code)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def jsonable(problems: object) -> object:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(problems, custom_encoder={Exception: str})


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000) -> None:  # pragma: no cover - blocks
    """Run the app with uvicorn until interrupted (``outreach serve`` / ``outreach demo``)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)
