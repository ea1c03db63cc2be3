"""ESP webhooks in: bounces, complaints, unsubscribes, deliveries and clicks from SendGrid, Postmark and Amazon
SES (through SNS) land in suppression and engagement like the IMAP poller's.

Each provider proves who sent the request its own way, and nothing is recorded until that proof holds:

- **SendGrid** signs its Event Webhook with ECDSA (P-256, SHA-256) over ``timestamp + body``; the public key
  from Mail Settings → Event Webhook goes in ``OUTREACH_SENDGRID_WEBHOOK_PUBLIC_KEY``.
- **Postmark** does not sign; its documented protection is HTTP Basic credentials in the webhook URL
  (``OUTREACH_POSTMARK_WEBHOOK_USER`` / ``_PASSWORD``), checked in constant time.
- **SES** publishes to SNS, which signs every message with RSA (SHA1 for SignatureVersion 1, SHA256 for 2) and a
  certificate served from ``https://sns.<region>.amazonaws.com/…pem``; only topics in
  ``OUTREACH_SES_TOPIC_ARNS`` are accepted, and a subscription confirmation is confirmed by visiting its
  ``SubscribeURL`` after the same checks.

The mapping: a permanent bounce is ``bounce`` (suppressed as hard_bounce), any other bounce ``soft_bounce``;
a spam complaint is ``complaint`` (suppressed); an unsubscribe ``unsubscribe`` (suppressed); ``delivered`` and
``click`` are recorded. Each event is stored once (the provider's event id), matched to its enrollment by our
``Message-ID`` when the provider returns it (SendGrid ``smtp-id``, SES ``commonHeaders.messageId``), else by address.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key
from sqlalchemy.orm import Session

from outreach.errors import OutreachError, PermissionDeniedError
from outreach.sending.engagement import MailEvent, record
from outreach.settings import Settings


class WebhookError(OutreachError):
    """A webhook request that is not acceptable (400)."""


@dataclass
class WebhookReport:
    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    ignored: int = 0
    suppressed: int = 0
    confirmed: bool = False
    kinds: list[str] = field(default_factory=list)


def store_events(session: Session, events: Iterable[MailEvent], source: str, now: datetime) -> WebhookReport:
    """Record mapped events (each once) through :func:`outreach.sending.engagement.record`. Does not commit."""
    report = WebhookReport()
    for event in events:
        report.received += 1
        result = record(session, event, now, source=source)
        if result.created:
            report.recorded += 1
            report.kinds.append(event.kind)
        else:
            report.duplicates += 1
        report.suppressed += int(result.suppressed)
    return report


def _when(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            raise WebhookError(f"'{value}' is not a timestamp") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise WebhookError("an event has no timestamp")


def _message_ids(value: Any) -> list[str]:
    """Our Message-ID as the outbox stores it ('<…>'), from whatever form the provider returns."""
    if not isinstance(value, str) or not value.strip():
        return []
    bare = value.strip().strip("<>")
    return [f"<{bare}>"]


# ---------------------------------------------------------------------------------------------- SendGrid


def verify_sendgrid(public_key: str, body: bytes, signature: str, timestamp: str) -> None:
    """SendGrid's Signed Event Webhook: ECDSA over ``timestamp + body`` with the account's P-256 key."""
    if not signature or not timestamp:
        raise PermissionDeniedError("missing X-Twilio-Email-Event-Webhook-Signature / -Timestamp headers")
    try:
        raw = base64.b64decode(public_key.strip(), validate=False)
        key = load_der_public_key(raw) if not public_key.lstrip().startswith("-----") else \
            load_pem_public_key(public_key.encode())
        decoded = base64.b64decode(signature)
    except (ValueError, binascii.Error):
        raise PermissionDeniedError("the SendGrid signature or OUTREACH_SENDGRID_WEBHOOK_PUBLIC_KEY is not valid "
                                    "base64 DER") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise PermissionDeniedError("OUTREACH_SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA key")
    try:
        key.verify(decoded, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise PermissionDeniedError("the SendGrid signature does not match the body") from None


_SENDGRID_KINDS = {"spamreport": "complaint", "unsubscribe": "unsubscribe", "group_unsubscribe": "unsubscribe",
                   "delivered": "delivered", "click": "click"}


def sendgrid_events(doc: Any) -> tuple[list[MailEvent], int]:
    """SendGrid's Event Webhook body (a JSON array of events) as mail events, and how many were not relevant
    (open, processed, deferred, …)."""
    if not isinstance(doc, list):
        raise WebhookError("a SendGrid Event Webhook body is a JSON array of events")
    events, ignored = [], 0
    for i, item in enumerate(doc):
        if not isinstance(item, dict) or not isinstance(item.get("event"), str):
            raise WebhookError(f"event [{i}]: not an object with an 'event' field")
        name = item["event"]
        if name == "bounce":
            kind = "soft_bounce" if item.get("type") == "blocked" else "bounce"
        elif name == "dropped":
            kind = "soft_bounce"  # not sent: SendGrid's own suppression list or an invalid address
        else:
            kind = _SENDGRID_KINDS.get(name, "")
        if not kind or not item.get("email"):
            ignored += 1
            continue
        ids = _message_ids(item.get("smtp-id"))
        events.append(MailEvent(
            kind=kind, occurred_at=_when(item.get("timestamp")),
            external_id=f"sendgrid:{item.get('sg_event_id') or item.get('sg_message_id')}:{name}"
            if item.get("sg_event_id") or item.get("sg_message_id") else None,
            message_id=ids[0] if ids else None, email=str(item["email"]),
            detail={k: item[k] for k in ("event", "type", "reason", "status", "url", "sg_message_id") if k in item},
        ))
    return events, ignored


# ---------------------------------------------------------------------------------------------- Postmark


def verify_postmark(settings: Settings, username: str | None, password: str | None) -> None:
    expected_user = settings.postmark_webhook_user
    expected_password = settings.postmark_webhook_password.get_secret_value() if settings.postmark_webhook_password \
        else None
    if not expected_user or not expected_password:
        raise PermissionDeniedError("Postmark webhooks are not configured",
                                    hint="set OUTREACH_POSTMARK_WEBHOOK_USER and _PASSWORD and put them in the "
                                    "webhook URL (https://user:password@host/webhooks/postmark)")
    if not (hmac.compare_digest((username or "").encode(), expected_user.encode())
            and hmac.compare_digest((password or "").encode(), expected_password.encode())):
        raise PermissionDeniedError("wrong Postmark webhook credentials")


def postmark_events(doc: Any) -> tuple[list[MailEvent], int]:
    """One Postmark webhook body (Bounce, SpamComplaint, Delivery, SubscriptionChange, Click, Open)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("RecordType"), str):
        raise WebhookError("a Postmark webhook body is a JSON object with RecordType")
    record_type = doc["RecordType"]
    email = doc.get("Email") or doc.get("Recipient")
    if not email:
        return [], 1
    detail = {k: doc[k] for k in ("RecordType", "Type", "TypeCode", "Description", "Details", "MessageID",
                                  "SuppressionReason", "OriginalLink", "Tag") if k in doc}
    if record_type == "Bounce":
        kind, stamp = ("bounce" if doc.get("Type") == "HardBounce" else "soft_bounce"), doc.get("BouncedAt")
    elif record_type == "SpamComplaint":
        kind, stamp = "complaint", doc.get("BouncedAt")
    elif record_type == "Delivery":
        kind, stamp = "delivered", doc.get("DeliveredAt")
    elif record_type == "SubscriptionChange":
        if not doc.get("SuppressSending"):
            return [], 1  # a reactivation: outreach never un-suppresses on a provider's word
        kind = "complaint" if doc.get("SuppressionReason") == "SpamComplaint" else \
            "bounce" if doc.get("SuppressionReason") == "HardBounce" else "unsubscribe"
        stamp = doc.get("ChangedAt")
    elif record_type == "Click":
        kind, stamp = "click", doc.get("ReceivedAt")
    else:
        return [], 1
    event_id = doc.get("ID") or doc.get("MessageID")
    return [MailEvent(
        kind=kind, occurred_at=_when(stamp), email=str(email),
        external_id=f"postmark:{record_type}:{event_id}:{stamp}" if event_id else None, detail=detail,
    )], 0


# ---------------------------------------------------------------------------------------------- SES via SNS

_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
_certificates: dict[str, rsa.RSAPublicKey] = {}
_certificates_lock = threading.Lock()
CertificateFetcher = Callable[[str], bytes]


def _fetch(url: str) -> bytes:
    import httpx

    try:
        response = httpx.get(url, timeout=10.0)
    except httpx.HTTPError as error:
        raise PermissionDeniedError(f"could not fetch the SNS signing certificate: {error}") from None
    if response.status_code != 200:
        raise PermissionDeniedError(f"the SNS signing certificate URL answered {response.status_code}")
    return response.content


def _sns_url(url: Any, what: str) -> str:
    parsed = urlparse(str(url or ""))
    if parsed.scheme != "https" or not _SNS_HOST.match(parsed.hostname or ""):
        raise PermissionDeniedError(f"{what} {url!r} is not an https URL on sns.<region>.amazonaws.com")
    return str(url)


def verify_sns(message: Mapping[str, Any], fetch: CertificateFetcher = _fetch) -> None:
    """Amazon SNS message signatures: RSA over ``Key\\nValue\\n`` for the type's fields, with the certificate
    at ``SigningCertURL`` (https, an SNS host; cached)."""
    kind = message.get("Type")
    fields = _SIGNED_FIELDS.get(str(kind))
    if fields is None:
        raise WebhookError(f"unknown SNS message Type {kind!r}")
    version = str(message.get("SignatureVersion", "1"))
    if version not in ("1", "2"):
        raise PermissionDeniedError(f"SNS SignatureVersion {version} is not supported")
    url = _sns_url(message.get("SigningCertURL"), "SigningCertURL")
    if not urlparse(url).path.endswith(".pem"):
        raise PermissionDeniedError("SigningCertURL is not a .pem certificate")
    with _certificates_lock:
        key = _certificates.get(url)
    if key is None:
        certificate = x509.load_pem_x509_certificate(fetch(url))
        public = certificate.public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            raise PermissionDeniedError("the SNS signing certificate is not an RSA certificate")
        key = public
        with _certificates_lock:
            _certificates[url] = key
    text = "".join(f"{name}\n{message[name]}\n" for name in fields if name in message and message[name] is not None)
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        key.verify(signature, text.encode(), padding.PKCS1v15(), hashes.SHA1() if version == "1" else hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        raise PermissionDeniedError("the SNS signature does not match the message") from None


def allowed_topic(settings: Settings, message: Mapping[str, Any]) -> None:
    topics = {t.strip() for t in (settings.ses_topic_arns or "").split(",") if t.strip()}
    if not topics:
        raise PermissionDeniedError("no SNS topics are accepted", hint="set OUTREACH_SES_TOPIC_ARNS to your SES "
                                    "notification topics' ARNs (comma-separated)")
    if message.get("TopicArn") not in topics:
        raise PermissionDeniedError(f"SNS topic {message.get('TopicArn')!r} is not in OUTREACH_SES_TOPIC_ARNS")


def subscribe_url(message: Mapping[str, Any]) -> str:
    return _sns_url(message.get("SubscribeURL"), "SubscribeURL")


def ses_events(message: Mapping[str, Any]) -> tuple[list[MailEvent], int]:
    """The SES notification inside an SNS ``Notification`` (notification or event publishing format)."""
    try:
        inner = orjson.loads(str(message.get("Message", "")))
    except orjson.JSONDecodeError:
        raise WebhookError("the SNS Message is not an SES notification (not JSON)") from None
    if not isinstance(inner, dict):
        raise WebhookError("the SNS Message is not an SES notification")
    kind = inner.get("notificationType") or inner.get("eventType")
    mail: dict[str, Any] = inner["mail"] if isinstance(inner.get("mail"), dict) else {}
    headers: dict[str, Any] = mail["commonHeaders"] if isinstance(mail.get("commonHeaders"), dict) else {}
    ids = _message_ids(headers.get("messageId"))
    base = f"ses:{message.get('MessageId')}"
    detail_base = {"ses_message_id": mail.get("messageId"), "notification": kind}
    events: list[MailEvent] = []
    if kind == "Bounce":
        bounce = inner.get("bounce") or {}
        hard = bounce.get("bounceType") == "Permanent"
        for recipient in bounce.get("bouncedRecipients") or []:
            events.append(MailEvent(
                kind="bounce" if hard else "soft_bounce", occurred_at=_when(bounce.get("timestamp")),
                external_id=f"{base}:{recipient.get('emailAddress')}", message_id=ids[0] if ids else None,
                email=recipient.get("emailAddress"),
                detail={**detail_base, "bounce_type": bounce.get("bounceType"),
                        "bounce_subtype": bounce.get("bounceSubType"), "status": recipient.get("status"),
                        "diagnostic": recipient.get("diagnosticCode")},
            ))
    elif kind == "Complaint":
        complaint = inner.get("complaint") or {}
        for recipient in complaint.get("complainedRecipients") or []:
            events.append(MailEvent(
                kind="complaint", occurred_at=_when(complaint.get("timestamp")),
                external_id=f"{base}:{recipient.get('emailAddress')}", message_id=ids[0] if ids else None,
                email=recipient.get("emailAddress"),
                detail={**detail_base, "feedback_type": complaint.get("complaintFeedbackType")},
            ))
    elif kind == "Delivery":
        delivery = inner.get("delivery") or {}
        for address in delivery.get("recipients") or []:
            events.append(MailEvent(
                kind="delivered", occurred_at=_when(delivery.get("timestamp")), external_id=f"{base}:{address}",
                message_id=ids[0] if ids else None, email=str(address), detail=detail_base,
            ))
    else:
        return [], 1
    return events, 0
