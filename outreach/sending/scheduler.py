"""The sequence scheduler: enrolls approved drafts and carries out each step when it is due, crash-safely.

One pass (:meth:`Scheduler.tick`, ``outreach tick``; ``outreach worker`` loops it):

1. **Recover** sends a crashed worker left in flight (their lease is over): the outbox transport can tell
   whether the file was written (repaired either way); for SMTP the outcome is unknowable, so that one message
   is held for a person.
2. **Claim** a batch of due steps with a per-step lease, in a short transaction (``SELECT … FOR UPDATE SKIP
   LOCKED`` on PostgreSQL, so any number of workers share the load). Nothing else happens in it. A crashed
   worker's claims just expire; the step's due time is untouched, so the stale guard still measures from it.
3. **Prepare** each claimed step outside any write transaction: the slow work — the health gate (decided once
   for the accounts of the batch, :mod:`outreach.sending.gate`), drafting a follow-up, rendering the message —
   happens here, and every write it needs (a wait, a deferral, a follow-up queued for review) is its own short
   transaction that first checks the lease is still ours.
4. **Hand over**: right before a message goes to the transport, one short transaction re-checks everything
   that can stop it — a reply, an unsubscribe or bounce, the suppression list, a meeting or conversion, the gate
   with the current cooldown, staleness, the window, the caps — and marks exactly that message's outbox row
   ``sending``. Writers that record replies or unsubscribes lock the same enrollments (SQLite: the write lock),
   so either they come first and the message is not sent, or it was handed over before they were recorded.
   At most one message per worker is ever ``sending``: a crash leaves exactly one in doubt.
5. **Record** the outcome in a second short transaction: ``sent``; certainly not sent → ``retry`` with backoff
   up to ``OUTREACH_SEND_RETRY_LIMIT`` attempts, then ``failed`` and held; recipient refused permanently →
   ``bounced``, suppressed, exited; possibly delivered → ``unknown`` and held. When the relay itself is down,
   the pass stops handing over messages (the rest of the batch stays due) instead of failing them all.

Every time comes from an injectable clock (:class:`FakeClock` in tests and the demo), so a month of sequence
time runs in milliseconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import time as _time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, case, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from outreach import db
from outreach.application import Application, application_for, as_application
from outreach.engine.catalog import Company
from outreach.engine.data import Dataset
from outreach.engine.decisions import Decision
from outreach.errors import ConfigError, ConflictError, NotFoundError, OutreachError
from outreach.review.queue import DraftInput, collect_evidence, enqueue, transition_draft
from outreach.review.storage import AccountRow, AuditRow, DraftRow, DraftVersionRow, UserRow
from outreach.sending.engagement import EXIT_REASONS, MailEvent, clicked, exit_event, record, replied
from outreach.sending.gate import GateDecisions, GateKey
from outreach.sending.sequences import BranchStep, EmailStep, Sequence, TaskStep, WaitStep, Window, zone
from outreach.sending.suppression import is_suppressed, lock_enrollments, normalize, token_for, tokens_for
from outreach.sending.tables import CONTACTED_STATES, EnrollmentRow, OutboxRow
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

if TYPE_CHECKING:
    from outreach.drafting.drafts import DraftingContext
    from outreach.drafting.facts import SenderFacts
    from outreach.drafting.providers.base import Provider
    from outreach.drafting.templates import PromptTemplate

log = logging.getLogger(__name__)

SYSTEM = "scheduler"
REVIEW_RECHECK = timedelta(minutes=30)
THROTTLE_RETRY = timedelta(minutes=5)
MAX_STEPS_PER_CLAIM = 50  # a branch loop in a sequence file must not spin a worker forever
MAX_REDECIDE = 3  # hand-overs retried when a send by another enrollment changed the account's cooldown
LOOKAHEAD_STEPS = 2000  # a batch's engine run also decides the accounts of this many steps due after it
CLAIMABLE = ("active", "waiting_review")
ExitReason = Literal[
    "replied", "meeting_booked", "converted", "unsubscribed", "hard_bounce", "health_gate", "manual_stop",
    "friction_resolved", "branch", "followup_rejected", "review_rejected", "suppressed",
]
OutcomeKind = Literal["sent", "task", "held", "exited", "deferred", "waiting_review", "completed", "recovered",
                      "retrying"]
T = TypeVar("T")


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
    relay_down: str | None = None  # the pass stopped handing over messages: the relay failed (this error)

    def count(self, kind: OutcomeKind) -> int:
        return sum(1 for o in self.outcomes if o.kind == kind)

    def line(self) -> str:
        kinds: tuple[OutcomeKind, ...] = ("sent", "task", "held", "exited", "deferred", "waiting_review",
                                          "completed", "recovered", "retrying")
        text = ", ".join(f"{self.count(k)} {k.replace('_', ' ')}" for k in kinds)
        return text + (f"; relay down, pass stopped: {self.relay_down}" if self.relay_down else "")


class FollowupWriter(Protocol):
    def __call__(self, decision: Decision, dataset: Dataset, template: str, previous_subject: str) -> DraftInput:
        """Write a follow-up email for ``decision`` with the named followup template."""


class DraftingFollowups:
    """Follow-ups through the drafting library: the named ``followup`` template, the refreshed facts of a
    fresh decision, the validators; the configured provider (offline unless an LLM is configured). Templates,
    configuration, provider and who signs (the account owners in the users table, as the first email was
    signed) are loaded once per pass (:meth:`reset`)."""

    def __init__(self, settings: Settings, factory: sessionmaker[Session] | None = None) -> None:
        self.settings = settings
        self.factory = factory
        self._templates: dict[str, PromptTemplate] | None = None
        self._senders: dict[str, SenderFacts] | None = None
        self._contexts: dict[tuple[int, str], tuple[DraftingContext, Provider]] = {}

    def reset(self) -> None:
        self._templates = None
        self._senders = None
        self._contexts.clear()

    def __call__(self, decision: Decision, dataset: Dataset, template: str, previous_subject: str) -> DraftInput:
        from outreach.drafting.config import load_drafting_config
        from outreach.drafting.drafts import DraftingContext, run_drafts
        from outreach.drafting.providers import get_provider
        from outreach.drafting.registry import load_templates
        from outreach.review.redraft import draft_input
        from outreach.review.users import sender_source

        if self._templates is None:
            self._templates = load_templates(self.settings.prompts_dir)
        if self._senders is None:
            self._senders = sender_source(self.factory)() if self.factory is not None else {}
        if template not in self._templates:
            raise ConfigError(f"prompt template '{template}' not found for a follow-up")
        key = (id(dataset), template)
        if key not in self._contexts:
            config = load_drafting_config(dataset.root / "drafting.yaml")
            context = DraftingContext.from_dataset(dataset, {template: self._templates[template]}, config)
            context.senders = dict(self._senders)
            self._contexts[key] = (context, get_provider(self.settings.provider, self.settings, config))
        context, provider = self._contexts[key]
        records, _ = run_drafts([decision], context, provider, kind="followup")
        if not records:
            raise OutreachError(f"account '{decision.account_id}' could not be drafted (cohort {decision.cohort})")
        return draft_input(records[0])


def idempotency_key(enrollment_id: int, step: int) -> str:
    return f"enr{enrollment_id}-step{step}"


@dataclass(frozen=True)
class _Claim:
    """One claimed step: the lease this worker holds on it, the step it was on when claimed, and the row as
    it was then (a detached snapshot to plan with; every write re-reads and re-checks the locked row)."""

    enrollment_id: int
    token: str
    step: int
    account_id: str
    data_dir: str
    claimed_at: datetime
    row: EnrollmentRow


@dataclass
class _Batch:
    claims: list[_Claim]
    contacted: dict[int, date | None] = field(default_factory=dict)
    primed: bool = False
    relay_down: str | None = None
    tokens: dict[tuple[str, str], str] | None = None  # (recipient, list) → unsubscribe token
    retries: dict[str, str] = field(default_factory=dict)  # idempotency key → Message-ID of a send to retry
    sender_names: dict[str, str] = field(default_factory=dict)  # sender address → the user's display name


@dataclass(frozen=True)
class _Ready:
    """An email step ready to hand over: its text, the rendered message and what it was checked against."""

    step: int
    subject: str
    body: str
    draft_id: int | None
    first: bool
    email: OutgoingEmail
    window: Window


@dataclass(frozen=True)
class _Handed:
    outbox_id: int
    key: str
    attempts: int


@dataclass(frozen=True)
class _Redecide:
    key: GateKey


class _LeaseLost(Exception):
    """Raised inside a write transaction when the step is no longer ours (nothing is written)."""


class Scheduler:
    """Enrollment and the pass over due steps. One instance per worker; run several on PostgreSQL."""

    def __init__(
        self,
        application: Application,
        sequences: dict[str, Sequence],
        transport: Transport,
        *,
        clock: Callable[[], datetime] = utcnow,
        followups: FollowupWriter | None = None,
        worker_id: str | None = None,
        factory: sessionmaker[Session] | None = None,
    ) -> None:
        self.application = application
        self.settings = application.settings
        self.factory = factory if factory is not None else application.sessions
        self.sequences = sequences
        self.transport = transport
        self.clock = clock
        self.followups: FollowupWriter = followups or DraftingFollowups(self.settings, self.factory)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        bind = self.factory.kw.get("bind")
        self.postgres = bind is not None and bind.dialect.name == "postgresql"
        self.lease = timedelta(seconds=self.settings.worker_lease_seconds)
        self.gates = GateDecisions(application, max_age=timedelta(seconds=self.settings.send_gate_max_age_seconds),
                                   clock=clock)

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
                step_index=0, next_due_at=now, step_due_at=now, thread_references=[], enrolled_by=actor,
                enrolled_at=now, updated_at=now,
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

    def release(self, enrollment_id: int, *, actor: str, was_sent: bool | None = None) -> str:
        """Resume a held enrollment after a person checked it; returns what was done. A send with an unknown
        outcome needs ``was_sent``: True records it as sent, False sends it again. A send the relay refused
        (``failed``) is tried again with a fresh retry budget. The step's due time restarts now."""
        now = self.clock()
        with db.transaction(self.factory) as session:
            row = self._lock(session, enrollment_id)
            if row.status != "held":
                raise ConflictError(f"enrollment {enrollment_id} is {row.status}, not held")
            outbox = session.scalar(select(OutboxRow).where(
                OutboxRow.idempotency_key == idempotency_key(row.id, row.step_index)))
            done = "released"
            if outbox is not None and outbox.state == "unknown":
                if was_sent is None:
                    raise ConflictError(f"enrollment {enrollment_id}'s last send has an unknown outcome",
                                        hint="check the mailbox or relay log, then release with --sent or --not-sent")
                if was_sent:
                    outbox.state, outbox.sent_at = "sent", outbox.attempted_at or outbox.created_at
                    outbox.detail = f"{outbox.detail or ''} — confirmed sent by {actor}".strip(" —")
                    self._advance_after_send(session, row, outbox, now)
                    done = f"released; step {outbox.step_index} recorded as sent"
                else:
                    outbox.state, outbox.attempts = "retry", 0
                    outbox.detail = f"{outbox.detail or ''} — not sent, said {actor}".strip(" —")
                    done = f"released; step {outbox.step_index} will be sent again"
            elif outbox is not None and outbox.state == "failed":
                if was_sent:
                    raise ConflictError(f"enrollment {enrollment_id}'s last send was refused ({outbox.detail}); "
                                        "it did not go out", hint="release without --sent to try it again")
                outbox.state, outbox.attempts = "retry", 0
                done = f"released; step {outbox.step_index} will be tried again"
            elif was_sent:
                raise ConflictError(f"enrollment {enrollment_id} has no send in doubt to confirm",
                                    hint="release without --sent")
            row.hold_reason, row.updated_at = None, now
            if row.status == "held":  # (recorded as sent: already moved on, or completed)
                row.status, row.next_due_at, row.step_due_at = "active", now, now
            row.lease_token = row.lease_until = None
            session.add(AuditRow(at=now, actor=actor, action="enrollment.release", entity="enrollment",
                                 entity_id=str(row.id), before=None, after={"was_sent": was_sent, "done": done}))
            return done

    def held_failed(self) -> list[int]:
        """Held enrollments whose current step the relay refused (outbox ``failed``): ``release --all-failed``."""
        with self.factory() as session:
            query = (select(EnrollmentRow.id).join(OutboxRow, (OutboxRow.enrollment_id == EnrollmentRow.id)
                                                   & (OutboxRow.step_index == EnrollmentRow.step_index))
                     .where(EnrollmentRow.status == "held", OutboxRow.state == "failed").order_by(EnrollmentRow.id))
            return list(session.scalars(query))

    # ------------------------------------------------------------------------------------------ the pass

    def tick(self, *, recover_all: bool = False) -> TickReport:
        """One pass: recover crashed sends, then claim and run every due step, batch by batch. With
        ``recover_all`` (this is the only worker) every lease counts as expired."""
        self.gates.forget_stale()
        reset = getattr(self.followups, "reset", None)
        if callable(reset):
            reset()
        report = TickReport(outcomes=self.recover(all_in_flight=recover_all))
        while True:
            claims = self._claim(ignore_leases=recover_all)
            if not claims:
                if report.outcomes:
                    log.info("scheduler pass: %s", report.line())
                return report
            batch = _Batch(claims)
            self.gates.refresh()  # data files are looked at once per batch
            for index, claim in enumerate(claims):
                try:
                    outcome = self._process(claim, batch)
                except OutreachError as error:  # this enrollment's data, prompt or draft: hold it, go on
                    log.warning("enrollment %s: %s", claim.enrollment_id, error.message)
                    outcome = self._write(claim, partial(self._act_hold, reason=f"cannot run this step: "
                                                         f"{error.message}"))
                if outcome is not None:
                    report.outcomes.append(outcome)
                if batch.relay_down is not None:
                    self._unclaim(claims[index + 1:])
                    report.relay_down = batch.relay_down
                    return report

    def run_until(self, end: datetime, clock: FakeClock) -> TickReport:
        """Advance a fake clock from due time to due time until ``end``, running a pass at each: a month
        of sequence time in milliseconds."""
        report = TickReport()
        while True:
            report.outcomes.extend(self.tick().outcomes)
            with self.factory() as session:
                due = session.scalar(select(func.min(EnrollmentRow.next_due_at)).where(
                    EnrollmentRow.status.in_(CLAIMABLE)))
            if due is None or due > end:
                clock.set(end)
                return report
            clock.set(due)

    def worker(self, *, interval: float | None = None, passes: int | None = None,
               should_stop: Callable[[], bool] = lambda: False) -> Iterator[TickReport]:
        """Loop passes (``outreach worker``), pausing ``interval`` seconds when there was nothing to do or the
        relay is down."""
        done = 0
        pause = interval if interval is not None else self.settings.worker_interval_seconds
        while not should_stop() and (passes is None or done < passes):
            report = self.tick()
            done += 1
            yield report
            if not report.outcomes or report.relay_down:
                _time.sleep(pause)

    # ------------------------------------------------------------------------------------------ recovery

    def recover(self, *, all_in_flight: bool = False) -> list[StepOutcome]:
        """Resolve sends left ``sending`` by a crashed worker (their lease is over, or all of them when this is
        known to be the only worker): delivered → sent, certainly not handed over → due again (the stale guard
        still counts from the step's due time), unknown → held for a person."""
        now = self.clock()
        with self.factory() as session:
            query = select(OutboxRow.id, OutboxRow.enrollment_id).where(OutboxRow.state == "sending")
            if not all_in_flight:
                query = query.where(OutboxRow.lease_until <= now)
            candidates = list(session.execute(query.order_by(OutboxRow.id)))
        outcomes = []
        for outbox_id, enrollment_id in candidates:
            with db.transaction(self.factory) as session:
                row = self._lock(session, enrollment_id, skip_locked=True)
                outbox = session.get(OutboxRow, outbox_id, with_for_update=self.postgres)
                if row is None or outbox is None or outbox.state != "sending" or (
                        not all_in_flight and outbox.lease_until is not None and outbox.lease_until > now):
                    continue  # another worker got there first, or the send finished meanwhile
                delivered = self.transport.delivered(outbox.idempotency_key)
                live = row.status == "sending"  # not stopped by an operator meanwhile
                outbox.lease_token = outbox.lease_until = None
                if delivered is True:
                    outbox.state, outbox.sent_at, outbox.transport = "sent", now, self.transport.name
                    if live:
                        self._advance_after_send(session, row, outbox, now)
                    outcomes.append(self._outcome(row, "recovered", "found delivered after a crash; marked sent"))
                elif delivered is False:
                    outbox.state, outbox.detail = "retry", "not handed over before a crash"
                    if live:  # due now; the stale guard still counts from the step's own due time
                        row.status, row.next_due_at, row.updated_at = "active", now, now
                        row.lease_token = row.lease_until = None
                    outcomes.append(self._outcome(row, "recovered", "not handed over before a crash; due again"))
                else:
                    outbox.state = "unknown"
                    outbox.detail = (f"outcome unknown: handed to {self.transport.name}, the worker stopped before "
                                     "recording the result")
                    outcomes.append(self._hold(session, row, outbox.detail, now) if live
                                    else self._outcome(row, "held", outbox.detail))
        return outcomes

    # ------------------------------------------------------------------------------------------ claiming

    def _claim(self, *, ignore_leases: bool) -> list[_Claim]:
        """Lease up to ``OUTREACH_WORKER_BATCH_SIZE`` due steps in one short transaction."""
        now = self.clock()
        token = secrets.token_hex(8)
        with db.transaction(self.factory) as session:
            query = (
                select(EnrollmentRow)
                .where(EnrollmentRow.status.in_(CLAIMABLE), EnrollmentRow.next_due_at <= now)
                .order_by(EnrollmentRow.next_due_at, EnrollmentRow.id)
                .limit(self.settings.worker_batch_size)
            )
            if not ignore_leases:
                query = query.where((EnrollmentRow.lease_until.is_(None)) | (EnrollmentRow.lease_until <= now))
            if self.postgres:
                query = query.with_for_update(skip_locked=True)
            rows = list(session.scalars(query))
            if not rows:
                return []
            session.execute(update(EnrollmentRow).where(EnrollmentRow.id.in_([r.id for r in rows])).values(
                lease_token=token, lease_until=now + self.lease, claimed_by=self.worker_id, claimed_at=now),
                execution_options={"synchronize_session": False})
            for row in rows:
                row.lease_token, row.lease_until, row.claimed_by, row.claimed_at = (
                    token, now + self.lease, self.worker_id, now)
            session.expunge_all()  # snapshots: the in-memory values above are never flushed
        return [_Claim(r.id, token, r.step_index, r.account_id, r.data_dir or "", now, r) for r in rows]

    def _unclaim(self, claims: list[_Claim]) -> None:
        """Give back claimed steps this pass will not run (their due time is untouched)."""
        if not claims:
            return
        with db.transaction(self.factory) as session:
            session.execute(update(EnrollmentRow).where(
                EnrollmentRow.id.in_([c.enrollment_id for c in claims]), EnrollmentRow.lease_token == claims[0].token,
                EnrollmentRow.status.in_(CLAIMABLE)).values(lease_token=None, lease_until=None))

    def _lock(self, session: Session, enrollment_id: int, *, skip_locked: bool = False) -> EnrollmentRow:
        query = select(EnrollmentRow).where(EnrollmentRow.id == enrollment_id)
        if self.postgres:
            query = query.with_for_update(skip_locked=skip_locked)
        row = session.scalar(query)
        if row is None:
            if skip_locked:
                return None  # type: ignore[return-value]
            raise NotFoundError(f"enrollment {enrollment_id} does not exist")
        return row

    def _holds(self, row: EnrollmentRow, claim: _Claim) -> bool:
        return row.lease_token == claim.token and row.step_index == claim.step and row.status in CLAIMABLE

    def _write(self, claim: _Claim, action: Callable[[Session, EnrollmentRow, datetime], T], *,
               keep_lease: bool = False) -> T | None:
        """Run ``action`` in a short transaction on the locked enrollment, if the step is still ours; None
        (nothing written) when the lease was lost (another worker took it over, or an operator stopped it).
        The lease ends with the transaction unless a message is now ``sending``, or ``keep_lease`` says the
        step goes on (and the action did not end it with an outcome)."""
        now = self.clock()
        try:
            with db.transaction(self.factory) as session:
                row = session.scalar(select(EnrollmentRow).where(EnrollmentRow.id == claim.enrollment_id)
                                     .with_for_update())
                if row is None or not self._holds(row, claim):
                    raise _LeaseLost
                result = action(session, row, now)
                goes_on = keep_lease and not isinstance(result, StepOutcome) and row.status in CLAIMABLE
                if goes_on:
                    row.lease_until = now + self.lease  # slow work (a model call) may have used some of it
                elif row.status != "sending":
                    row.lease_token = row.lease_until = None
                return result
        except _LeaseLost:
            log.info("enrollment %s: step %s is no longer claimed by this worker; skipped",
                     claim.enrollment_id, claim.step)
            return None

    def _outcome(self, row: EnrollmentRow, kind: OutcomeKind, reason: str = "") -> StepOutcome:
        return StepOutcome(enrollment_id=row.id, account_id=row.account_id, sequence_id=row.sequence_id,
                           step=row.step_index, kind=kind, reason=reason, at=self.clock())

    # ------------------------------------------------------------------------------------------ one step

    def _process(self, claim: _Claim, batch: _Batch) -> StepOutcome | None:
        """Run a claimed enrollment's steps from its current one until it must wait, sends, or stops."""
        if self.clock() - claim.claimed_at > self.lease / 2 and not self._renew(claim):
            return None
        row = claim.row
        seq = self.sequences.get(row.sequence_id)
        if seq is None:
            return self._write(claim, partial(self._act_hold, reason=f"sequence '{row.sequence_id}' is no longer "
                                              "defined"))
        step_index = row.step_index
        for _ in range(MAX_STEPS_PER_CLAIM):
            now = self.clock()
            if step_index >= len(seq.steps):
                return self._write(claim, partial(self._act_complete, step_index=step_index))
            step = seq.steps[step_index]
            if isinstance(step, WaitStep):
                return self._write(claim, partial(self._act_wait, step_index=step_index, step=step))
            if isinstance(step, BranchStep):
                decision = self._decision(row, batch, now) if "friction_resolved" in step.condition else None
                with self.factory() as session:
                    taken = self._condition(session, row, step.condition, decision)
                target = step.then if taken else step.otherwise
                if target == "exit":
                    reason_name: ExitReason = {"friction_resolved": "friction_resolved", "replied": "replied"}.get(
                        step.condition, "branch")  # type: ignore[assignment]
                    return self._write(claim, partial(self._act_exit, reason=reason_name,
                                                      detail=f"branch '{step.condition}' → exit"))
                step_index = seq.step_index(target) if target else step_index + 1
                continue
            gated = self._gate_verdict(row, self._decision(row, batch, now))
            if gated is not None:
                return self._write(claim, partial(self._act_exit, reason=gated[0], detail=gated[1]))
            if isinstance(step, TaskStep):
                return self._write(claim, partial(self._act_task, step_index=step_index, step=step))
            assert isinstance(step, EmailStep)
            return self._email(claim, batch, row, seq, step, step_index)
        return self._write(claim, partial(self._act_hold,
                                          reason="too many branch jumps in one pass (a loop in the sequence?)"))

    def _renew(self, claim: _Claim) -> bool:
        """Extend the lease of a step whose batch has been running a while, right before working on it: a slow
        batch's steps are then never taken over while this worker is on them (False: already taken)."""
        return self._write(claim, lambda s, r, n: True, keep_lease=True) is True

    # Write actions: (session, locked row, now) plus their own arguments, run by :meth:`_write`. Each first
    # checks whether the enrollment has been stopped meanwhile (a reply, an unsubscribe …).

    def _act_hold(self, session: Session, row: EnrollmentRow, now: datetime, *, reason: str) -> StepOutcome:
        return self._hold(session, row, reason, now)

    def _act_exit(self, session: Session, row: EnrollmentRow, now: datetime, *, reason: ExitReason,
                  detail: str) -> StepOutcome:
        return self._stopped(session, row, now) or self._exit(session, row, reason, detail, now)

    def _act_complete(self, session: Session, row: EnrollmentRow, now: datetime, *, step_index: int) -> StepOutcome:
        return self._stopped(session, row, now) or self._complete(row, step_index, now)

    def _act_wait(self, session: Session, row: EnrollmentRow, now: datetime, *, step_index: int,
                  step: WaitStep) -> StepOutcome:
        return self._stopped(session, row, now) or self._wait(row, step_index, step, now)

    def _act_task(self, session: Session, row: EnrollmentRow, now: datetime, *, step_index: int,
                  step: TaskStep) -> StepOutcome:
        return self._stopped(session, row, now) or self._task(session, row, step_index, step, now)

    def _complete(self, row: EnrollmentRow, step_index: int, now: datetime) -> StepOutcome:
        row.step_index = step_index
        row.status, row.next_due_at, row.updated_at = "completed", None, now
        return self._outcome(row, "completed", "all steps done")

    def _wait(self, row: EnrollmentRow, step_index: int, step: WaitStep, now: datetime) -> StepOutcome:
        row.step_index = step_index + 1
        row.next_due_at = row.step_due_at = step.duration.after(now, zone(row.timezone))
        row.updated_at = now
        return self._outcome(row, "deferred", f"waiting {step.duration}")

    def _task(self, session: Session, row: EnrollmentRow, step_index: int, step: TaskStep,
              now: datetime) -> StepOutcome:
        row.step_index = step_index
        session.add(OutboxRow(
            idempotency_key=idempotency_key(row.id, step_index), enrollment_id=row.id, step_index=step_index,
            kind="task", state="open", account_id=row.account_id, sender=row.sender, recipient=row.recipient,
            subject=step.title, body=step.title, due_at=row.step_due_at or now, created_at=now))
        outcome = self._outcome(row, "task", step.title)
        row.step_index = step_index + 1
        row.step_due_at = row.updated_at = now
        return outcome

    # ------------------------------------------------------------------------------------------ checks

    def _stop_reason(self, session: Session, row: EnrollmentRow) -> tuple[ExitReason, str] | None:
        """A reply, bounce, unsubscribe, meeting or conversion since enrollment, or a suppressed address."""
        event = exit_event(session, row)
        if event is not None:
            detail = f"{event.kind} at {event.occurred_at:%Y-%m-%d %H:%M} UTC"
            if event.kind == "conversion" and event.offer_id:
                detail += f" (bought {event.offer_id})"
            return EXIT_REASONS[event.kind], detail  # type: ignore[return-value]
        suppressed = is_suppressed(session, row.recipient)
        if suppressed is not None:
            reason: ExitReason = {"unsubscribe": "unsubscribed", "hard_bounce": "hard_bounce"}.get(
                suppressed.reason, "suppressed")  # type: ignore[assignment]
            return reason, f"{row.recipient} is on the suppression list ({suppressed.reason})"
        return None

    def _stopped(self, session: Session, row: EnrollmentRow, now: datetime) -> StepOutcome | None:
        """Inside a write transaction: exit now if anything stops the enrollment."""
        reason = self._stop_reason(session, row)
        return self._exit(session, row, reason[0], reason[1], now) if reason is not None else None

    def _gate_verdict(self, row: EnrollmentRow, decision: Decision | None) -> tuple[ExitReason, str] | None:
        """Why the health gate stops this enrollment now, if it does."""
        if decision is None:
            return "health_gate", "the account is no longer in the data"
        if not decision.gate.allowed:
            return "health_gate", "; ".join(f"{r.rule}: {r.message}" for r in decision.gate.reasons)
        if row.friction_id and row.friction_id not in {f.id for f in decision.frictions}:
            return "friction_resolved", f"'{row.friction_id}' no longer shows in the data (upgraded or resolved)"
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

    def _contacted_query(self, accounts: set[str]) -> Select[str, int, datetime]:
        """The latest email each enrollment of these accounts sent (or may have sent)."""
        when = func.max(func.coalesce(OutboxRow.sent_at, OutboxRow.attempted_at, OutboxRow.created_at),
                        type_=OutboxRow.__table__.c.sent_at.type)
        return (select(OutboxRow.account_id, OutboxRow.enrollment_id, when)
                .where(OutboxRow.kind == "email", OutboxRow.state.in_(CONTACTED_STATES),
                       OutboxRow.account_id.in_(sorted(accounts)))
                .group_by(OutboxRow.account_id, OutboxRow.enrollment_id))

    def last_contacted(self, session: Session, row: EnrollmentRow) -> date | None:
        """The account's latest expansion email from any *other* enrollment (any motion): the cooldown."""
        latest = max((when for _, enrollment_id, when in session.execute(self._contacted_query({row.account_id}))
                      if enrollment_id != row.id and when is not None), default=None)
        return latest.astimezone(UTC).date() if latest is not None else None

    def _decision(self, row: EnrollmentRow, batch: _Batch, now: datetime) -> Decision | None:
        """The account's decision for the gate: the first time a claimed batch needs one, one engine run
        decides the accounts of the batch — and of the next ``LOOKAHEAD_STEPS`` steps due after it, which
        this worker may claim next: they then find their decisions made, while fresh (one engine run over a
        thousand accounts costs little more than over ten)."""
        if not row.data_dir:
            raise ConfigError(f"enrollment {row.id} has no data directory to re-check the gate against")
        as_of = now.astimezone(UTC).date()
        if not batch.primed:
            batch.primed = True
            self._prime(batch, as_of, now)
        if row.id not in batch.contacted:
            with self.factory() as session:
                batch.contacted[row.id] = self.last_contacted(session, row)
        return self.gates.get((row.data_dir, row.account_id, batch.contacted[row.id], as_of))

    def _prime(self, batch: _Batch, as_of: date, now: datetime) -> None:
        """The last contact of every claimed enrollment (one query); then, unless their decisions are all still
        cached, one engine run for them and the steps due after them."""
        with self.factory() as session:
            wanted = {c.enrollment_id: (c.account_id, c.data_dir) for c in batch.claims}
            self._contacted_into(session, batch, wanted)
            if all(self.gates.cached((d, a, batch.contacted[e], as_of)) is not None
                   for e, (a, d) in wanted.items() if d):
                return
            upcoming = session.execute(
                select(EnrollmentRow.id, EnrollmentRow.account_id, EnrollmentRow.data_dir)
                .where(EnrollmentRow.status.in_(CLAIMABLE), EnrollmentRow.next_due_at <= now)
                .order_by(EnrollmentRow.next_due_at, EnrollmentRow.id)
                .limit(max(self.settings.worker_batch_size, LOOKAHEAD_STEPS)))
            ahead = {e: (a, d or "") for e, a, d in upcoming if e not in wanted}
            self._contacted_into(session, batch, ahead)
        self.gates.prime([(d, a, batch.contacted[e], as_of) for e, (a, d) in (wanted | ahead).items() if d])

    def _contacted_into(self, session: Session, batch: _Batch, wanted: dict[int, tuple[str, str]]) -> None:
        """Each enrollment's last contact (another enrollment's latest email to the account), in one query."""
        latest: dict[str, list[tuple[int, datetime]]] = {}
        if wanted:
            for account_id, enrollment_id, when in session.execute(
                    self._contacted_query({a for a, _ in wanted.values()})):
                latest.setdefault(account_id, []).append((enrollment_id, when))
        for enrollment_id, (account_id, _) in wanted.items():
            others = [w for e, w in latest.get(account_id, []) if e != enrollment_id and w]
            batch.contacted[enrollment_id] = max(others).astimezone(UTC).date() if others else None

    # ------------------------------------------------------------------------------------------ email steps

    def company(self, row: EnrollmentRow) -> Company:
        return self.gates.dataset(row.data_dir or "").catalog.company

    def _email(self, claim: _Claim, batch: _Batch, row: EnrollmentRow, seq: Sequence, step: EmailStep,
               step_index: int) -> StepOutcome | None:
        first = step_index == seq.first_email_index()
        text = (self._first_touch(claim, row, step_index) if first
                else self._followup(claim, batch, row, seq, step, step_index))
        if not isinstance(text, tuple):
            return text
        subject, body, draft_id = text
        timing = self._timing(row, seq.window, self.clock())
        if timing is not None:
            return self._write(claim, lambda s, r, n: self._stopped(s, r, n) or self._apply_timing(
                s, r, step_index, draft_id, seq.window, n))
        ready = self._render(batch, row, step_index, subject, body, draft_id, first, seq.window)
        for _ in range(MAX_REDECIDE):
            handed = self._write(claim, lambda s, r, n: self._hand_over(s, r, ready, n), keep_lease=True)
            if isinstance(handed, _Redecide):
                verdict = self._gate_verdict(row, self.gates.get(handed.key))
                batch.contacted[row.id] = handed.key[2]
                if verdict is not None:
                    return self._write(claim, partial(self._act_exit, reason=verdict[0], detail=verdict[1]))
                continue
            if not isinstance(handed, _Handed):
                return handed
            return self._send(claim, batch, ready, handed)
        return self._write(claim, lambda s, r, n: self._hold(
            s, r, "the account's last contact kept changing while this step was handed over", n))

    def _first_touch(self, claim: _Claim, row: EnrollmentRow,
                     step_index: int) -> tuple[str, str, int | None] | StepOutcome | None:
        """The approved first email. Normally the text copied at enrollment; after a stale step sent the draft
        back to review, it waits for the new review and then sends the version approved then."""
        with self.factory() as session:
            draft = session.get(DraftRow, row.draft_id) if row.draft_id is not None else None
            if draft is None or draft.status == "scheduled":
                return row.subject, row.body, row.draft_id
            if draft.status == "approved":
                version = session.scalar(select(DraftVersionRow).where(
                    DraftVersionRow.draft_id == draft.id, DraftVersionRow.number == draft.current_version))
                assert version is not None
                return version.subject, version.body, draft.id
            status, draft_id = draft.status, draft.id
        if status == "pending_review":
            return self._write(claim, lambda s, r, n: self._stopped(s, r, n) or self._await_review(
                r, step_index, f"draft {draft_id} waits for review", n))
        return self._write(claim, lambda s, r, n: self._exit(s, r, "review_rejected",
                                                            f"draft {draft_id} was {status} in review", n))

    def _await_review(self, row: EnrollmentRow, step_index: int, reason: str, now: datetime) -> StepOutcome:
        row.step_index = step_index
        row.status, row.updated_at = "waiting_review", now
        row.next_due_at = row.step_due_at = now + REVIEW_RECHECK
        return self._outcome(row, "waiting_review", reason)

    def _followup(self, claim: _Claim, batch: _Batch, row: EnrollmentRow, seq: Sequence, step: EmailStep,
                  step_index: int) -> tuple[str, str, int | None] | StepOutcome | None:
        """The follow-up's text once it is approved: drafted on first reach (outside any transaction; pending
        review unless the sequence auto-sends), then it waits for the review."""
        pending_id = row.pending_draft_id
        if pending_id is None:
            with self.factory() as session:  # a model call is slow and costs money: not for a stopped enrollment
                stopped = self._stop_reason(session, row) is not None
            if stopped:
                return self._write(claim, self._stopped)
            now = self.clock()
            decision = self._decision(row, batch, now)
            assert decision is not None and step.prompt is not None  # checked by the gate verdict / the loader
            dataset = self.gates.dataset(row.data_dir or "")
            draft = self.followups(decision, dataset, step.prompt, row.thread_subject or row.subject)
            evidence = collect_evidence(dataset, decision)
            auto = seq.auto_sends(step)

            def queue(session: Session, r: EnrollmentRow, n: datetime) -> int | StepOutcome:
                stopped = self._stopped(session, r, n)
                if stopped is not None:
                    return stopped
                result = enqueue(session, decision, draft, evidence=evidence, catalog=dataset.catalog, now=n)
                if result.draft_id is None:
                    r.step_index = step_index
                    return self._hold(session, r, f"follow-up could not be queued: {result.reason}", n)
                r.pending_draft_id = result.draft_id
                pending = session.get(DraftRow, result.draft_id)
                assert pending is not None
                if auto and pending.status == "pending_review" and pending.quality == "ok":
                    transition_draft(session, pending, "approved", SYSTEM, n, action="approve",
                                     note=f"auto_send in sequence {seq.id}")
                return result.draft_id

            queued = self._write(claim, queue, keep_lease=True)
            if not isinstance(queued, int):
                return queued
            pending_id = queued
            note = self._earned_approval(pending_id)
            if note is not None:
                def approve(session: Session, r: EnrollmentRow, n: datetime) -> None:
                    pending = session.get(DraftRow, pending_id)
                    if pending is not None and pending.status == "pending_review" and pending.quality == "ok":
                        transition_draft(session, pending, "approved", SYSTEM, n, action="approve", note=note)

                self._write(claim, approve, keep_lease=True)
        with self.factory() as session:
            pending = session.get(DraftRow, pending_id)
            status = pending.status if pending is not None else "deleted"
            if status in ("approved", "scheduled"):
                assert pending is not None
                version = session.scalar(select(DraftVersionRow).where(
                    DraftVersionRow.draft_id == pending.id, DraftVersionRow.number == pending.current_version))
                assert version is not None
                return version.subject, version.body, pending.id
        if status == "pending_review":
            return self._write(claim, lambda s, r, n: self._stopped(s, r, n) or self._await_review(
                r, step_index, f"follow-up draft {pending_id} waits for review", n))
        return self._write(claim, lambda s, r, n: self._exit(s, r, "followup_rejected",
                                                            f"follow-up draft {pending_id} was {status}", n))

    def _earned_approval(self, draft_id: int) -> str | None:
        """A follow-up written by a template version that earned auto-approval from reviewers (prompt
        registry ``auto_approve``, off by default) skips review; the verdict is re-computed every time, so a
        version loses it as soon as its rejection rate or edit distance rises."""
        from outreach.drafting.registry import Registry
        from outreach.review.feedback import auto_approval

        with self.factory() as session:
            first = session.scalar(select(DraftVersionRow).where(
                DraftVersionRow.draft_id == draft_id, DraftVersionRow.number == 1))
            draft = session.get(DraftRow, draft_id)
            if first is None or draft is None or draft.status != "pending_review" or draft.quality != "ok":
                return None
            if not first.template_name or first.template_version is None:
                return None
            name, template_version = first.template_name, str(first.template_version)
        registry = Registry.open(self.settings.prompts_dir)
        policy = registry.data.auto_approve
        if not policy.enabled:
            return None
        verdict = auto_approval(self.factory, name, template_version, policy)
        if not verdict.eligible:
            return None
        return f"auto-approved: {name} v{template_version} earned it ({verdict.reason})"

    def _timing(self, row: EnrollmentRow, window: Window, now: datetime) -> str | None:
        """Whether the step must not go out now: ``stale`` (more than ``send_stale_hours`` past the time it
        became due — after an outage, back to review instead of late) or ``window`` (outside the send window).
        Staleness first: a closed window would otherwise move the due time and hide how late the step is."""
        overdue = now - (row.step_due_at or row.next_due_at or now)
        if overdue > timedelta(hours=self.settings.send_stale_hours):
            return "stale"
        if not window.contains(now, zone(row.timezone)):
            return "window"
        return None

    def _apply_timing(self, session: Session, row: EnrollmentRow, step_index: int, draft_id: int | None,
                      window: Window, now: datetime) -> StepOutcome | None:
        """Write what :meth:`_timing` found (None when, on a fresh look, the step may go after all)."""
        timing = self._timing(row, window, now)
        if timing == "stale":
            row.step_index = step_index
            overdue = now - (row.step_due_at or row.next_due_at or now)
            return self._back_to_review(session, row, draft_id, overdue, now)
        if timing == "window":
            opens = window.next_open(now, zone(row.timezone))
            return self._defer(row, step_index, opens, f"outside the send window ({window.describe()})", now)
        return None

    def _defer(self, row: EnrollmentRow, step_index: int, until: datetime, reason: str, now: datetime) -> StepOutcome:
        row.step_index = step_index
        row.status = "active"
        row.next_due_at = row.step_due_at = until
        row.updated_at = now
        return self._outcome(row, "deferred", reason)

    def _capped(self, session: Session, row: EnrollmentRow, window: Window,
                now: datetime) -> tuple[str, datetime] | None:
        """(reason, when to try again) when the sender's daily cap or the global hourly throttle is reached."""
        day_start = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
        hour_ago = now - timedelta(hours=1)
        sender_today = func.sum(case(((OutboxRow.sender == row.sender) & (OutboxRow.attempted_at >= day_start), 1),
                                     else_=0))
        last_hour = func.sum(case((OutboxRow.attempted_at > hour_ago, 1), else_=0))
        counts = session.execute(select(sender_today, last_hour).where(
            OutboxRow.kind == "email", OutboxRow.attempted_at >= min(day_start, hour_ago),
            OutboxRow.state.in_(CONTACTED_STATES))).one()
        today = int(counts[0] or 0)
        zone_info = zone(row.timezone)
        if today >= self.settings.send_daily_cap_per_sender:
            return (f"{row.sender} reached the daily cap ({self.settings.send_daily_cap_per_sender})",
                    window.next_open(day_start + timedelta(days=1), zone_info))
        if int(counts[1] or 0) >= self.settings.send_hourly_cap:
            return (f"global throttle ({self.settings.send_hourly_cap}/hour)",
                    window.next_open(now + THROTTLE_RETRY, zone_info))
        return None

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

    def _list_id(self, row: EnrollmentRow) -> str:
        """The List-Id of an enrollment's emails, and the list its unsubscribe token names."""
        company = self.company(row)
        return f"{row.sequence_id}.{company.domains[0] if company.domains else 'outreach'}"

    def _render(self, batch: _Batch, row: EnrollmentRow, step_index: int, subject: str, body: str,
                draft_id: int | None, first: bool, window: Window) -> _Ready:
        """The message as it will go out (built outside any write transaction). A retry keeps its Message-ID.
        Unsubscribe tokens and retried Message-IDs are read once for the whole batch."""
        key = idempotency_key(row.id, step_index)
        company = self.company(row)
        list_id = self._list_id(row)
        now = self.clock()
        if batch.tokens is None:  # the batch's tokens (created where missing) and retries, once
            ids = [c.enrollment_id for c in batch.claims]
            pairs = set()
            for claim in batch.claims:
                with contextlib.suppress(OutreachError):  # an unreadable data directory is its own step's error
                    pairs.add((claim.row.recipient, self._list_id(claim.row)))
            with db.transaction(self.factory) as session:
                batch.tokens = tokens_for(session, pairs | {(row.recipient, list_id)}, now)
                batch.retries = {k: m for k, m in session.execute(select(
                    OutboxRow.idempotency_key, OutboxRow.message_id).where(
                        OutboxRow.enrollment_id.in_(ids), OutboxRow.state == "retry")) if m}
                senders = sorted({c.row.sender for c in batch.claims} | {row.sender})
                batch.sender_names = {email: name for email, name in session.execute(
                    select(UserRow.email, UserRow.name).where(UserRow.email.in_(senders))) if name}
        token = batch.tokens.get((row.recipient, list_id))
        previous = batch.retries.get(key)
        if token is None:
            with db.transaction(self.factory) as session:
                token = token_for(session, row.recipient, list_id, now)
            batch.tokens[(row.recipient, list_id)] = token
        base = (self.settings.public_url.rstrip("/") + "/unsubscribe") if self.settings.public_url \
            else company.unsubscribe_url.rstrip("/")
        mailto = self.settings.unsubscribe_mailto or f"unsubscribe@{row.sender.rpartition('@')[2]}"
        if not first:
            subject = thread_subject(row.thread_subject or row.subject)
        # From the account's owner by name (the users table), as the draft is signed; else the catalog's sender.
        owner_name = batch.sender_names.get(row.sender)
        email = OutgoingEmail(
            idempotency_key=key, message_id=previous or new_message_id(row.sender), sender=row.sender,
            sender_name=owner_name or (company.sender_name if row.sender == normalize(company.sender_email) else None),
            recipient=row.recipient, recipient_name=row.recipient_name, subject=subject, body=body, date=now,
            in_reply_to=row.last_message_id, references=tuple(row.thread_references or ()),
            unsubscribe_https=f"{base}/{token}", unsubscribe_mailto=f"mailto:{mailto}?subject=unsubscribe%20{token}",
            postal_address=company.postal_address, company=company.name, list_id=list_id,
        )
        return _Ready(step=step_index, subject=subject, body=body, draft_id=draft_id, first=first, email=email,
                      window=window)

    # ------------------------------------------------------------------------------------------ hand-over

    def _hand_over(self, session: Session, row: EnrollmentRow, ready: _Ready,
                   now: datetime) -> _Handed | _Redecide | StepOutcome:
        """The last look before the transport, in one short transaction on the locked enrollment: everything
        that can stop the message, then its outbox row marked ``sending``."""
        if self.postgres:
            # One hand-over at a time per account, so two enrollments of one account (two motions) never both
            # pass the cooldown. Not per sender: that would make every worker queue behind one lock (a rep
            # sends for many accounts); the daily cap can then be passed by one message per other worker
            # handing over for the same sender at the same instant.
            session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"outreach:account:{row.account_id}"))))
        stopped = self._stopped(session, row, now)
        if stopped is not None:
            return stopped
        key: GateKey = (row.data_dir or "", row.account_id, self.last_contacted(session, row),
                        now.astimezone(UTC).date())
        if self.gates.cached(key) is None:
            return _Redecide(key)  # decided outside this transaction, then the hand-over runs again
        verdict = self._gate_verdict(row, self.gates.get(key))
        if verdict is not None:
            return self._exit(session, row, verdict[0], verdict[1], now)
        timed = self._apply_timing(session, row, ready.step, ready.draft_id, ready.window, now)
        if timed is not None:
            return timed
        capped = self._capped(session, row, ready.window, now)
        if capped is not None:
            return self._defer(row, ready.step, capped[1], capped[0], now)
        email = ready.email
        outbox_key = email.idempotency_key
        outbox = session.scalar(select(OutboxRow).where(OutboxRow.idempotency_key == outbox_key))
        if outbox is None:
            outbox = OutboxRow(
                idempotency_key=outbox_key, enrollment_id=row.id, step_index=ready.step, kind="email",
                account_id=row.account_id, sender=row.sender, recipient=row.recipient, due_at=row.step_due_at or now,
                created_at=now, attempts=0)
            session.add(outbox)
        elif outbox.state != "retry":
            # The unique key says this step already went (or may have gone) out: never send it a second time.
            row.step_index = ready.step
            return self._hold(session, row, f"step {ready.step} already has an outbox entry ({outbox_key}, "
                              f"{outbox.state})", now)
        outbox.state, outbox.subject, outbox.body = "sending", email.subject, email.body
        outbox.message_id, outbox.draft_id = email.message_id, ready.draft_id
        outbox.attempts += 1
        outbox.attempted_at, outbox.lease_token, outbox.lease_until = now, row.lease_token, now + self.lease
        if ready.draft_id is not None:
            draft = session.get(DraftRow, ready.draft_id)
            if draft is not None and draft.status == "approved":
                transition_draft(session, draft, "scheduled", SYSTEM, now, action="schedule",
                                 note=f"sequence {row.sequence_id} step {ready.step}")
                draft.scheduled_for = now
        if ready.first:
            row.subject, row.body = ready.subject, ready.body
        row.step_index = ready.step
        row.status, row.lease_until, row.updated_at = "sending", now + self.lease, now
        session.flush()
        return _Handed(outbox_id=outbox.id, key=outbox_key, attempts=outbox.attempts)

    def _send(self, claim: _Claim, batch: _Batch, ready: _Ready, handed: _Handed) -> StepOutcome:
        """Hand the one message to the transport, then record what happened in a second short transaction."""
        error: SendError | None = None
        try:
            self.transport.send(handed.key, build_message(ready.email))
        except SendError as failed:
            error = failed
        except Exception as unexpected:  # any other failure: ask the transport what happened
            delivered = self.transport.delivered(handed.key)
            detail = f"{type(unexpected).__name__}: {unexpected}"
            if delivered is True:
                error = None
            elif delivered is False:
                error = SendError(f"not handed over: {detail}", failure="retry")
            else:
                error = SendError(f"outcome unknown: {detail}", failure="unknown")
        if error is not None and error.relay:
            batch.relay_down = error.message
        return self._record(claim, handed, error)

    def _record(self, claim: _Claim, handed: _Handed, error: SendError | None) -> StepOutcome:
        now = self.clock()
        with db.transaction(self.factory) as session:
            if error is not None and error.failure == "bounce":
                outbox = session.get(OutboxRow, handed.outbox_id)
                assert outbox is not None
                lock_enrollments(session, email=outbox.recipient)  # the same ordered lock as recording a bounce
            row = self._lock(session, claim.enrollment_id)
            outbox = session.get(OutboxRow, handed.outbox_id, with_for_update=self.postgres)
            assert outbox is not None
            if outbox.state != "sending" or outbox.lease_token != claim.token:
                # The lease ran out mid-send and a recovery resolved the row: leave its verdict alone.
                log.warning("outbox %s (%s) was resolved by a recovery while this worker sent it: %s",
                            outbox.id, outbox.idempotency_key, outbox.state)
                return self._outcome(row, "held", f"send took longer than the lease; recovery marked it "
                                     f"{outbox.state}")
            outbox.lease_token = outbox.lease_until = None
            live = row.status == "sending" and row.lease_token == claim.token  # not stopped meanwhile
            if error is None:
                outbox.state, outbox.sent_at, outbox.transport = "sent", now, self.transport.name
                outbox.detail = None
                if live:
                    self._advance_after_send(session, row, outbox, now)
                return self._outcome(row, "sent", f"{outbox.subject} → {row.recipient}")
            outbox.detail = error.message
            if error.failure == "bounce":
                outbox.state = "bounced"
                record(session, MailEvent(kind="bounce", occurred_at=now, message_id=outbox.message_id,
                                          email=outbox.recipient, external_id=f"smtp:{outbox.message_id}",
                                          detail={"status": str(error.code or ""), "reply": error.message}),
                       now, source="smtp")
                if not live:
                    return self._outcome(row, "exited", error.message)
                return self._exit(session, row, "hard_bounce", error.message, now)
            if error.failure == "retry" and handed.attempts < self.settings.send_retry_limit:
                outbox.state = "retry"
                backoff = timedelta(seconds=self.settings.send_retry_backoff_seconds * 2 ** (handed.attempts - 1))
                if live:
                    row.status, row.next_due_at, row.updated_at = "active", now + backoff, now
                    row.lease_token = row.lease_until = None
                return self._outcome(row, "retrying", f"attempt {handed.attempts} of "
                                     f"{self.settings.send_retry_limit}; next in {_span(backoff)}: {error.message}")
            if error.failure == "unknown":
                outbox.state = "unknown"
                reason = f"outcome unknown: {error.message}"
            else:
                outbox.state = "failed"
                reason = (f"not sent after {handed.attempts} attempts: {error.message}" if error.failure == "retry"
                          else f"not sent: {error.message}")
            outbox.detail = reason
            if not live:
                return self._outcome(row, "held", reason)
            return self._hold(session, row, reason, now)

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
        row.status, row.step_index, row.updated_at = "active", outbox.step_index + 1, now
        row.next_due_at = row.step_due_at = now
        row.lease_token = row.lease_until = None
        seq = self.sequences.get(row.sequence_id)
        if seq is not None and row.step_index >= len(seq.steps):
            row.status, row.next_due_at = "completed", None

    # ------------------------------------------------------------------------------------------ endings

    def _hold(self, session: Session, row: EnrollmentRow, reason: str, now: datetime) -> StepOutcome:
        row.status, row.hold_reason, row.next_due_at, row.updated_at = "held", reason, None, now
        row.lease_token = row.lease_until = None
        session.add(AuditRow(at=now, actor=SYSTEM, action="enrollment.hold", entity="enrollment",
                             entity_id=str(row.id), before=None, after={"step": row.step_index, "reason": reason}))
        return self._outcome(row, "held", reason)

    def _exit(self, session: Session, row: EnrollmentRow, reason: ExitReason, detail: str, now: datetime, *,
              actor: str = SYSTEM) -> StepOutcome:
        row.status, row.exit_reason, row.exit_detail = "exited", reason, detail
        row.exited_at, row.next_due_at, row.updated_at = now, None, now
        row.lease_token = row.lease_until = None
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


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"


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
    sequences = load_sequences(sequences_dir(settings.sequences_dir, settings), templates=template_kinds(settings.prompts_dir))
    return Scheduler(application, sequences, transport or transport_for(settings), clock=clock, followups=followups,
                     factory=factory)


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
        scheduler = build_scheduler(app, clock=clock, factory=factory,
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
