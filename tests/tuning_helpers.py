"""Helpers for the prompt-tuning tests: a private copy of the shipped prompts and a seeded review history."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from outreach import bundled, db
from outreach.review.queue import edit_stats
from outreach.review.storage import AccountRow, DraftRow, DraftVersionRow, ReviewActionRow

REPO = Path(__file__).resolve().parent.parent
PROMPTS = bundled.PROMPTS
EVAL_SET = bundled.EVAL_SET
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def copy_prompts(target: Path) -> Path:
    """The shipped prompts directory (working copies, history, registry) copied to ``target``."""
    shutil.copytree(PROMPTS, target, ignore=shutil.ignore_patterns(".registry.lock"))
    return target


@dataclass
class Seeded:
    """One draft of the seeded history: which template version wrote it and what the reviewer did."""

    version: str
    outcome: str  # approved | rejected | pending | sent
    edit: tuple[str, str] | None = None  # (find, replace) applied to the model body before the outcome
    reason: str | None = None
    note: str | None = None
    template: str = "upsell"


MODEL_BODY = ("Hi Dana,\n\nYour team hit the reports limit 3 times in the last 30 days (cap 10). Unlock premium "
              "features today. The Business plan has no cap on reports. It is $299 a month.\n\n"
              "Would a short call this week help?\n\nBest,\nSam")


def seed_history(url: str, drafts: list[Seeded]) -> sessionmaker[Session]:
    """Insert drafts with their versions, edits and outcomes straight into the queue tables (one account
    each), as a long-running queue would hold them. Returns a session factory."""
    engine = db.make_engine(url)
    factory = db.session_factory(engine)
    with db.transaction(factory) as session:
        for index, spec in enumerate(drafts):
            now = T0 + timedelta(hours=index)
            account = f"acct-{index:03d}"
            session.add(AccountRow(account_id=account, name=f"Account {index}", plan="team", owner_email=None,
                                   snapshot={}, updated_at=now))
            session.flush()
            status = {"approved": "approved", "rejected": "rejected", "pending": "pending_review",
                      "sent": "sent"}[spec.outcome]
            row = DraftRow(account_id=account, motion="upsell", trigger="repeated_limit_hits", status=status,
                           as_of=date(2026, 11, 1), health={}, gate={"allowed": True, "reasons": []}, decision={},
                           subject="Hitting the reports limit", reject_reason=spec.reason, reject_text=spec.note,
                           created_at=now, updated_at=now, current_version=1,
                           sent_at=now if spec.outcome == "sent" else None)
            row.versions.append(_version(1, "model", MODEL_BODY, spec, now))
            if spec.edit is not None:
                edited = MODEL_BODY.replace(*spec.edit)
                diff, distance = edit_stats(("Hitting the reports limit", MODEL_BODY, ""),
                                            ("Hitting the reports limit", edited, ""))
                version = _version(2, "edit", edited, spec, now)
                version.diff, version.edit_distance = diff, distance
                row.versions.append(version)
                row.current_version = 2
            session.add(row)
            session.flush()
            if spec.outcome == "rejected":
                session.add(ReviewActionRow(draft_id=row.id, actor="maya@ledgerly.example", action="reject",
                                            from_status="pending_review", to_status="rejected",
                                            reason_code=spec.reason, note=spec.note, created_at=now))
    return factory


def _version(number: int, source: str, body: str, spec: Seeded, now: datetime) -> DraftVersionRow:
    return DraftVersionRow(number=number, source=source, subject="Hitting the reports limit", body=body,
                           call_to_action="", friction_ids=[], offer_id="business", template_name=spec.template,
                           template_version=spec.version, template_hash=f"hash-{spec.template}-{spec.version}",
                           provider="offline", model="offline-jinja2", issues=[], created_at=now)
