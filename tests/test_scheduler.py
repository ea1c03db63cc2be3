"""The scheduler on a fake clock: windows in the recipient's timezone, waits, follow-up review, caps, the
cooldown across motions, every exit condition, staleness and crash recovery."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from outreach import db
from outreach.engagement import MailEvent, record
from outreach.scheduler import idempotency_key
from outreach.sequence_tables import EnrollmentRow, OutboxRow
from outreach.storage import DraftRow
from outreach.suppression import suppress
from tests.review import ReviewWorld
from tests.sequencing import SEQUENCE, START, CannedFollowups, Setup, build_world, make_setup

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def seq_world(sqlite_url: str, tmp_path: Path) -> Iterator[ReviewWorld]:
    world = build_world(sqlite_url, tmp_path)
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
        row.step_index = 2  # the follow-up email
    setup.clock.set(datetime(2026, 11, 26, 9, 30, tzinfo=UTC))
    report = setup.scheduler.tick()
    assert any(o.kind == "held" and "overdue by" in o.reason for o in report.outcomes), report.outcomes


def test_a_crash_after_handing_over_is_held_for_smtp_and_repaired_for_the_outbox(
    seq_world: ReviewWorld, tmp_path: Path
) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups())
    acme = setup.approve_and_enroll("acme")
    setup.scheduler.tick()  # outside the window: deferred to Tuesday 09:00 Berlin
    setup.clock.set(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    prepared, _ = setup.scheduler._claim_batch()  # the claim commits; the "worker dies" before sending
    assert len(prepared) == 1 and enrollment(setup, acme).status == "sending"

    class Smtpish:
        name = "smtp"

        def send(self, key: str, message: object) -> None:  # pragma: no cover - never reached
            raise AssertionError

        def delivered(self, key: str) -> bool | None:
            return None

    setup.scheduler.transport = Smtpish()
    held = setup.scheduler.recover(all_in_flight=True)
    assert [o.kind for o in held] == ["held"] and "outcome unknown" in held[0].reason
    setup.scheduler.release(acme, actor="ada", was_sent=False)
    setup.scheduler.transport = setup.transport
    report = setup.scheduler.tick()
    assert len(sent(setup)) == 1, (report, enrollment(setup, acme).hold_reason) and len(setup.transport.files(idempotency_key(acme, 0))) == 1
