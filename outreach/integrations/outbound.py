"""The generic outbound webhook: every notification as signed JSON, for systems outreach has no channel for.

``POST OUTREACH_WEBHOOK_URL`` with ``{"id", "kind", "account_id", "draft_id", "created_at", "payload"}`` and the
headers ``X-Outreach-Event`` (the kind), ``X-Outreach-Delivery`` (the notification id, the same on every retry),
``X-Outreach-Timestamp`` and, with ``OUTREACH_WEBHOOK_SECRET``, ``X-Outreach-Signature: sha256=<hex>``: HMAC-SHA256
of ``"<timestamp>.<body>"`` with the secret. Receivers recompute it over the raw body, compare in constant time
and refuse old timestamps. Any 2xx counts as delivered.
"""

from __future__ import annotations

import time

import httpx
from sqlalchemy.orm import Session

from outreach.integrations.channels import (
    KINDS,
    DeliveryError,
    dumps,
    http_error,
    register_channel,
    signed_headers,
)
from outreach.integrations.tables import NotificationRow
from outreach.settings import Settings


class OutboundWebhook:
    name: str = "webhook"
    kinds: tuple[str, ...] = KINDS

    def __init__(self, url: str, secret: str | None, *, timeout: float = 10.0) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout

    def deliver(self, row: NotificationRow, session: Session) -> str | None:
        body = dumps({
            "id": row.id, "kind": row.kind, "account_id": row.account_id, "draft_id": row.draft_id,
            "created_at": row.created_at.isoformat(), "payload": row.payload,
        })
        stamp = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": "outreach-webhook/1",
                   "X-Outreach-Event": row.kind, "X-Outreach-Delivery": str(row.id),
                   "X-Outreach-Timestamp": str(stamp), **signed_headers(self.secret, body, stamp)}
        try:
            response = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as error:
            raise DeliveryError(f"webhook {self.url}: {error}", transient=True) from None
        if response.is_success:
            return None
        raise http_error(response.status_code, response.text, response.headers, service="webhook")


@register_channel("webhook")
def _webhook(settings: Settings) -> OutboundWebhook | None:
    if not settings.webhook_url:
        return None
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    return OutboundWebhook(settings.webhook_url, secret)
