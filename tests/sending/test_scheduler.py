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
from outreach.review.storage import DraftRow, ReviewActionRow
from outreach.sending.engagement import MailEvent, record
from outreach.sending.scheduler import idempotency_key
from outreach.sending.suppression import suppress
from outreach.sending.tables import EnrollmentRow, OutboxRow
from tests.review_world import ReviewWorld
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
    with setup.world.factory() as session:  # the auto-approved follow-up went back to review, not out
        held = session.scalar(select(EnrollmentRow).order_by(EnrollmentRow.id))
        assert held is not None and held.status == "held" and held.pending_draft_id is not None
        follow_up = session.get(DraftRow, held.pending_draft_id)
        assert follow_up is not None and follow_up.status == "pending_review"


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
