"""Notifications out: Slack, the CRM and an outbound webhook, through an outbox that never blocks a send.

Things happen in the pipeline - an account becomes ready (:mod:`outreach.integrations.reactor`), a rep approves a
draft, the scheduler sends an email or holds one, a recipient replies. Each becomes one ``notifications`` row per
configured channel that wants it, written *after* the action has committed: :func:`collect` reads the audit log
and mail events since its cursor, so the review queue and the scheduler need no hook and an outage on the other
side cannot roll anything back. :func:`deliver_pending` then sends each row, retried with tenacity (the one retry
layer: the SDKs' own retries are switched off) on connection errors, 429 (honouring ``Retry-After``) and 5xx;
a row that still fails is marked ``failed`` with the error, shown at ``/integrations`` and in ``outreach notify``,
and retried only when someone asks (``outreach notify --retry-failed`` or the page's button).

Which channel gets what (each only when configured, docs/integrations.md):

========== ===================================================================================
slack      ready (to the account owner), held, reply
hubspot    approved (a task on the company), sent (the email logged on the company; the task closed)
salesforce approved (a Task on the Account), sent (an Email-type Task logged; the first one closed)
webhook    everything, signed ``X-Outreach-Signature: sha256=HMAC(secret, "<timestamp>.<body>")``
========== ===================================================================================
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from outreach.application import Application
from outreach.engine.decisions import Decision
from outreach.integrations import crm, outbound, slack  # noqa: F401  (the built-in channels register themselves)
from outreach.integrations.channels import CHANNELS, Channel, DeliveryError
from outreach.integrations.tables import IntegrationCursorRow, NotificationRow
from outreach.review.storage import AccountRow, AuditRow, DraftRow
from outreach.sending.tables import EnrollmentRow, MailEventRow, OutboxRow
from outreach.settings import Settings

log = logging.getLogger(__name__)

_COLLECTOR = "notifications"
_OVERLAP = 500  # ids re-read each pass: a PostgreSQL transaction may commit a lower id after a higher one


def configured_channels(settings: Settings) -> dict[str, Channel]:
    """The channels this workspace has configured (the built-in ones registered when this module loaded)."""
    channels = {}
    for name, factory in CHANNELS.items():
        channel = factory(settings)
        if channel is not None:
            channels[name] = channel
    return channels


# ---------------------------------------------------------------------------------------------- enqueueing


def enqueue(
    session: Session,
    settings: Settings,
    kind: str,
    key: str,
    payload: Mapping[str, Any],
    now: datetime,
    *,
    account_id: str | None = None,
    draft_id: int | None = None,
    channels: Mapping[str, Channel] | None = None,
) -> int:
    """One pending row per configured channel that wants ``kind`` (none twice for the same ``key``)."""
    added = 0
    for name, channel in (channels if channels is not None else configured_channels(settings)).items():
        if kind not in channel.kinds:
            continue
        dedup = f"{name}:{kind}:{key}"[:300]
        if session.scalar(select(NotificationRow.id).where(NotificationRow.dedup_key == dedup)) is not None:
            continue
        session.add(NotificationRow(
            dedup_key=dedup, channel=name, kind=kind, account_id=account_id, draft_id=draft_id,
            payload=dict(payload), state="pending", attempts=0, created_at=now, updated_at=now,
        ))
        added += 1
    session.flush()
    return added


def draft_url(settings: Settings, draft_id: int | None) -> str | None:
    if draft_id is None:
        return None
    base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    return f"{base}/drafts/{draft_id}"


def enqueue_ready(session: Session, settings: Settings, decision: Decision, draft_id: int | None,
                  now: datetime) -> int:
    """An account became ready (the intake's reactor)."""
    account = decision.account
    friction = decision.primary_friction() or (decision.frictions[0] if decision.frictions else None)
    offer = decision.offer
    payload = {
        "account": _account(account.model_dump(mode="json")),
        "motion": friction.motion if friction else None,
        "friction": friction.statement if friction else None,
        "offer": {"id": offer.id, "name": offer.name, "price_monthly": offer.price_monthly} if offer else None,
        "draft_id": draft_id,
        "draft_url": draft_url(settings, draft_id),
        "as_of": decision.as_of.isoformat(),
    }
    return enqueue(session, settings, "ready", f"{account.account_id}:{decision.as_of}:{draft_id}", payload, now,
                   account_id=account.account_id, draft_id=draft_id)


def _account(snapshot: Mapping[str, Any] | None) -> dict[str, Any]:
    snapshot = snapshot or {}
    return {key: snapshot.get(key) for key in ("account_id", "name", "domain", "owner_email", "champion_email",
                                                "champion_name", "plan", "extra")}


# ---------------------------------------------------------------------------------------------- collecting


def collect(application: Application, now: datetime | None = None) -> int:
    """Queue notifications for approvals, sends, holds and replies committed since the last pass. The first pass
    only sets the cursor: configuring a channel does not replay history."""
    now = now or datetime.now(UTC)
    settings = application.settings
    channels = configured_channels(settings)
    with application.transaction() as session:
        cursor = session.get(IntegrationCursorRow, _COLLECTOR)
        newest_audit = int(session.scalar(select(func.max(AuditRow.id))) or 0)
        newest_mail = int(session.scalar(select(func.max(MailEventRow.id))) or 0)
        if cursor is None:
            session.add(IntegrationCursorRow(name=_COLLECTOR, value={"audit": newest_audit, "mail": newest_mail},
                                             updated_at=now))
            return 0
        if not channels:
            cursor.value, cursor.updated_at = {"audit": newest_audit, "mail": newest_mail}, now
            return 0
        audit_from = max(0, int(cursor.value.get("audit", 0)) - _OVERLAP)
        mail_from = max(0, int(cursor.value.get("mail", 0)) - _OVERLAP)
        added = 0
        for row in session.scalars(select(AuditRow).where(
            AuditRow.id > audit_from, AuditRow.id <= newest_audit,
            AuditRow.action.in_(("draft.approve", "draft.send", "enrollment.hold")),
        ).order_by(AuditRow.id)):
            added += _from_audit(session, settings, row, now, channels)
        for mail in session.scalars(select(MailEventRow).where(
            MailEventRow.id > mail_from, MailEventRow.id <= newest_mail, MailEventRow.kind == "reply",
        ).order_by(MailEventRow.id)):
            added += _from_reply(session, settings, mail, now, channels)
        cursor.value, cursor.updated_at = {"audit": newest_audit, "mail": newest_mail}, now
        return added


def _from_audit(session: Session, settings: Settings, row: AuditRow, now: datetime,
                channels: Mapping[str, Channel]) -> int:
    if row.action == "enrollment.hold":
        enrollment = session.get(EnrollmentRow, int(row.entity_id))
        if enrollment is None:
            return 0
        account = session.get(AccountRow, enrollment.account_id)
        payload = {
            "account": _account(account.snapshot if account else {"account_id": enrollment.account_id}),
            "enrollment_id": enrollment.id, "recipient": enrollment.recipient, "sequence": enrollment.sequence_id,
            "step": (row.after or {}).get("step"), "reason": (row.after or {}).get("reason"),
            "draft_id": enrollment.draft_id, "draft_url": draft_url(settings, enrollment.draft_id),
        }
        return enqueue(session, settings, "held", f"audit:{row.id}", payload, now,
                       account_id=enrollment.account_id, draft_id=enrollment.draft_id, channels=channels)
    draft = session.get(DraftRow, int(row.entity_id))
    if draft is None:
        return 0
    account = session.get(AccountRow, draft.account_id)
    version = next((v for v in draft.versions if v.number == draft.current_version), None)
    details: dict[str, Any] = {
        "account": _account(account.snapshot if account else {"account_id": draft.account_id}),
        "draft_id": draft.id, "draft_url": draft_url(settings, draft.id), "motion": draft.motion,
        "trigger": draft.trigger, "offer_id": draft.offer_id, "actor": row.actor, "at": row.at.isoformat(),
        "subject": version.subject if version else draft.subject, "body": version.body if version else "",
    }
    kind = "approved"
    if row.action == "draft.send":
        kind = "sent"
        outbox = session.scalar(select(OutboxRow).where(OutboxRow.draft_id == draft.id, OutboxRow.kind == "email",
                                                        OutboxRow.state == "sent").order_by(OutboxRow.id.desc()))
        if outbox is not None:
            details.update(subject=outbox.subject, body=outbox.body, sender=outbox.sender,
                           recipient=outbox.recipient, message_id=outbox.message_id,
                           sent_at=(outbox.sent_at or row.at).isoformat())
    return enqueue(session, settings, kind, f"draft:{draft.id}:{row.id}", details, now,
                   account_id=draft.account_id, draft_id=draft.id, channels=channels)


def _from_reply(session: Session, settings: Settings, mail: MailEventRow, now: datetime,
                channels: Mapping[str, Channel]) -> int:
    account = session.get(AccountRow, mail.account_id) if mail.account_id else None
    detail = mail.detail or {}
    snippet = str(detail.get("snippet") or detail.get("text") or detail.get("subject") or "")[:300]
    enrollment = session.get(EnrollmentRow, mail.enrollment_id) if mail.enrollment_id else None
    payload = {
        "account": _account(account.snapshot if account else {"account_id": mail.account_id}),
        "email": mail.email, "occurred_at": mail.occurred_at.isoformat(), "snippet": snippet,
        "enrollment_id": mail.enrollment_id, "draft_id": enrollment.draft_id if enrollment else None,
    }
    return enqueue(session, settings, "reply", f"mail:{mail.id}", payload, now, account_id=mail.account_id,
                   draft_id=enrollment.draft_id if enrollment else None, channels=channels)


# ---------------------------------------------------------------------------------------------- delivering


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    skipped: int = 0

    def line(self) -> str:
        return f"{self.delivered} delivered, {self.failed} failed, {self.skipped} skipped"


def _wait(state: RetryCallState) -> float:
    """Retry-After when the other side says; else 0.5 s, 1 s, 2 s, … up to 30 s."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, DeliveryError) and error.retry_after is not None:
        return float(min(max(error.retry_after, 0.0), 60.0))
    return float(min(0.5 * 2 ** (state.attempt_number - 1), 30.0))


def deliver_pending(
    application: Application,
    *,
    limit: int = 200,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> DeliveryReport:
    """Send pending notifications, oldest first, each in its own transaction."""
    settings = application.settings
    channels = configured_channels(settings)
    report = DeliveryReport()
    with application.sessions() as session:
        ids = list(session.scalars(select(NotificationRow.id).where(NotificationRow.state == "pending")
                                   .order_by(NotificationRow.id).limit(limit)))
    for notification_id in ids:
        with application.transaction() as session:
            row = session.get(NotificationRow, notification_id)
            if row is None or row.state != "pending":
                continue
            channel = channels.get(row.channel)
            if channel is None:
                row.state, row.last_error, row.updated_at = "skipped", f"{row.channel} is no longer configured", now()
                report.skipped += 1
                continue
            attempts = 0

            def attempt(channel: Channel = channel, row: NotificationRow = row) -> str | None:
                nonlocal attempts
                attempts += 1
                return channel.deliver(row, session)

            retrying = Retrying(
                stop=stop_after_attempt(settings.notify_attempts), wait=_wait, sleep=sleep, reraise=True,
                retry=retry_if_exception(lambda e: isinstance(e, DeliveryError) and e.transient),
            )
            try:
                external = retrying(attempt)
            except DeliveryError as error:
                row.state, row.last_error = "failed", str(error)[:2000]
                report.failed += 1
                log.warning("%s %s notification %s failed: %s", row.channel, row.kind, row.id, error)
            else:
                row.state, row.external_id, row.delivered_at, row.last_error = "done", external, now(), None
                report.delivered += 1
            row.attempts += attempts
            row.updated_at = now()
    return report


def retry_failed(application: Application, notification_id: int | None = None) -> int:
    """Put failed notifications (all, or one) back in the queue."""
    with application.transaction() as session:
        query = select(NotificationRow).where(NotificationRow.state == "failed")
        if notification_id is not None:
            query = query.where(NotificationRow.id == notification_id)
        rows = list(session.scalars(query))
        for row in rows:
            row.state, row.updated_at = "pending", datetime.now(UTC)
        return len(rows)


def notify_pass(application: Application, *, sleep: Callable[[float], None] = time.sleep) -> DeliveryReport:
    """Collect what happened since the last pass, then deliver (``outreach notify``; the server runs it too)."""
    collect(application)
    return deliver_pending(application, sleep=sleep)


def summary(session: Session) -> dict[str, int]:
    return {str(state): int(count) for state, count in session.execute(
        select(NotificationRow.state, func.count()).group_by(NotificationRow.state))}
