"""Seeded outcome history for ``outreach demo``: six months of sends and outcomes so the metrics report and
the dashboard have something real to show on a first run.

``outreach/defaults/demo/outcomes.jsonl`` holds the outcomes (the same format ``outreach events ingest`` reads).
An outcome whose ``detail.demo_touch`` names a past send gets that send recreated in the database first — a
sent draft with its model version, approval, a completed enrollment, the outbox row and, when it says so, the
reply — so attribution finds it exactly as it would find a real send. Running it again adds nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from outreach import db
from outreach.application import Application, application_for
from outreach.errors import DataError
from outreach.metrics.outcomes import OutcomeEvent, ingest_outcomes
from outreach.settings import Settings

DEMO_ACTOR = "demo-history"


@dataclass(frozen=True)
class DemoHistory:
    outcomes: int
    sends: int

    def line(self) -> str:
        return f"{self.outcomes} outcomes and {self.sends} past sends loaded (six months of history)"


def read_outcomes(path: Path) -> list[OutcomeEvent]:
    """Parse an outcomes JSONL file; a bad line stops with the file, line and field."""
    from pydantic import ValidationError

    if not path.exists():
        raise DataError(path, "file not found")
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(OutcomeEvent.model_validate(json.loads(line)))
        except json.JSONDecodeError as error:
            raise DataError(path, f"not JSON: {error.msg}", line=number) from None
        except ValidationError as error:
            first = error.errors()[0]
            raise DataError(path, first["msg"], line=number,
                            field=".".join(str(p) for p in first["loc"]) or None) from None
    return events


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def _add_send(session: Session, event: OutcomeEvent, touch: dict[str, Any], accounts: dict[str, Any]) -> bool:
    from outreach.review.storage import AccountRow, DraftRow, DraftVersionRow, ReviewActionRow
    from outreach.sending.tables import EnrollmentRow, MailEventRow, OutboxRow

    key = f"demo-history:{event.key()}"
    if session.scalar(select(OutboxRow.id).where(OutboxRow.idempotency_key == key)) is not None:
        return False
    account = accounts.get(event.account_id)
    if account is None:
        raise DataError(Path("outcomes.jsonl"), f"account '{event.account_id}' is not in accounts.csv")
    if session.get(AccountRow, account.account_id) is None:
        session.add(AccountRow(account_id=account.account_id, name=account.name, plan=account.plan,
                               owner_email=account.owner_email, snapshot=account.model_dump(mode="json"),
                               updated_at=datetime.now(UTC)))
        session.flush()
    sent_on = date.fromisoformat(str(touch["sent_on"]))
    created, sent = _at(sent_on - timedelta(days=2), 9), _at(sent_on, 15)
    name, _, version = str(touch["template"]).partition("@")
    offer = {"id": touch["offer_id"], "kind": touch["offer_kind"], "motion": touch["motion"]}
    subject = f"{account.name}: {str(touch['trigger']).replace('_', ' ')}"
    body = f"(Seeded demo history: the {touch['motion']} email sent to {account.name} on {sent_on}.)"
    owner = str(touch.get("owner") or account.owner_email or "demo@outreach.example")
    draft = DraftRow(account_id=account.account_id, motion=str(touch["motion"]), trigger=str(touch["trigger"]),
                     status="sent", owner_email=owner, as_of=sent_on - timedelta(days=2),
                     offer_id=str(touch["offer_id"]), offer=offer, health={}, gate={}, decision={"demo_history": True},
                     subject=subject, sent_at=sent, created_at=created, updated_at=sent)
    session.add(draft)
    session.flush()
    session.add(DraftVersionRow(draft_id=draft.id, number=1, source="model", author=None, subject=subject, body=body,
                                friction_ids=[], offer_id=draft.offer_id, template_name=name,
                                template_version=version or None, provider="offline", model="offline", issues=[],
                                created_at=created))
    session.add(ReviewActionRow(draft_id=draft.id, actor=owner, action="approve", from_status="pending_review",
                                to_status="approved", draft_version=1, created_at=created + timedelta(hours=3)))
    recipient = account.champion_email or f"champion@{account.account_id}.example"
    enrollment = EnrollmentRow(sequence_id="demo", draft_id=draft.id, account_id=account.account_id,
                               motion=draft.motion, recipient=recipient, sender=owner, timezone="UTC",
                               offer_id=draft.offer_id, subject=subject, body=body, status="completed", step_index=1,
                               thread_references=[], enrolled_by=owner, enrolled_at=sent - timedelta(hours=1),
                               updated_at=sent, exit_reason="completed", exited_at=sent)
    session.add(enrollment)
    session.flush()
    message_id = f"<{key.replace(':', '-')}@outreach.example>"
    session.add(OutboxRow(idempotency_key=key, enrollment_id=enrollment.id, step_index=0, kind="email", state="sent",
                          account_id=account.account_id, sender=owner, recipient=recipient, subject=subject, body=body,
                          message_id=message_id, draft_id=draft.id, transport="outbox", due_at=sent, created_at=sent,
                          sent_at=sent))
    if touch.get("replied"):
        session.add(MailEventRow(external_id=f"{key}:reply", kind="reply", account_id=account.account_id,
                                 email=recipient, enrollment_id=enrollment.id, message_id=message_id, offer_id=None,
                                 detail={}, source="demo", occurred_at=sent + timedelta(days=2),
                                 recorded_at=sent + timedelta(days=2)))
    return True


def load_demo_history(application: Application | Settings, data_dir: Path, *, file_name: str = "outcomes.jsonl") -> DemoHistory:
    """Load ``<data_dir>/outcomes.jsonl`` and the past sends it names into the (migrated) database."""
    from outreach.engine.catalog import load_catalog
    from outreach.engine.data import load_accounts

    events = read_outcomes(data_dir / file_name)
    catalog = load_catalog(data_dir / "catalog.yaml")
    accounts = {a.account_id: a for a in load_accounts(data_dir / "accounts.csv", catalog)}
    with application_for(application) as app:
        factory = app.sessions
        sends = 0
        with db.transaction(factory) as session:
            for event in events:
                touch = event.detail.get("demo_touch")
                if isinstance(touch, dict):
                    sends += _add_send(session, event, touch, accounts)
        report = ingest_outcomes(factory, events, lambda: datetime.now(UTC), source="demo")
    return DemoHistory(outcomes=report.created, sends=sends)
