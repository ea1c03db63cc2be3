"""The sequence scheduler: enrolls approved drafts and carries out each step when it is due, crash-safely.

One pass (:meth:`Scheduler.tick`, ``outreach tick``; ``outreach worker`` loops it):

1. **Claim** due enrollments atomically (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number
   of workers share the load without two ever holding the same row; SQLite runs a single worker).
2. In that same transaction, **re-check** everything that can stop an email: a human reply, a bounce, an
   unsubscribe or the suppression list, a meeting or conversion, the health gate on fresh data (the data
   directory the enrollment came from, loaded once per pass; the per-account cooldown across motions is fed
   to the gate's ``last_contacted`` hook from the outbox), and whether the friction is still there. Then the
   send window in the recipient's timezone, sender caps and the global throttle, and staleness: a step more
   than ``send_stale_hours`` overdue (after an outage) is held for review rather than sent late.
3. **Outbox**: the claim commits an ``outbox`` row (state ``sending``, unique idempotency key per enrollment
   and step) before the message is handed to the transport, then a second transaction marks it ``sent``.
   After a crash the row says exactly which sends are in doubt: the outbox transport can tell whether the
   file was written (repaired either way, no duplicate, nothing lost); for SMTP the outcome is unknowable, so
   the step is held for a person instead of being retried blindly.

Every time comes from an injectable clock (:class:`FakeClock` in tests and the demo), so a month of sequence
time runs in milliseconds.
"""

from __future__ import annotations

import logging
import os
import socket
import time as _time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from outreach import db
from outreach.application import Application, application_for, as_application
from outreach.engine.catalog import Company
from outreach.engine.data import Dataset, load_dataset
from outreach.engine.decisions import Decision, decide, rules_for
from outreach.errors import ConfigError, ConflictError, NotFoundError, OutreachError
from outreach.review.queue import DraftInput, collect_evidence, enqueue, transition_draft
from outreach.review.storage import AccountRow, AuditRow, DraftRow, DraftVersionRow, UserRow
from outreach.sending.engagement import EXIT_REASONS, clicked, exit_event, replied
from outreach.sending.sequences import BranchStep, EmailStep, Sequence, TaskStep, WaitStep, Window, zone
from outreach.sending.suppression import is_suppressed, normalize, token_for
from outreach.sending.tables import EnrollmentRow, OutboxRow
from outreach.sending.transports import (
    OutgoingEmail,
    SendError,
    Transport,
    build_message,
    new_message_id,
    references_after,
    thread_subject,
)
from outreach.settings import Settings

logger = logging.getLogger(__name__)

SYSTEM = "scheduler"
REVIEW_RECHECK = timedelta(minutes=30)
THROTTLE_RETRY = timedelta(minutes=5)
MAX_STEPS_PER_CLAIM = 50  # a branch loop in a sequence file must not spin a worker forever
ExitReason = Literal[
    "replied", "meeting_booked", "converted", "unsubscribed", "hard_bounce", "health_gate", "manual_stop",
    "friction_resolved", "branch", "followup_rejected", "review_rejected", "suppressed",
]
OutcomeKind = Literal["sent", "task", "held", "exited", "deferred", "waiting_review", "completed", "recovered"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class FakeClock:
    """A clock tests and the demo move by hand: ``clock()`` is now, ``advance``/``set`` move it."""

    def __init__(self, start: datetime) -> None:
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def set(self, when: datetime) -> None:
        self.now = max(self.now, when.astimezone(UTC))


class StepOutcome(BaseModel):
    """What one pass did with one enrollment, and why."""

    enrollment_id: int
    account_id: str
    sequence_id: str
    step: int
    kind: OutcomeKind
    reason: str = ""
    at: datetime


class TickReport(BaseModel):
    outcomes: list[StepOutcome] = []

    def count(self, kind: OutcomeKind) -> int:
        return sum(1 for o in self.outcomes if o.kind == kind)

    def line(self) -> str:
        kinds: tuple[OutcomeKind, ...] = ("sent", "task", "held", "exited", "deferred", "waiting_review",
                                          "completed", "recovered")
        return ", ".join(f"{self.count(k)} {k.replace('_', ' ')}" for k in kinds)


class FollowupWriter(Protocol):
    def __call__(self, decision: Decision, dataset: Dataset, template: str, previous_subject: str) -> DraftInput:
        """Write a follow-up email for ``decision`` with the named followup template."""


class DraftingFollowups:
    """Follow-ups through the drafting library: the named ``followup`` template, the refreshed facts of a
    fresh decision, the validators; the configured provider (offline unless an LLM is configured)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, decision: Decision, dataset: Dataset, template: str, previous_subject: str) -> DraftInput:
        from outreach.drafting.config import load_drafting_config
        from outreach.drafting.drafts import DraftingContext, run_drafts
        from outreach.drafting.providers import get_provider
        from outreach.drafting.registry import load_templates
        from outreach.review.redraft import draft_input

        templates = load_templates(self.settings.prompts_dir)
        if template not in templates:
            raise ConfigError(f"prompt template '{template}' not found for a follow-up")
        config = load_drafting_config(dataset.root / "drafting.yaml")
        context = DraftingContext.from_dataset(dataset, {template: templates[template]}, config)
        provider = get_provider(self.settings.provider, self.settings, config)
        records, _ = run_drafts([decision], context, provider, kind="followup")
        if not records:
            raise OutreachError(f"account '{decision.account_id}' could not be drafted (cohort {decision.cohort})")
        return draft_input(records[0])


@dataclass
class _Prepared:
    enrollment_id: int
    outbox_id: int
    key: str
    email: OutgoingEmail
    draft_id: int | None


@dataclass
class _Pass:
    """Per-pass caches: each data directory is loaded once per pass, each account decided once per
    (cooldown date) — fresh for the pass, cheap per send."""

    datasets: dict[str, Dataset] = field(default_factory=dict)
    decisions: dict[tuple[str, str, date | None, date], Decision | None] = field(default_factory=dict)


def idempotency_key(enrollment_id: int, step: int) -> str:
    return f"enr{enrollment_id}-step{step}"


class Scheduler:
    """Enrollment and the pass over due steps. One instance per worker; safe to run several on PostgreSQL."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        sequences: dict[str, Sequence],
        transport: Transport,
        *,
        clock: Callable[[], datetime] = utcnow,
        followups: FollowupWriter | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.sequences = sequences
        self.transport = transport
        self.clock = clock
        self.followups: FollowupWriter = followups or DraftingFollowups(settings)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        bind = factory.kw.get("bind")
        self.postgres = bind is not None and bind.dialect.name == "postgresql"
        self._pass = _Pass()

    # ------------------------------------------------------------------------------------------ enrollment

    def enroll(self, draft_id: int, *, actor: str, data_dir: Path, sequence_id: str | None = None) -> EnrollmentRow:
        """Enroll an approved draft: it becomes ``scheduled`` and its first email is due now (the window
        decides when it actually goes). The approved text is copied so what goes out is what was approved."""
        from outreach.sending.sequences import for_motion

        now = self.clock()
        with db.transaction(self.factory) as session:
            draft = session.get(DraftRow, draft_id)
            if draft is None:
                raise NotFoundError(f"draft {draft_id} does not exist")
            if draft.status != "approved":
                raise ConflictError(f"draft {draft_id} is {draft.status.replace('_', ' ')}; only approved drafts "
                                    "can be enrolled")
            seq = self.sequences.get(sequence_id) if sequence_id else for_motion(self.sequences, draft.motion)
            if seq is None:
                raise NotFoundError(f"no sequence '{sequence_id}'", hint=f"known: {', '.join(sorted(self.sequences))}")
            account = session.get(AccountRow, draft.account_id)
            snapshot = account.snapshot if account is not None else {}
            recipient = snapshot.get("champion_email")
            if not recipient:
                raise ConflictError(f"account '{draft.account_id}' has no champion_email to write to",
                                    hint="add champion_email to accounts.csv")
            sender = draft.owner_email or self.settings.mail_sender
            if not sender:
                raise ConfigError(f"draft {draft_id} has no owner and OUTREACH_MAIL_SENDER is not set")
            version = session.scalar(select(DraftVersionRow).where(
                DraftVersionRow.draft_id == draft.id, DraftVersionRow.number == draft.current_version))
            assert version is not None
            tz = snapshot.get("timezone") or self.settings.default_timezone
            zone(tz)
            row = EnrollmentRow(
                sequence_id=seq.id, draft_id=draft.id, account_id=draft.account_id, motion=draft.motion,
                data_dir=str(Path(data_dir).resolve()), recipient=normalize(recipient),
                recipient_name=snapshot.get("champion_name"), sender=normalize(sender), timezone=tz,
                friction_id=(draft.offer or {}).get("friction"), offer_id=draft.offer_id,
                subject=version.subject, body=version.body, status="active",
                step_index=0, next_due_at=now, thread_references=[], enrolled_by=actor, enrolled_at=now,
                updated_at=now,
            )
            session.add(row)
            transition_draft(session, draft, "scheduled", actor, now, action="schedule",
                             note=f"enrolled in sequence {seq.id}")
            draft.scheduled_for = now
            session.flush()
            session.add(AuditRow(at=now, actor=actor, action="enrollment.create", entity="enrollment",
                                 entity_id=str(row.id), before=None,
                                 after={"draft_id": draft.id, "sequence": seq.id, "recipient": row.recipient}))
            return row

    def stop(self, enrollment_id: int, *, actor: str, note: str = "") -> None:
        """Manual stop: takes effect at once (a send already handed to the transport cannot be recalled)."""
        with db.transaction(self.factory) as session:
            row = self._lock(session, enrollment_id)
            if row.status in ("completed", "exited"):
                raise ConflictError(f"enrollment {enrollment_id} already {row.status}")
            self._exit(session, row, "manual_stop", note or f"stopped by {actor}", self.clock(), actor=actor)

    def release(self, enrollment_id: int, *, actor: str, was_sent: bool | None = None) -> None:
        """Resume a held enrollment after a person checked it. For a send whose outcome was unknown, say
        whether it went out (``was_sent``): True records it as sent, False allows sending it again."""
        now = self.clock()
        with db.transaction(self.factory) as session:
            row = self._lock(session, enrollment_id)
            if row.status != "held":
                raise ConflictError(f"enrollment {enrollment_id} is {row.status}, not held")
            doubtful = session.scalar(select(OutboxRow).where(
                OutboxRow.idempotency_key == idempotency_key(row.id, row.step_index), OutboxRow.state == "held"))
            if doubtful is not None:
                if was_sent is None:
                    raise ConflictError(f"enrollment {enrollment_id}'s last send has an unknown outcome",
                                        hint="check the mailbox, then release with --sent or --not-sent")
                if was_sent:
                    doubtful.state = "sent"
                    doubtful.sent_at = doubtful.created_at
                    self._advance_after_send(session, row, doubtful, doubtful.created_at)
                else:
                    session.delete(doubtful)
            row.status = "active"
            row.hold_reason = None
            row.next_due_at = now
            row.updated_at = now
            session.add(AuditRow(at=now, actor=actor, action="enrollment.release", entity="enrollment",
                                 entity_id=str(row.id), before=None, after={"was_sent": was_sent}))

    # ------------------------------------------------------------------------------------------ the pass

    def tick(self, *, recover_all: bool = False) -> TickReport:
        """One pass: recover crashed sends, then claim and run every due step, batch by batch."""
        self._pass = _Pass()
        report = TickReport(outcomes=self.recover(all_in_flight=recover_all))
        while True:
            prepared, outcomes = self._claim_batch()
            report.outcomes.extend(outcomes)
            for item in prepared:
                report.outcomes.append(self._send(item))
            if not prepared and not outcomes:
                if report.outcomes:
                    logger.info("scheduler pass: %s", report.line())
                return report

    def run_until(self, end: datetime, clock: FakeClock) -> TickReport:
        """Advance a fake clock from due time to due time until ``end``, running a pass at each: a month
        of sequence time in milliseconds."""
        report = TickReport()
        while True:
            report.outcomes.extend(self.tick().outcomes)
            with self.factory() as session:
                due = session.scalar(select(func.min(EnrollmentRow.next_due_at)).where(
                    EnrollmentRow.status.in_(("active", "waiting_review"))))
            if due is None or due > end:
                clock.set(end)
                return report
            clock.set(due)

    def worker(self, *, interval: float | None = None, passes: int | None = None,
               should_stop: Callable[[], bool] = lambda: False) -> Iterator[TickReport]:
        """Loop passes (``outreach worker``), pausing ``interval`` seconds when there was nothing to do."""
        done = 0
        pause = interval if interval is not None else self.settings.worker_interval_seconds
        while not should_stop() and (passes is None or done < passes):
            report = self.tick()
            done += 1
            yield report
            if not report.outcomes:
                _time.sleep(pause)

    # ------------------------------------------------------------------------------------------ recovery

    def recover(self, *, all_in_flight: bool = False) -> list[StepOutcome]:
        """Resolve sends left ``sending`` by a crashed worker (older than the lease, or all of them when this
        is known to be the only worker): confirmed → sent, certainly not sent → due again, unknown → held."""
        now = self.clock()
        lease = timedelta(seconds=0 if all_in_flight else self.settings.worker_lease_seconds)
        outcomes = []
        with db.transaction(self.factory) as session:
            query = select(EnrollmentRow).where(EnrollmentRow.status == "sending",
                                                EnrollmentRow.claimed_at <= now - lease)
            if self.postgres:
                query = query.with_for_update(skip_locked=True)
            for row in session.scalars(query).all():
                key = idempotency_key(row.id, row.step_index)
                outbox = session.scalar(select(OutboxRow).where(OutboxRow.idempotency_key == key))
                if outbox is None:  # pragma: no cover - the claim commits both together
                    row.status = "active"
                    continue
                delivered = self.transport.delivered(key)
                if delivered is True:
                    outbox.state, outbox.sent_at, outbox.transport = "sent", now, self.transport.name
                    self._advance_after_send(session, row, outbox, now)
                    outcomes.append(self._outcome(row, "recovered", "found delivered after a crash; marked sent"))
                elif delivered is False:
                    session.delete(outbox)
                    row.status, row.next_due_at, row.updated_at = "active", now, now
                    outcomes.append(self._outcome(row, "recovered", "not handed over before a crash; due again"))
                else:
                    outbox.state = "held"
                    outbox.detail = "outcome unknown: handed to SMTP, the worker stopped before recording it"
                    row.status, row.hold_reason, row.updated_at = "held", outbox.detail, now
                    outcomes.append(self._outcome(row, "held", outbox.detail))
        return outcomes

    # ------------------------------------------------------------------------------------------ claiming

    def _claim_batch(self) -> tuple[list[_Prepared], list[StepOutcome]]:
        now = self.clock()
        prepared: list[_Prepared] = []
        outcomes: list[StepOutcome] = []
        with db.transaction(self.factory) as session:
            query = (
                select(EnrollmentRow)
                .where(EnrollmentRow.status.in_(("active", "waiting_review")), EnrollmentRow.next_due_at <= now)
                .order_by(EnrollmentRow.next_due_at, EnrollmentRow.id)
                .limit(self.settings.worker_batch_size)
            )
            if self.postgres:
                query = query.with_for_update(skip_locked=True)
            for row in session.scalars(query).all():
                result = self._run(session, row, now)
                if isinstance(result, _Prepared):
                    prepared.append(result)
                else:
                    outcomes.append(result)
        return prepared, outcomes

    def _lock(self, session: Session, enrollment_id: int) -> EnrollmentRow:
        query = select(EnrollmentRow).where(EnrollmentRow.id == enrollment_id)
        if self.postgres:
            query = query.with_for_update()
        row = session.scalar(query)
        if row is None:
            raise NotFoundError(f"enrollment {enrollment_id} does not exist")
        return row

    def _outcome(self, row: EnrollmentRow, kind: OutcomeKind, reason: str = "") -> StepOutcome:
        return StepOutcome(enrollment_id=row.id, account_id=row.account_id, sequence_id=row.sequence_id,
                           step=row.step_index, kind=kind, reason=reason, at=self.clock())

    def _run(self, session: Session, row: EnrollmentRow, now: datetime) -> _Prepared | StepOutcome:
        """Run an enrollment's steps from its current one until it must wait, send, or stops."""
        seq = self.sequences.get(row.sequence_id)
        if seq is None:
            return self._hold(session, row, f"sequence '{row.sequence_id}' is no longer defined", now)
        for _ in range(MAX_STEPS_PER_CLAIM):
            if row.step_index >= len(seq.steps):
                row.status, row.next_due_at, row.updated_at = "completed", None, now
                return self._outcome(row, "completed", "all steps done")
            stopped = self._cheap_exit(session, row, now)
            if stopped is not None:
                return stopped
            step = seq.steps[row.step_index]
            if isinstance(step, WaitStep):
                row.step_index += 1
                row.next_due_at = step.duration.after(now, zone(row.timezone))
                row.updated_at = now
                return self._outcome(row, "deferred", f"waiting {step.duration}")
            if isinstance(step, BranchStep):
                decision = self._decision(session, row, now)
                taken = self._condition(session, row, step.condition, decision)
                target = step.then if taken else step.otherwise
                if target == "exit":
                    reason: ExitReason = {"friction_resolved": "friction_resolved", "replied": "replied"}.get(
                        step.condition, "branch")  # type: ignore[assignment]
                    return self._exit(session, row, reason, f"branch '{step.condition}' → exit", now)
                row.step_index = seq.step_index(target) if target else row.step_index + 1
                continue
            if isinstance(step, TaskStep):
                result = self._gate_exit(session, row, now)
                if result is not None:
                    return result
                session.add(OutboxRow(
                    idempotency_key=idempotency_key(row.id, row.step_index), enrollment_id=row.id,
                    step_index=row.step_index, kind="task", state="open", account_id=row.account_id,
                    sender=row.sender, recipient=row.recipient, subject=step.title, body=step.title,
                    due_at=row.next_due_at or now, created_at=now))
                outcome = self._outcome(row, "task", step.title)
                row.step_index += 1
                row.updated_at = now
                return outcome
            assert isinstance(step, EmailStep)
            return self._email(session, row, seq, step, now)
        return self._hold(session, row, "too many branch jumps in one pass (a loop in the sequence?)", now)

    # ------------------------------------------------------------------------------------------ checks

    def _cheap_exit(self, session: Session, row: EnrollmentRow, now: datetime) -> StepOutcome | None:
        event = exit_event(session, row)
        if event is not None:
            detail = f"{event.kind} at {event.occurred_at:%Y-%m-%d %H:%M} UTC"
            if event.kind == "conversion" and event.offer_id:
                detail += f" (bought {event.offer_id})"
            return self._exit(session, row, EXIT_REASONS[event.kind], detail, now)  # type: ignore[arg-type]
        suppressed = is_suppressed(session, row.recipient)
        if suppressed is not None:
            reason: ExitReason = {"unsubscribe": "unsubscribed", "hard_bounce": "hard_bounce"}.get(
                suppressed.reason, "suppressed")  # type: ignore[assignment]
            return self._exit(session, row, reason, f"{row.recipient} is on the suppression list "
                              f"({suppressed.reason})", now)
        return None

    def _gate_exit(self, session: Session, row: EnrollmentRow, now: datetime) -> StepOutcome | None:
        decision = self._decision(session, row, now)
        if decision is None:
            return self._exit(session, row, "health_gate", "the account is no longer in the data", now)
        if not decision.gate.allowed:
            reasons = "; ".join(f"{r.rule}: {r.message}" for r in decision.gate.reasons)
            return self._exit(session, row, "health_gate", reasons, now)
        if row.friction_id and row.friction_id not in {f.id for f in decision.frictions}:
            return self._exit(session, row, "friction_resolved",
                              f"'{row.friction_id}' no longer shows in the data (upgraded or resolved)", now)
        return None

    def _condition(self, session: Session, row: EnrollmentRow, condition: str, decision: Decision | None) -> bool:
        negate = condition.startswith("not ")
        name = condition.removeprefix("not ").strip()
        if name == "replied":
            value = replied(session, row)
        elif name == "opened_link":
            value = clicked(session, row)
        elif name == "friction_resolved":
            value = decision is None or (row.friction_id is not None
                                         and row.friction_id not in {f.id for f in decision.frictions})
        else:
            value = row.motion == name.partition(":")[2].strip()
        return value != negate

    def last_contacted(self, session: Session, row: EnrollmentRow) -> date | None:
        """The account's latest expansion email from any *other* enrollment (any motion): the cooldown."""
        latest = session.scalar(select(func.max(func.coalesce(OutboxRow.sent_at, OutboxRow.created_at))).where(
            OutboxRow.account_id == row.account_id, OutboxRow.kind == "email",
            OutboxRow.state.in_(("sending", "sent", "held")), OutboxRow.enrollment_id != row.id))
        return latest.astimezone(UTC).date() if latest is not None else None

    def _dataset(self, data_dir: str) -> Dataset:
        if data_dir not in self._pass.datasets:
            from outreach.engine.store import EventStore

            bind = self.factory.kw.get("bind")
            store = EventStore.open(self.settings, (lambda: bind) if bind is not None else None)
            self._pass.datasets[data_dir] = load_dataset(data_dir, events=store)
        return self._pass.datasets[data_dir]

    def _decision(self, session: Session, row: EnrollmentRow, now: datetime) -> Decision | None:
        """A fresh decision for the account (gate, frictions), cached for this pass per cooldown date."""
        if not row.data_dir:
            raise ConfigError(f"enrollment {row.id} has no data directory to re-check the gate against")
        contacted = self.last_contacted(session, row)
        as_of = now.astimezone(UTC).date()
        key = (row.data_dir, row.account_id, contacted, as_of)
        if key not in self._pass.decisions:
            dataset = self._dataset(row.data_dir)
            if row.account_id not in {a.account_id for a in dataset.accounts}:
                self._pass.decisions[key] = None
            else:
                found = decide(dataset, rules_for(dataset, self.settings.rules_path), as_of,
                               last_contacted={row.account_id: contacted} if contacted else None,
                               account_ids={row.account_id})
                self._pass.decisions[key] = found[0]
        return self._pass.decisions[key]

    # ------------------------------------------------------------------------------------------ email steps

    def _email(self, session: Session, row: EnrollmentRow, seq: Sequence, step: EmailStep,
               now: datetime) -> _Prepared | StepOutcome:
        first = row.step_index == seq.first_email_index()
        gated = self._gate_exit(session, row, now)
        if gated is not None:
            return gated
        ready = self._first_touch(session, row, now) if first else self._followup(session, row, seq, step, now)
        if isinstance(ready, StepOutcome):
            return ready
        subject, body, draft_id = ready
        # Staleness before the window: a window that is closed when the worker comes back would otherwise
        # move the due time forward and hide how late the step is.
        overdue = now - (row.next_due_at or now)
        if overdue > timedelta(hours=self.settings.send_stale_hours):
            return self._back_to_review(session, row, draft_id, overdue, now)
        tz = zone(row.timezone)
        if not seq.window.contains(now, tz):
            row.next_due_at, row.updated_at = seq.window.next_open(now, tz), now
            row.status = "active"
            return self._outcome(row, "deferred", f"outside the send window ({seq.window.describe()})")
        capped = self._capped(session, row, seq.window, now)
        if capped is not None:
            return capped
        return self._prepare(session, row, subject, body, draft_id, first, now)

    def _first_touch(self, session: Session, row: EnrollmentRow,
                     now: datetime) -> tuple[str, str, int | None] | StepOutcome:
        """The approved first email. Normally the text copied at enrollment; after a stale step sent the draft
        back to review, it waits for the new review and then sends the version approved then."""
        draft = session.get(DraftRow, row.draft_id) if row.draft_id is not None else None
        if draft is None or draft.status == "scheduled":
            return row.subject, row.body, row.draft_id
        if draft.status == "pending_review":
            row.status, row.next_due_at, row.updated_at = "waiting_review", now + REVIEW_RECHECK, now
            return self._outcome(row, "waiting_review", f"draft {draft.id} waits for review")
        if draft.status != "approved":
            return self._exit(session, row, "review_rejected", f"draft {draft.id} was {draft.status} in review", now)
        version = session.scalar(select(DraftVersionRow).where(
            DraftVersionRow.draft_id == draft.id, DraftVersionRow.number == draft.current_version))
        assert version is not None
        row.subject, row.body, row.status = version.subject, version.body, "active"
        return version.subject, version.body, draft.id

    def _back_to_review(self, session: Session, row: EnrollmentRow, draft_id: int | None, overdue: timedelta,
                        now: datetime) -> StepOutcome:
        """A step found more than ``send_stale_hours`` late (an outage): its draft goes back to the review
        queue (``scheduled → pending_review``) and the enrollment is held until someone releases it."""
        reason = (f"overdue by {overdue.total_seconds() / 3600:.0f} h (after an outage?); back to review "
                  "instead of sending it late")
        draft = session.get(DraftRow, draft_id) if draft_id is not None else None
        if draft is not None and draft.status == "approved":  # an approved follow-up not yet scheduled
            transition_draft(session, draft, "scheduled", SYSTEM, now, action="schedule",
                             note=f"sequence {row.sequence_id} step {row.step_index}")
        if draft is not None and draft.status == "scheduled":
            transition_draft(session, draft, "pending_review", SYSTEM, now, action="return_to_review", note=reason)
            draft.scheduled_for = None
            reason += f"; draft {draft.id} is pending review again (release the enrollment after re-approving)"
        return self._hold(session, row, reason, now)

    def _earned_approval(self, session: Session, draft_id: int) -> str | None:
        """A follow-up written by a template version that earned auto-approval from reviewers (prompt
        registry ``auto_approve``, off by default) skips review; the verdict is re-computed every time, so a
        version loses it as soon as its rejection rate or edit distance rises."""
        from outreach.drafting.registry import Registry
        from outreach.review.feedback import auto_approval

        first = session.scalar(select(DraftVersionRow).where(
            DraftVersionRow.draft_id == draft_id, DraftVersionRow.number == 1))
        if first is None or not first.template_name or first.template_version is None:
            return None
        registry = Registry.open(self.settings.prompts_dir)
        policy = registry.data.auto_approve
        if not policy.enabled:
            return None
        verdict = auto_approval(self.factory, first.template_name, str(first.template_version), policy)
        if not verdict.eligible:
            return None
        return f"auto-approved: {first.template_name} v{first.template_version} earned it ({verdict.reason})"

    def _followup(self, session: Session, row: EnrollmentRow, seq: Sequence, step: EmailStep,
                  now: datetime) -> tuple[str, str, int | None] | StepOutcome:
        """The follow-up's text once it is approved: draft it on first reach (pending review unless the
        sequence auto-sends), then wait for the review."""
        if row.pending_draft_id is None:
            decision = self._decision(session, row, now)
            assert decision is not None and step.prompt is not None  # checked by _gate_exit / the loader
            dataset = self._dataset(row.data_dir or "")
            draft = self.followups(decision, dataset, step.prompt, row.thread_subject or row.subject)
            result = enqueue(session, decision, draft, evidence=collect_evidence(dataset, decision),
                             catalog=dataset.catalog, now=now)
            if result.draft_id is None:
                return self._hold(session, row, f"follow-up could not be queued: {result.reason}", now)
            row.pending_draft_id = result.draft_id
            pending = session.get(DraftRow, result.draft_id)
            assert pending is not None
            if pending.status == "pending_review" and pending.quality == "ok":
                note = f"auto_send in sequence {seq.id}" if seq.auto_sends(step) else self._earned_approval(
                    session, pending.id)
                if note is not None:
                    transition_draft(session, pending, "approved", SYSTEM, now, action="approve", note=note)
        pending = session.get(DraftRow, row.pending_draft_id)
        if pending is None or pending.status in ("rejected", "expired"):
            state = pending.status if pending is not None else "deleted"
            return self._exit(session, row, "followup_rejected", f"follow-up draft {row.pending_draft_id} was "
                              f"{state}", now)
        if pending.status == "pending_review":
            row.status, row.next_due_at, row.updated_at = "waiting_review", now + REVIEW_RECHECK, now
            return self._outcome(row, "waiting_review", f"follow-up draft {pending.id} waits for review")
        row.status = "active"
        version = session.scalar(select(DraftVersionRow).where(
            DraftVersionRow.draft_id == pending.id, DraftVersionRow.number == pending.current_version))
        assert version is not None
        return version.subject, version.body, pending.id

    def _capped(self, session: Session, row: EnrollmentRow, window: Window,
                now: datetime) -> StepOutcome | None:
        day_start = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
        sent_today = session.scalar(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.kind == "email", OutboxRow.sender == row.sender, OutboxRow.created_at >= day_start,
            OutboxRow.state.in_(("sending", "sent", "held")))) or 0
        zone_info = zone(row.timezone)
        if sent_today >= self.settings.send_daily_cap_per_sender:
            row.next_due_at = window.next_open(day_start + timedelta(days=1), zone_info)
            row.updated_at = now
            return self._outcome(row, "deferred", f"{row.sender} reached the daily cap "
                                 f"({self.settings.send_daily_cap_per_sender})")
        last_hour = session.scalar(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.kind == "email", OutboxRow.created_at > now - timedelta(hours=1),
            OutboxRow.state.in_(("sending", "sent", "held")))) or 0
        if last_hour >= self.settings.send_hourly_cap:
            row.next_due_at = window.next_open(now + THROTTLE_RETRY, zone_info)
            row.updated_at = now
            return self._outcome(row, "deferred", f"global throttle ({self.settings.send_hourly_cap}/hour)")
        return None

    def company(self, row: EnrollmentRow) -> Company:
        return self._dataset(row.data_dir or "").catalog.company

    def _prepare(self, session: Session, row: EnrollmentRow, subject: str, body: str, draft_id: int | None,
                 first: bool, now: datetime) -> _Prepared | StepOutcome:
        key = idempotency_key(row.id, row.step_index)
        company = self.company(row)
        list_id = f"{row.sequence_id}.{company.domains[0] if company.domains else 'outreach'}"
        token = token_for(session, row.recipient, list_id, now)
        base = (self.settings.public_url.rstrip("/") + "/unsubscribe") if self.settings.public_url \
            else company.unsubscribe_url.rstrip("/")
        mailto = self.settings.unsubscribe_mailto or f"unsubscribe@{row.sender.rpartition('@')[2]}"
        message_id = new_message_id(row.sender)
        if not first:
            subject = thread_subject(row.thread_subject or row.subject)
        # From the account's owner by name (the users table), as the draft is signed; else the catalog's sender.
        owner_name = session.scalar(select(UserRow.name).where(UserRow.email == row.sender))
        email = OutgoingEmail(
            idempotency_key=key, message_id=message_id, sender=row.sender,
            sender_name=owner_name or (company.sender_name if row.sender == normalize(company.sender_email) else None),
            recipient=row.recipient, recipient_name=row.recipient_name, subject=subject, body=body, date=now,
            in_reply_to=row.last_message_id, references=tuple(row.thread_references or ()),
            unsubscribe_https=f"{base}/{token}", unsubscribe_mailto=f"mailto:{mailto}?subject=unsubscribe%20{token}",
            postal_address=company.postal_address, company=company.name, list_id=list_id,
        )
        outbox = OutboxRow(
            idempotency_key=key, enrollment_id=row.id, step_index=row.step_index, kind="email", state="sending",
            account_id=row.account_id, sender=row.sender, recipient=row.recipient, subject=subject, body=body,
            message_id=message_id, draft_id=draft_id, due_at=row.next_due_at or now, created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(outbox)
                session.flush()
        except IntegrityError:
            # The unique key says this step already has an outbox row: never send it a second time.
            return self._hold(session, row, f"step {row.step_index} already has an outbox entry ({key})", now)
        if draft_id is not None:
            draft = session.get(DraftRow, draft_id)
            if draft is not None and draft.status == "approved":
                transition_draft(session, draft, "scheduled", SYSTEM, now, action="schedule",
                                 note=f"sequence {row.sequence_id} step {row.step_index}")
                draft.scheduled_for = now
        row.status, row.claimed_at, row.claimed_by, row.updated_at = "sending", now, self.worker_id, now
        return _Prepared(enrollment_id=row.id, outbox_id=outbox.id, key=key, email=email, draft_id=draft_id)

    def _send(self, item: _Prepared) -> StepOutcome:
        """Hand one prepared message to the transport, then record the result in a second transaction."""
        error: str | None = None
        certain_failure = False
        try:
            self.transport.send(item.key, build_message(item.email))
        except SendError as refused:
            error, certain_failure = refused.message, True
        except Exception as unknown:  # a timeout mid-DATA: the server may or may not have the message
            error = f"outcome unknown: {type(unknown).__name__}: {unknown}"
        now = self.clock()
        with db.transaction(self.factory) as session:
            row = self._lock(session, item.enrollment_id)
            outbox = session.get(OutboxRow, item.outbox_id)
            assert outbox is not None
            if error is None:
                outbox.state, outbox.sent_at, outbox.transport = "sent", now, self.transport.name
                self._advance_after_send(session, row, outbox, now)
                return self._outcome(row, "sent", f"{outbox.subject} → {row.recipient}")
            outbox.state, outbox.detail = ("failed" if certain_failure else "held"), error
            return self._hold(session, row, error, now)

    def _advance_after_send(self, session: Session, row: EnrollmentRow, outbox: OutboxRow, now: datetime) -> None:
        if outbox.draft_id is not None:
            draft = session.get(DraftRow, outbox.draft_id)
            if draft is not None and draft.status == "scheduled":
                transition_draft(session, draft, "sent", SYSTEM, now, action="send", note=outbox.message_id)
                draft.sent_at = outbox.sent_at or now
        if row.thread_subject is None:
            row.thread_subject = outbox.subject
        row.thread_references = list(references_after(row.thread_references or [], outbox.message_id))
        row.last_message_id = outbox.message_id
        row.pending_draft_id = None
        row.status, row.step_index, row.next_due_at, row.updated_at = "active", outbox.step_index + 1, now, now

    # ------------------------------------------------------------------------------------------ endings

    def _hold(self, session: Session, row: EnrollmentRow, reason: str, now: datetime) -> StepOutcome:
        row.status, row.hold_reason, row.next_due_at, row.updated_at = "held", reason, None, now
        session.add(AuditRow(at=now, actor=SYSTEM, action="enrollment.hold", entity="enrollment",
                             entity_id=str(row.id), before=None, after={"step": row.step_index, "reason": reason}))
        return self._outcome(row, "held", reason)

    def _exit(self, session: Session, row: EnrollmentRow, reason: ExitReason, detail: str, now: datetime, *,
              actor: str = SYSTEM) -> StepOutcome:
        row.status, row.exit_reason, row.exit_detail = "exited", reason, detail
        row.exited_at, row.next_due_at, row.updated_at = now, None, now
        for draft_id in (row.draft_id, row.pending_draft_id):
            draft = session.get(DraftRow, draft_id) if draft_id is not None else None
            if draft is not None and draft.status in ("pending_review", "approved", "scheduled"):
                transition_draft(session, draft, "expired", actor, now, action="expire",
                                 note=f"sequence exited: {reason}")
                draft.expired_reason = f"sequence exited: {reason}: {detail}"
        session.add(AuditRow(at=now, actor=actor, action="enrollment.exit", entity="enrollment",
                             entity_id=str(row.id), before=None,
                             after={"step": row.step_index, "reason": reason, "detail": detail}))
        return self._outcome(row, "exited", f"{reason}: {detail}")


def build_scheduler(
    application: Application | Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    transport: Transport | None = None,
    followups: FollowupWriter | None = None,
    factory: sessionmaker[Session] | None = None,
) -> Scheduler:
    """A scheduler for the application: its database, the sequences directory (checked), the configured
    transport."""
    from outreach.sending.sequences import load_sequences, sequences_dir, template_kinds
    from outreach.sending.transports import transport_for

    application = as_application(application)
    settings = application.settings
    if factory is None:
        factory = application.sessions
    sequences = load_sequences(sequences_dir(settings.sequences_dir, settings), templates=template_kinds(settings.prompts_dir))
    return Scheduler(factory, settings, sequences, transport or transport_for(settings), clock=clock,
                     followups=followups)


# ---------------------------------------------------------------------------------------------- the demo


class DemoSequenceReport(BaseModel):
    """What ``outreach demo`` prints after running the approved demo drafts through the demo sequence."""

    start: datetime
    end: datetime
    enrolled: int
    sent: list[StepOutcome]
    tasks: list[StepOutcome]
    held: list[StepOutcome]
    exited: list[StepOutcome]
    outbox_dir: str

    def lines(self) -> list[str]:
        out = [
            f"Sequence 'demo', {self.start:%Y-%m-%d} → {self.end:%Y-%m-%d} on a fast clock: {self.enrolled} enrolled, "
            f"{len(self.sent)} emails sent, {len(self.tasks)} rep tasks, {len(self.held)} held, "
            f"{len(self.exited)} exited",
            f"Messages (.eml) in {self.outbox_dir}",
        ]
        for title, items in (("Sent", self.sent), ("Tasks", self.tasks), ("Held for review", self.held),
                             ("Exited", self.exited)):
            if items:
                out.append(f"{title}:")
                out.extend(f"  {o.at:%a %Y-%m-%d %H:%M} UTC  {o.account_id}: {o.reason}" for o in items)
        return out


def run_demo_sequence(
    application: Application | Settings,
    data_dir: Path,
    as_of: date,
    *,
    approver: str = "demo@outreach.example",
    days: int = 30,
    sequence_id: str = "demo",
) -> DemoSequenceReport:
    """Approve the queued demo drafts as ``approver``, enroll them in the demo sequence and run ``days`` of
    sequence time on a fake clock into the outbox transport (never SMTP). Call after the queue is filled."""
    from outreach.review.queue import DatasetGateCheck, ReviewQueue
    from outreach.review.storage import UserRow
    from outreach.review.users import get_user
    from outreach.sending.transports import OutboxTransport, outbox_dir

    start = datetime.combine(as_of, datetime.min.time(), tzinfo=UTC) + timedelta(hours=6)
    clock = FakeClock(start)
    with application_for(application) as app:
        settings = app.settings
        factory = app.sessions
        with factory() as session:
            user = session.scalar(select(UserRow).where(UserRow.email == approver))
            if user is None:
                raise NotFoundError(f"user {approver} does not exist", hint="run the demo setup first")
            actor = get_user(session, user.id)
            pending = list(session.execute(select(DraftRow.id, DraftRow.version).where(
                DraftRow.status == "pending_review", DraftRow.quality == "ok").order_by(DraftRow.id)))
        queue = ReviewQueue(factory, gate_check=DatasetGateCheck(data_dir, as_of, rules_path=settings.rules_path),
                            clock=clock)
        approved = queue.bulk_approve(actor, [(draft_id, version) for draft_id, version in pending]).approved
        demo_settings = settings.model_copy(update={"mail_transport": "outbox"})
        scheduler = build_scheduler(demo_settings, clock=clock, factory=factory,
                                    transport=OutboxTransport(outbox_dir(demo_settings)))
        for draft_id in approved:
            scheduler.enroll(draft_id, actor=approver, data_dir=data_dir, sequence_id=sequence_id)
        report = scheduler.run_until(start + timedelta(days=days), clock)
    return DemoSequenceReport(
        start=start, end=clock(), enrolled=len(approved),
        sent=[o for o in report.outcomes if o.kind == "sent"],
        tasks=[o for o in report.outcomes if o.kind == "task"],
        held=[o for o in report.outcomes if o.kind == "held"],
        exited=[o for o in report.outcomes if o.kind == "exited"],
        outbox_dir=str(outbox_dir(demo_settings)),
    )
