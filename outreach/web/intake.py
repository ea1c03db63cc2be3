"""Events and mail events in over HTTP: Segment's Tracking API (``/v1/*``) and the ESPs' webhooks (``/webhooks/*``).

Both parse the request and call the library (:mod:`outreach.integrations.intake`, :mod:`outreach.integrations.esp`);
neither uses the review app's cookies or CSRF tokens: ``/v1`` authenticates with the workspace write key (HTTP
Basic username, Segment's convention), the ESP webhooks with each provider's signature or credentials.
Answers follow Segment's: ``{"success": true}``, or 400/401 with ``{"success": false, "code", "message"}``.
Events that change an account are handed to the :class:`~outreach.integrations.reactor.Reactor`, which
re-decides just those accounts in the background.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from outreach.application import Application
from outreach.errors import OutreachError, PermissionDeniedError
from outreach.integrations.intake import (
    MAX_REQUEST_BYTES,
    IntakeError,
    TriggerNumbers,
    check_key,
    decode_body,
    parse_request,
    signature_matches,
    store_messages,
    trigger_numbers,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["intake"])


class Intake:
    """``app.state.intake``: the application and, when the app serves a data directory, the reactor that
    re-decides accounts as their events arrive (started on first use, stopped with the app)."""

    def __init__(self, application: Application) -> None:
        self.application = application
        self._stopping = threading.Event()
        self._reactor: Any = None
        self._lock = threading.Lock()
        self._store_ready = False
        self._numbers: TriggerNumbers | None = None

    def ensure_store(self) -> None:
        """The store's file exists once events arrive, so runs know to read it."""
        if not self._store_ready:
            self.application.event_store(create=True)
            self._store_ready = True

    @property
    def numbers(self) -> TriggerNumbers:
        """The numeric properties checked on arriving events, under the product's event names (the rules of the
        workspace, the served data directory and OUTREACH_RULES_PATH): a renamed limit event is checked too."""
        if self._numbers is None:
            self._numbers = trigger_numbers(self.application.project_rules().events.model_dump())
        return self._numbers

    @property
    def reactor(self) -> Any:
        settings = self.application.settings
        if settings.data_dir is None or not settings.intake_react:
            return None
        with self._lock:
            if self._reactor is None:
                from outreach.integrations.reactor import Reactor

                self._reactor = Reactor(self.application, settings.data_dir, as_of=settings.as_of)
                self._reactor.start()
            return self._reactor

    def startup(self) -> None:
        """When served: start re-deciding (if this workspace takes events) and delivering notifications."""
        from outreach.integrations.intake import active_key
        from outreach.integrations.notify import configured_channels

        _ = self.numbers  # the rules are read (and a broken rules.yaml reported) at start, not on a request
        with self.application.sessions() as session:
            takes_events = active_key(session) is not None
        if takes_events:
            _ = self.reactor  # starts it: its first pass records the baseline before events arrive
        try:
            channels = configured_channels(self.application.settings)
        except OutreachError as error:  # a half-configured CRM: say so, keep serving the rest
            log.error("notifications are off: %s (%s)", error.message, error.hint)
            return
        if channels:
            self._notifier = threading.Thread(target=self._notify_loop, name="outreach-notify", daemon=True)
            self._notifier.start()

    _notifier: threading.Thread | None = None

    def _notify_loop(self, interval: float = 15.0) -> None:
        from outreach.integrations.notify import notify_pass

        while not self._stopping.wait(interval):
            try:
                notify_pass(self.application)
            except Exception:  # pragma: no cover - logged; the next pass tries again
                log.exception("delivering notifications failed")

    def close(self) -> None:
        self._stopping.set()
        with self._lock:
            if self._reactor is not None:
                self._reactor.close()
                self._reactor = None
        if self._notifier is not None:
            self._notifier.join(timeout=30)
            self._notifier = None


def install(app: FastAPI, application: Application) -> None:
    """Mount the intake routes on ``app`` and stop its background work when the app shuts down."""
    intake = Intake(application)
    app.state.intake = intake
    app.include_router(router)
    from outreach.web import integrations, webhooks

    app.include_router(webhooks.router)
    app.include_router(integrations.router)
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with previous(app) as state:
            await run_in_threadpool(intake.startup)
            try:
                yield state
            finally:
                intake.close()

    app.router.lifespan_context = lifespan


def _error(status: int, code: str, message: str, hint: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"success": False, "code": code, "message": message}
    if hint:
        body["hint"] = hint
    headers = {"WWW-Authenticate": 'Basic realm="outreach"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _basic_username(request: Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0]


async def _body(request: Request) -> bytes:
    """The body, refusing (before reading it all) anything over the request limit."""
    declared = request.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise IntakeError(f"request is {int(declared):,} bytes; the limit is 500 KB per request",
                          hint="send smaller batches (the Segment libraries split at 500 KB)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise IntakeError("request is over 500 KB; the limit is 500 KB per request",
                              hint="send smaller batches (the Segment libraries split at 500 KB)")
        chunks.append(chunk)
    return b"".join(chunks)


async def _receive(request: Request, call: str) -> JSONResponse:
    intake: Intake = request.app.state.intake
    application = intake.application
    received_at = datetime.now(UTC)
    try:
        body = await _body(request)
        doc = decode_body(body, request.headers.get("Content-Encoding"))
        key = _basic_username(request)
        if not key and isinstance(doc, dict) and isinstance(doc.get("writeKey"), str):
            key = doc["writeKey"]
        signature = request.headers.get("X-Signature")

        def authorize() -> None:
            with application.sessions() as session:
                check_key(session, key or "")

        await run_in_threadpool(authorize)
        if signature and key and not signature_matches(key, body, signature):
            return _error(401, "unauthorized", "X-Signature does not match the body",
                          hint="set the Webhooks destination's shared secret to the write key")
        messages = parse_request(doc, call, received_at, intake.numbers)

        def store() -> Any:
            intake.ensure_store()
            return store_messages(application.engine, messages, received_at)

        stored = await run_in_threadpool(store)
    except IntakeError as error:
        return _error(400, "invalid_request", error.message, error.hint)
    except PermissionDeniedError as error:
        return _error(401, "unauthorized", error.message, error.hint)
    except OutreachError as error:
        return _error(400, "invalid_request", error.message, error.hint)
    reactor = intake.reactor
    if reactor is not None and stored.accounts:
        reactor.notify(stored.accounts)
    return JSONResponse({"success": True})


# Segment's calls: path -> (message type the body holds, what the call does). /v1/import is Segment's historical
# import, the same body as a batch.
CALLS = {
    "track": ("track", "Segment `track`: one product event."),
    "identify": ("identify", "Segment `identify`: stored; with `context.groupId` it places the user in that account."),
    "group": ("group", "Segment `group`: the user belongs to the account `groupId`."),
    "page": ("page", "Segment `page`: stored as the event `Page Viewed` with `name` among its properties."),
    "screen": ("screen", "Segment `screen`: stored as the event `Screen Viewed`."),
    "alias": ("alias", "Segment `alias`: stored; it does not merge users."),
    "batch": ("batch", "Segment `batch` (what the libraries send): up to 500 KB of messages of any type."),
    "import": ("batch", "Segment's historical import: the same body as `batch`."),
}


def _endpoint(call: str) -> Any:
    async def receive(request: Request) -> JSONResponse:
        return await _receive(request, call)

    return receive


for _path, (_call, _summary) in CALLS.items():
    router.add_api_route(f"/v1/{_path}", _endpoint(_call), methods=["POST"], summary=_summary,
                         name=f"intake_{_path}")
