"""ESP webhook endpoints: ``POST /webhooks/sendgrid``, ``/webhooks/postmark`` and ``/webhooks/ses`` (SNS).

Each checks the provider's proof first (:mod:`outreach.integrations.esp`), then records the events in one
transaction. 200 when recorded (repeats included: providers retry until they get a 2xx), 401 when the proof
fails, 400 for a body that is not the provider's format.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from outreach.errors import OutreachError, PermissionDeniedError
from outreach.integrations import esp
from outreach.sending.engagement import MailEvent

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
MAX_WEBHOOK_BYTES = 5 * 1024 * 1024


def _application(request: Request) -> Any:
    return request.app.state.intake.application


async def _json(request: Request) -> tuple[bytes, Any]:
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise esp.WebhookError("body over 5 MB")
    try:
        return body, orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise esp.WebhookError(f"body is not JSON ({error.msg})") from None


def _answer(error: Exception) -> JSONResponse:
    if isinstance(error, PermissionDeniedError):
        return JSONResponse({"detail": error.message, "hint": error.hint}, status_code=401)
    assert isinstance(error, OutreachError)
    return JSONResponse({"detail": error.message, "hint": error.hint}, status_code=400)


async def _record(request: Request, events: list[MailEvent], ignored: int, source: str) -> JSONResponse:
    application = _application(request)

    def store() -> esp.WebhookReport:
        with application.transaction() as session:
            return esp.store_events(session, events, source, datetime.now(UTC))

    report = await run_in_threadpool(store)
    return JSONResponse({"received": report.received, "recorded": report.recorded,
                         "duplicates": report.duplicates, "ignored": ignored, "suppressed": report.suppressed})


@router.post("/sendgrid")
async def sendgrid(request: Request) -> JSONResponse:
    """SendGrid's signed Event Webhook."""
    settings = _application(request).settings
    try:
        body, doc = await _json(request)
        if not settings.sendgrid_webhook_public_key:
            raise PermissionDeniedError("SendGrid webhooks are not configured",
                                        hint="set OUTREACH_SENDGRID_WEBHOOK_PUBLIC_KEY to the Event Webhook's "
                                        "verification key")
        esp.verify_sendgrid(settings.sendgrid_webhook_public_key, body,
                            request.headers.get("X-Twilio-Email-Event-Webhook-Signature", ""),
                            request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", ""))
        events, ignored = esp.sendgrid_events(doc)
    except OutreachError as error:
        return _answer(error)
    return await _record(request, events, ignored, "sendgrid")


@router.post("/postmark")
async def postmark(request: Request) -> JSONResponse:
    """Postmark's bounce, spam complaint, delivery, subscription change and click webhooks."""
    settings = _application(request).settings
    try:
        username, password = _basic(request)
        esp.verify_postmark(settings, username, password)
        _, doc = await _json(request)
        events, ignored = esp.postmark_events(doc)
    except OutreachError as error:
        return _answer(error)
    return await _record(request, events, ignored, "postmark")


@router.post("/ses")
async def ses(request: Request) -> JSONResponse:
    """Amazon SES notifications through an SNS HTTPS subscription (confirmations confirmed automatically)."""
    settings = _application(request).settings
    try:
        _, doc = await _json(request)
        if not isinstance(doc, dict):
            raise esp.WebhookError("an SNS message is a JSON object")
        esp.allowed_topic(settings, doc)
        await run_in_threadpool(esp.verify_sns, doc)
        if doc.get("Type") == "SubscriptionConfirmation":
            url = esp.subscribe_url(doc)

            def confirm() -> None:
                import httpx

                try:
                    httpx.get(url, timeout=10.0).raise_for_status()
                except httpx.HTTPError as error:
                    raise OutreachError(f"confirming the SNS subscription failed: {error}") from None

            await run_in_threadpool(confirm)
            return JSONResponse({"confirmed": True})
        if doc.get("Type") != "Notification":
            return JSONResponse({"ignored": 1})
        events, ignored = esp.ses_events(doc)
    except OutreachError as error:
        return _answer(error)
    return await _record(request, events, ignored, "ses")


def _basic(request: Request) -> tuple[str | None, str | None]:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user, password
