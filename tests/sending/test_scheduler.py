"""The scheduler on a fake clock: windows in the recipient's timezone, waits, follow-up review, caps, the
cooldown across motions, every exit condition, staleness and crash recovery."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from outreach import db
from outreach.engine.data import Dataset
from outreach.engine.decisions import Decision
from outreach.errors import ConflictError
from outreach.review.queue import DraftInput
from outreach.review.storage import DraftRow, ReviewActionRow
from outreach.review.users import set_profile
from outreach.sending.engagement import MailEvent, record
from outreach.sending.scheduler import idempotency_key
from outreach.sending.suppression import is_suppressed, suppress
from outreach.sending.tables import EnrollmentRow, MailEventRow, OutboxRow
from outreach.sending.transports import OutboxTransport, SendError
from tests.review_world import ReviewWorld
from tests.sequencing import SEQUENCE, START, CannedFollowups, Setup, build_world, make_setup

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def seq_world(sqlite_url: str, tmp_path: Path) -> Iterator[ReviewWorld]:
    world = build_world(sqlite_url, tmp_path)
    yield world
    world.close()


@pytest.fixture
def both_world(db_url: str, tmp_path: Path) -> Iterator[ReviewWorld]:
    """The same world on SQLite and on PostgreSQL (row and advisory locks are real there)."""
    world = build_world(db_url, tmp_path)
    yield world
    world.close()


def enrollment(setup: Setup, enrollment_id: int) -> EnrollmentRow:
    with setup.world.factory() as session:
        row = session.get(EnrollmentRow, enrollment_id)
        assert row is not None
        return row


def sent(setup: Setup) -> list[OutboxRow]:
    with setup.world.factory() as session:
        return list(session.scalars(select(OutboxRow).where(OutboxRow.kind == "email").order_by(OutboxRow.id)))


def test_a_month_first_touch_reviewed_follow_up_then_task(seq_world: ReviewWorld, tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path)  # the real drafting library writes the follow-up
    with db.transaction(seq_world.factory) as session:  # acme's owner signs, as From says (not the catalog's sender)
        set_profile(session, "maya@ledgerly.example", name="Maya Chen", title="Account Manager")
    enrollment_id = setup.approve_and_enroll("acme")
    report = setup.scheduler.run_until(START + timedelta(days=5), setup.clock)
    first = sent(setup)
    assert len(first) == 1 and report.count("sent") == 1
    local = first[0].sent_at.astimezone(BERLIN) if first[0].sent_at else None
    # Friday enrollment → the first Tue–Thu 09:00–11:30 slot in Berlin: Tuesday 24 November, 09:00.
    assert local == datetime(2026, 11, 24, 9, 0, tzinfo=BERLIN)
    # 3 business days later (Friday) the follow-up is drafted into the review queue and waits.
    setup.scheduler.run_until(START + timedelta(days=8), setup.clock)
    row = enrollment(setup, enrollment_id)
    assert row.status == "waiting_review" and row.pending_draft_id is not None, (row.exit_reason, row.exit_detail)
    with setup.world.factory() as session:
        follow_up = session.get(DraftRow, row.pending_draft_id)
        assert follow_up is not None and follow_up.status == "pending_review"
        assert follow_up.versions[-1].template_name == "followup"
        assert follow_up.versions[-1].body.rstrip().endswith("Maya Chen\nAccount Manager\nLedgerly"), \
            follow_up.versions[-1].body
        version = follow_up.version
    setup.world.queue.approve(setup.world.admin, row.pending_draft_id, version)
    setup.scheduler.run_until(START + timedelta(days=30), setup.clock)
    emails = sent(setup)
    assert len(emails) == 2
    second = emails[1]
    assert second.subject == f"Re: {emails[0].subject}"
    assert second.sent_at is not None and second.sent_at.astimezone(BERLIN).weekday() in (1, 2, 3)
    files = setup.transport.files(idempotency_key(enrollment_id, second.step_index))
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert str(message["In-Reply-To"]).strip() == emails[0].message_id
    assert emails[0].message_id in str(message["References"])
    final = enrollment(setup, enrollment_id)
    assert final.status in ("completed", "exited")
    with setup.world.factory() as session:
        assert session.get(DraftRow, setup.world.draft_ids["acme"]).status == "sent"  # type: ignore[union-attr]


def test_auto_send_and_every_send_inside_the_window(seq_world: ReviewWorld, tmp_path: Path) -> None:
    sequence = ("id: test-upsell\nmotions: [upsell]\nauto_send: true\nwindow: {days: [mon, fri], start: '14:00', "
                "end: '15:00'}\nsteps:\n  - kind: email\n  - kind: wait\n    duration: 26 hours\n"
                "  - kind: email\n    prompt: followup\n")
    setup = make_setup(seq_world, tmp_path, sequence=sequence, followups=CannedFollowups())
    for account in ("acme", "globex"):
        setup.approve_and_enroll(account)
    setup.scheduler.run_until(START + timedelta(days=10), setup.clock)
    emails = sent(setup)
    assert len(emails) == 4
    for email in emails:
        assert email.sent_at is not None
        local = email.sent_at.astimezone(BERLIN)
        assert local.weekday() in (0, 4) and 14 <= local.hour < 15


def test_a_reply_a_second_before_the_follow_up_stops_it(seq_world: ReviewWorld, tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups(), )
    enrollment_id = setup.approve_and_enroll("acme")
    setup.scheduler.run_until(START + timedelta(days=5), setup.clock)
    first = sent(setup)[0]
    with db.transaction(setup.world.factory) as session:
        record(session, MailEvent(kind="auto_reply", occurred_at=setup.clock(), message_id=first.message_id,
                                  external_id="<ooo@x>"), setup.clock(), source="test")
    setup.scheduler.run_until(START + timedelta(days=7), setup.clock)
    assert enrollment(setup, enrollment_id).status != "exited"  # auto-replies never end a sequence
    with db.transaction(setup.world.factory) as session:
        record(session, MailEvent(kind="reply", occurred_at=setup.clock(), message_id=first.message_id,
                                  external_id="<reply@x>"), setup.clock(), source="test")
    setup.scheduler.run_until(START + timedelta(days=30), setup.clock)
    row = enrollment(setup, enrollment_id)
    assert (row.status, row.exit_reason) == ("exited", "replied")
    assert len(sent(setup)) == 1


def test_exit_conditions_are_recorded_with_reasons(seq_world: ReviewWorld, tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups())
    acme, globex = setup.approve_and_enroll("acme"), setup.approve_and_enroll("globex")
    now = setup.clock()
    with db.transaction(setup.world.factory) as session:
        suppress(session, "dana@acme.example", "unsubscribe", now, source="test")
        record(session, MailEvent(kind="conversion", occurred_at=now, account_id="globex"), now, source="test")
    setup.scheduler.run_until(START + timedelta(days=30), setup.clock)
    assert (enrollment(setup, acme).exit_reason, enrollment(setup, globex).exit_reason) == (
        "unsubscribed", "converted")
    assert sent(setup) == []
    with setup.world.factory() as session:  # the first-touch drafts did not stay "scheduled" forever
        assert session.get(DraftRow, setup.world.draft_ids["acme"]).status == "expired"  # type: ignore[union-attr]


def test_manual_stop_and_bounce(seq_world: ReviewWorld, tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups())
    acme, globex = setup.approve_and_enroll("acme"), setup.approve_and_enroll("globex")
    setup.scheduler.stop(acme, actor="ada@ledgerly.example", note="customer asked on a call")
    with db.transaction(setup.world.factory) as session:
        record(session, MailEvent(kind="bounce", occurred_at=setup.clock(), email="dana@globex.example"),
               setup.clock(), source="test")
    setup.scheduler.run_until(START + timedelta(days=10), setup.clock)
    assert enrollment(setup, acme).exit_reason == "manual_stop"
    assert enrollment(setup, globex).exit_reason == "hard_bounce"


def test_health_gate_failing_at_send_time_exits(seq_world: ReviewWorld, tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups())
    acme = setup.approve_and_enroll("acme")
    accounts = setup.world.data_dir / "accounts.csv"
    text = accounts.read_text(encoding="utf-8")
    lines = text.splitlines()
    header = lines[0].split(",")
    veto = header.index("cs_veto")
    fixed = [lines[0]] + [",".join(v if i != veto or not line.startswith("acme,") else "true"
                                   for i, v in enumerate(line.split(","))) for line in lines[1:]]
    accounts.write_text("\n".join(fixed) + "\n", encoding="utf-8")
    setup.scheduler.run_until(START + timedelta(days=5), setup.clock)
    row = enrollment(setup, acme)
    assert (row.status, row.exit_reason) == ("exited", "health_gate")
    assert "cs_veto" in (row.exit_detail or "")


def test_cooldown_across_motions_blocks_a_second_sequence(seq_world: ReviewWorld, tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups())
    setup.approve_and_enroll("acme")
    setup.scheduler.run_until(START + timedelta(days=5), setup.clock)
    # Another motion's enrollment for the same account: the gate's last_contacted hook sees the send.
    with db.transaction(setup.world.factory) as session:
        first = session.scalar(select(EnrollmentRow))
        assert first is not None
        clone = EnrollmentRow(**{c.name: getattr(first, c.name) for c in EnrollmentRow.__table__.columns
                                 if c.name not in ("id", "draft_id")})
        clone.motion, clone.status, clone.step_index, clone.next_due_at = "cross_sell", "active", 0, setup.clock()
        session.add(clone)
        session.flush()
        clone_id = clone.id
    setup.scheduler.run_until(START + timedelta(days=6), setup.clock)
    row = enrollment(setup, clone_id)
    assert (row.exit_reason, "cooldown" in (row.exit_detail or "")) == ("health_gate", True)


def test_daily_cap_defers_and_stale_steps_go_back_to_review(seq_world: ReviewWorld, tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path, sequence=SEQUENCE.replace("motions:", "auto_send: true\nmotions:"),
                       followups=CannedFollowups(), send_daily_cap_per_sender=1)
    setup.world.queue.approve(setup.world.admin, setup.world.draft_ids["acme"], setup.world.version("acme"))
    setup.world.queue.approve(setup.world.admin, setup.world.draft_ids["globex"], setup.world.version("globex"))
    # globex is owned by sam; give both drafts the same sender to hit maya's cap of 1 per day.
    with db.transaction(setup.world.factory) as session:
        session.get(DraftRow, setup.world.draft_ids["globex"]).owner_email = "maya@ledgerly.example"  # type: ignore[union-attr]
    for account in ("acme", "globex"):
        setup.scheduler.enroll(setup.world.draft_ids[account], actor="ada", data_dir=setup.world.data_dir)
    setup.scheduler.run_until(START + timedelta(days=5, hours=6), setup.clock)
    days = sorted(e.sent_at.astimezone(BERLIN).date() for e in sent(setup) if e.sent_at)
    assert len(days) == 2 and days[0] != days[1]  # one per day for that sender
    # An outage: a due step found 30 hours late is held, not sent stale.
    with db.transaction(setup.world.factory) as session:
        row = session.scalar(select(EnrollmentRow).order_by(EnrollmentRow.id))
        assert row is not None
        row.status, row.next_due_at = "active", setup.clock() - timedelta(hours=30)
        row.step_due_at = row.next_due_at  # the schedule said so: the stale guard counts from here
        row.step_index = 2  # the follow-up email
    setup.clock.set(datetime(2026, 11, 26, 9, 30, tzinfo=UTC))
    report = setup.scheduler.tick()
    assert any(o.kind == "held" and "overdue by" in o.reason for o in report.outcomes), report.outcomes
    with setup.world.factory() as session:  # the auto-approved follow-up went back to review, not out
        held = session.scalar(select(EnrollmentRow).order_by(EnrollmentRow.id))
        assert held is not None and held.status == "held" and held.pending_draft_id is not None
        follow_up = session.get(DraftRow, held.pending_draft_id)
        assert follow_up is not None and follow_up.status == "pending_review"


class Crash(BaseException):
    """The worker process dying (SIGKILL) at this point: nothing after it runs, no handler sees it."""


class Flaky:
    """A transport around the outbox one: crashes (after or before handing over) on the Nth message, or
    fails the way ``failures`` say, one failure per send, in order. ``knowable=False`` makes it answer like
    SMTP after a crash (the outcome cannot be looked up)."""

    def __init__(self, inner: OutboxTransport, *, crash_on: int | None = None, hand_over_first: bool = True,
                 knowable: bool = True, failures: list[SendError] | None = None) -> None:
        self.inner, self.crash_on, self.hand_over_first, self.knowable = inner, crash_on, hand_over_first, knowable
        self.failures = list(failures or [])
        self.name = "smtp" if not knowable else inner.name
        self.calls = 0

    def send(self, key: str, message: EmailMessage) -> None:
        self.calls += 1
        if self.calls == self.crash_on:
            if self.hand_over_first:
                self.inner.send(key, message)
            raise Crash
        if self.failures:
            raise self.failures.pop(0)
        self.inner.send(key, message)

    def delivered(self, key: str) -> bool | None:
        return self.inner.delivered(key) if self.knowable else None


def tuesday(setup: Setup, accounts: tuple[str, ...] = ("acme",)) -> list[int]:
    """Enroll the accounts on Friday (outside the window) and move the clock to Tuesday 09:00 Berlin."""
    ids = [setup.approve_and_enroll(account) for account in accounts]
    setup.scheduler.tick()
    setup.clock.set(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    return ids


def test_a_crash_mid_batch_leaves_exactly_one_message_in_doubt(seq_world: ReviewWorld, tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups(), mail_sender="maya@ledgerly.example")
    acme, globex, initech = tuesday(setup, ("acme", "globex", "initech"))
    setup.scheduler.transport = Flaky(setup.transport, crash_on=2, knowable=False)
    with pytest.raises(Crash):
        setup.scheduler.tick()  # the first is sent and recorded, the second handed over, then the worker dies
    rows = {row.enrollment_id: row.state for row in sent(setup)}
    assert rows == {acme: "sent", globex: "sending"}  # the third was claimed, never marked sending
    assert enrollment(setup, initech).status == "active"

    held = setup.scheduler.recover(all_in_flight=True)  # SMTP cannot tell: that one message is held, only it
    assert [(o.enrollment_id, o.kind) for o in held] == [(globex, "held")] and "outcome unknown" in held[0].reason
    with pytest.raises(ConflictError, match="unknown outcome"):
        setup.scheduler.release(globex, actor="ada")
    assert "recorded as sent" in setup.scheduler.release(globex, actor="ada", was_sent=True)  # the .eml is there
    setup.scheduler.transport = setup.transport
    setup.scheduler.tick(recover_all=True)  # the dead worker's claim on initech is void: it goes out now
    assert {row.enrollment_id: row.state for row in sent(setup)} == {acme: "sent", globex: "sent", initech: "sent"}
    for enrollment_id in (acme, globex, initech):
        assert len(setup.transport.files(idempotency_key(enrollment_id, 0))) == 1


def test_the_outbox_transport_repairs_a_crash_either_way(seq_world: ReviewWorld, tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups())
    acme, globex = tuesday(setup, ("acme", "globex"))
    setup.scheduler.transport = Flaky(setup.transport, crash_on=1, hand_over_first=True)
    with pytest.raises(Crash):
        setup.scheduler.tick()
    assert [o.kind for o in setup.scheduler.recover(all_in_flight=True)] == ["recovered"]  # the file is there
    setup.scheduler.transport = Flaky(setup.transport, crash_on=1, hand_over_first=False)
    with pytest.raises(Crash):
        setup.scheduler.tick(recover_all=True)
    recovered = setup.scheduler.recover(all_in_flight=True)  # no file: certainly not sent, due again
    assert [o.reason for o in recovered] == ["not handed over before a crash; due again"]
    setup.scheduler.transport = setup.transport
    setup.scheduler.tick(recover_all=True)
    assert [row.state for row in sent(setup)] == ["sent", "sent"]
    assert all(len(setup.transport.files(idempotency_key(e, 0))) == 1 for e in (acme, globex))


def test_a_step_claimed_before_a_crash_is_sent_late_never_it_goes_back_to_review(seq_world: ReviewWorld,
                                                                                 tmp_path: Path) -> None:
    """Claimed (and even handed to the transport's door) by a worker that died; the next worker comes 30 h later.
    The stale guard counts from the step's own due time, not from the recovery."""
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups())
    acme, globex = tuesday(setup, ("acme", "globex"))
    setup.scheduler.transport = Flaky(setup.transport, crash_on=2, hand_over_first=False)
    claims = setup.scheduler._claim(ignore_leases=False)  # a worker claims both …
    assert {c.enrollment_id for c in claims} == {acme, globex}
    setup.clock.advance(timedelta(seconds=1))
    with pytest.raises(Crash):  # … another pass (say, --recover-all by mistake) dies at globex's door
        setup.scheduler.tick(recover_all=True)
    assert [row.enrollment_id for row in sent(setup) if row.state == "sent"] == [acme]
    setup.scheduler.transport = setup.transport
    setup.clock.advance(timedelta(hours=30))  # Wednesday 14:00 UTC: both leases ran out long ago
    report = [o for o in setup.scheduler.tick().outcomes if o.enrollment_id == globex]
    assert [o.kind for o in report] == ["recovered", "held"], report
    assert "overdue by 30 h" in report[1].reason
    row = enrollment(setup, globex)
    assert row.status == "held" and "pending review again" in (row.hold_reason or "")
    assert len(setup.transport.files(idempotency_key(globex, 0))) == 0


def test_a_certain_failure_is_retried_with_backoff_on_the_same_message_id(seq_world: ReviewWorld,
                                                                          tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups(), send_retry_backoff_seconds=60)
    tuesday(setup)
    refused = SendError("SMTP relay: not sent, RCPT TO got 451 4.3.0 Try again later (temporary)", failure="retry")
    setup.scheduler.transport = Flaky(setup.transport, failures=[refused, refused])
    kinds = []
    for advance in (0, 60, 120):
        setup.clock.advance(timedelta(seconds=advance))
        kinds += [o.kind for o in setup.scheduler.tick().outcomes]
    assert kinds == ["retrying", "retrying", "sent", "deferred"]  # then the wait step
    (row,) = sent(setup)
    assert (row.state, row.attempts) == ("sent", 3)
    message = message_from_bytes(setup.transport.files(row.idempotency_key)[0].read_bytes(), policy=policy.default)
    assert str(message["Message-ID"]).strip() == row.message_id


def test_retries_run_out_then_the_step_is_held_and_release_tries_again(seq_world: ReviewWorld,
                                                                       tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups(), send_retry_limit=2,
                       send_retry_backoff_seconds=60)
    (acme,) = tuesday(setup)
    down = SendError("SMTP 127.0.0.1:2525: not sent, connecting failed (ConnectionRefusedError)", failure="retry",
                     relay=True)
    setup.scheduler.transport = Flaky(setup.transport, failures=[down, down])
    first = setup.scheduler.tick()
    assert first.relay_down and [o.kind for o in first.outcomes] == ["retrying"]
    setup.clock.advance(timedelta(seconds=60))
    second = setup.scheduler.tick()
    assert [o.kind for o in second.outcomes] == ["held"]
    row = enrollment(setup, acme)
    assert row.hold_reason == ("not sent after 2 attempts: SMTP 127.0.0.1:2525: not sent, connecting failed "
                               "(ConnectionRefusedError)")
    assert setup.scheduler.held_failed() == [acme]
    with pytest.raises(ConflictError, match="did not go out"):
        setup.scheduler.release(acme, actor="ada", was_sent=True)
    assert "tried again" in setup.scheduler.release(acme, actor="ada")
    assert [o.kind for o in setup.scheduler.tick().outcomes] == ["sent", "deferred"]
    assert [(r.state, r.attempts) for r in sent(setup)] == [("sent", 1)]


def test_a_permanent_refusal_of_the_recipient_is_a_bounce(seq_world: ReviewWorld, tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups())
    (acme,) = tuesday(setup)
    setup.scheduler.transport = Flaky(setup.transport, failures=[SendError(
        "SMTP relay: the recipient was refused at RCPT TO: 550 5.1.1 no such user", failure="bounce", code=550)])
    assert [o.kind for o in setup.scheduler.tick().outcomes] == ["exited"]
    row = enrollment(setup, acme)
    assert (row.status, row.exit_reason) == ("exited", "hard_bounce")
    assert [r.state for r in sent(setup)] == ["bounced"]
    with setup.world.factory() as session:
        suppressed = is_suppressed(session, "dana@acme.example")
        assert suppressed is not None and suppressed.reason == "hard_bounce"
        event = session.scalar(select(MailEventRow).where(MailEventRow.kind == "bounce"))
        assert event is not None and event.enrollment_id == acme and event.source == "smtp"


def test_a_reply_that_lands_while_the_follow_up_is_drafted_stops_it(both_world: ReviewWorld, tmp_path: Path) -> None:
    """The follow-up is drafted outside any write transaction (so the reply can be recorded at all, on
    SQLite too) and the hand-over re-checks replies right before the transport."""

    class ReplyWhileDrafting(CannedFollowups):
        def __call__(self, decision: Decision, dataset: Dataset, template: str, previous_subject: str) -> DraftInput:
            draft = super().__call__(decision, dataset, template, previous_subject)
            with db.transaction(setup.world.factory) as session:
                first = session.scalar(select(OutboxRow).where(OutboxRow.step_index == 0))
                assert first is not None
                record(session, MailEvent(kind="reply", occurred_at=setup.clock(), message_id=first.message_id,
                                          external_id="<late-reply@acme.example>"), setup.clock(), source="test")
            return draft

    sequence = SEQUENCE.replace("motions:", "auto_send: true\nmotions:")
    setup = make_setup(both_world, tmp_path, sequence=sequence, followups=ReplyWhileDrafting())
    acme = setup.approve_and_enroll("acme")
    setup.scheduler.run_until(START + timedelta(days=30), setup.clock)
    row = enrollment(setup, acme)
    assert (row.status, row.exit_reason) == ("exited", "replied")
    assert [r.step_index for r in sent(setup)] == [0]  # the first touch only: no follow-up after the reply


def test_the_gate_is_decided_once_for_a_claimed_batch(both_world: ReviewWorld, tmp_path: Path) -> None:
    setup = make_setup(both_world, tmp_path, followups=CannedFollowups(), mail_sender="maya@ledgerly.example")
    tuesday(setup, ("acme", "globex", "initech"))  # Friday's pass decided the three accounts: one engine run
    assert setup.scheduler.gates.engine_runs == 1
    assert setup.scheduler.tick().count("sent") == 3
    assert setup.scheduler.gates.engine_runs == 2  # a new analysis date: one more run for the whole batch


def test_a_stale_first_touch_goes_back_to_review_and_waits_for_it(seq_world: ReviewWorld, tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups())
    acme = setup.approve_and_enroll("acme")
    draft_id = setup.world.draft_ids["acme"]
    setup.scheduler.tick()  # Friday: outside the window, due Tuesday 09:00 Berlin
    assert enrollment(setup, acme).next_due_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    # The workers were down from Monday until Wednesday evening, when the window is closed again: 34 h late.
    setup.clock.set(datetime(2026, 11, 25, 18, 0, tzinfo=UTC))
    report = setup.scheduler.tick()
    assert [o.kind for o in report.outcomes] == ["held"] and "overdue by 34 h" in report.outcomes[0].reason
    row = enrollment(setup, acme)
    assert row.status == "held" and f"draft {draft_id} is pending review again" in (row.hold_reason or "")
    with setup.world.factory() as session:
        draft = session.get(DraftRow, draft_id)
        assert draft is not None and draft.status == "pending_review" and draft.scheduled_for is None
        last = session.scalar(select(ReviewActionRow).where(ReviewActionRow.draft_id == draft_id)
                              .order_by(ReviewActionRow.id.desc()).limit(1))
        assert last is not None and (last.action, last.from_status, last.actor) == (
            "return_to_review", "scheduled", "scheduler")
    assert sent(setup) == []

    # Released before anyone re-reviewed it: it waits for the review instead of sending.
    setup.scheduler.release(acme, actor="ada@ledgerly.example")
    assert setup.scheduler.tick().count("waiting_review") == 1
    # The rep rewrites the subject and approves; the next window sends the version approved now.
    version = setup.world.version("acme")
    detail = setup.world.queue.edit(setup.world.admin, draft_id, version, subject="Acme: reports, revisited",
                                    body="Hi Dana,\n\nStill hitting the reports cap?\n\nMaya")
    setup.world.queue.approve(setup.world.admin, draft_id, detail.summary.version)
    setup.scheduler.run_until(datetime(2026, 11, 27, 0, 0, tzinfo=UTC), setup.clock)
    emails = sent(setup)
    assert [e.subject for e in emails] == ["Acme: reports, revisited"]
    assert emails[0].sent_at is not None and emails[0].sent_at.astimezone(BERLIN) == datetime(
        2026, 11, 26, 9, 0, tzinfo=BERLIN)
    with setup.world.factory() as session:
        assert session.get(DraftRow, draft_id).status == "sent"  # type: ignore[union-attr]


def test_a_draft_rejected_after_going_back_to_review_ends_the_enrollment(seq_world: ReviewWorld,
                                                                         tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups())
    acme = setup.approve_and_enroll("acme")
    setup.clock.set(START + timedelta(hours=30))  # no worker ran at all: 30 h late, Saturday
    assert setup.scheduler.tick().count("held") == 1
    draft_id = setup.world.draft_ids["acme"]
    setup.world.queue.reject(setup.world.admin, draft_id, setup.world.version("acme"), "tone")
    setup.scheduler.release(acme, actor="ada@ledgerly.example")
    report = setup.scheduler.tick()
    row = enrollment(setup, acme)
    assert (row.status, row.exit_reason) == ("exited", "review_rejected"), report.outcomes
    assert sent(setup) == []


def test_a_follow_up_version_that_earned_auto_approval_skips_review(seq_world: ReviewWorld, tmp_path: Path) -> None:
    """Registry `auto_approve` (off by default): after N clean approvals of followup v1, the next follow-up
    it writes is approved by the system and sent without waiting for a rep."""
    from outreach.drafting.registry import Registry
    from tests.tuning_helpers import copy_prompts

    prompts = copy_prompts(tmp_path / "prompts")
    current = Registry.open(prompts).resolve("followup")  # the shipped production version
    registry = prompts / "registry.yaml"
    registry.write_text(registry.read_text() + "auto_approve: {enabled: true, min_approvals: 2}\n")
    setup = make_setup(seq_world, tmp_path, prompts_dir=prompts, mail_sender="maya@ledgerly.example")
    earlier = [setup.approve_and_enroll(account) for account in ("acme", "globex")]
    setup.scheduler.run_until(START + timedelta(days=8), setup.clock)
    for enrollment_id in earlier:  # the first two follow-ups wait for a rep, who approves them as written
        row = enrollment(setup, enrollment_id)
        assert row.status == "waiting_review" and row.pending_draft_id is not None
        with setup.world.factory() as session:
            draft = session.get(DraftRow, row.pending_draft_id)
            assert draft is not None and draft.versions[0].template_version == current
            version = draft.version
        setup.world.queue.approve(setup.world.admin, row.pending_draft_id, version)
    third = setup.approve_and_enroll("initech")
    setup.scheduler.run_until(START + timedelta(days=30), setup.clock)
    row = enrollment(setup, third)
    assert row.status in ("completed", "exited"), (row.status, row.exit_reason, row.exit_detail, row.hold_reason)
    with setup.world.factory() as session:
        follow_ups = [d for d in session.scalars(select(DraftRow).where(DraftRow.account_id == "initech"))
                      if d.versions[0].template_name == "followup"]
        assert len(follow_ups) == 1
        follow_up = follow_ups[0]
        assert follow_up.status == "sent", follow_up.status
        notes = [a.note or "" for a in session.scalars(
            select(ReviewActionRow).where(ReviewActionRow.draft_id == follow_up.id, ReviewActionRow.action == "approve"))]
    assert any(note.startswith(f"auto-approved: followup v{current} earned it") for note in notes), notes
