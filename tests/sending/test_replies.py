"""The IMAP poller against a private Dovecot: replies, auto-replies and RFC 3464 bounces are classified,
matched to our stored Message-IDs, recorded once, and end the enrollment / fill the suppression list.

The ``dovecot`` fixture (:mod:`tests.sending.mailbox`) is a private Dovecot started for the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from outreach.sending.replies import classify, poll
from outreach.sending.suppression import is_suppressed
from outreach.sending.tables import EnrollmentRow, MailEventRow, OutboxRow
from tests.review_world import ReviewWorld
from tests.sending.mailbox import NOW, OURS, PASSWORD, USER, Imap, dsn, free_port, reply
from tests.sequencing import START, CannedFollowups, build_world, make_setup

# ------------------------------------------------------------------------------------------------ classify


def test_classify_a_human_reply() -> None:
    event = classify(reply(OURS), NOW)
    assert event is not None
    assert (event.kind, event.message_id, event.email, event.external_id) == (
        "reply", OURS, "dana@acme.example", "<r1@acme.example>")
    assert event.occurred_at == NOW


@pytest.mark.parametrize(
    ("headers", "subject"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Re: More room for reports"),
        ({"X-Autoreply": "yes"}, "Re: More room for reports"),
        ({"Precedence": "auto_reply"}, "Re: More room for reports"),
        ({"Precedence": "bulk"}, "Re: More room for reports"),
        ({}, "Out of Office: back on Monday"),
        ({}, "Automatic reply: More room for reports"),
        ({}, "Abwesenheitsnotiz"),
    ],
)
def test_classify_auto_replies(headers: dict[str, str], subject: str) -> None:
    event = classify(reply(OURS, headers=headers, subject=subject), NOW)
    assert event is not None and event.kind == "auto_reply" and event.message_id == OURS


def test_auto_submitted_no_is_a_human_reply() -> None:
    event = classify(reply(OURS, headers={"Auto-Submitted": "no"}), NOW)
    assert event is not None and event.kind == "reply"


def test_classify_an_rfc3464_hard_bounce_and_a_delay() -> None:
    hard = classify(dsn(OURS, "dana@acme.example"), NOW)
    assert hard is not None
    assert (hard.kind, hard.message_id, hard.email, hard.detail["status"]) == (
        "bounce", OURS, "dana@acme.example", "5.1.1")
    delayed = classify(dsn(OURS, "dana@acme.example", action="delayed", status="4.4.7", own_id="<d2@mx>"), NOW)
    assert delayed is not None and delayed.kind == "soft_bounce"


def test_classify_opt_outs_by_mailto_and_by_reply() -> None:
    mailto = EmailMessage()
    mailto["From"], mailto["To"] = "Dana <dana@acme.example>", "unsubscribe@ledgerly.example"
    mailto["Subject"], mailto["Message-ID"] = "unsubscribe Zx8_kq-3YbT1mNw0pLr5", "<u1@acme.example>"
    mailto.set_content("")
    event = classify(mailto.as_bytes(), NOW)
    assert event is not None and (event.kind, event.email) == ("unsubscribe", "dana@acme.example")
    assert event.detail["token"] == "Zx8_kq-3YbT1mNw0pLr5" and event.message_id is None
    by_reply = classify(reply(OURS).replace(b"Sounds good, can we talk on Thursday?", b"Unsubscribe.\n\n> Hi Dana"),
                        NOW)
    assert by_reply is not None and (by_reply.kind, by_reply.message_id) == ("unsubscribe", OURS)
    # Quoting our footer ("reply with unsubscribe") in an ordinary reply is not an opt-out.
    quoting = classify(reply(OURS).replace(b"Sounds good, can we talk on Thursday?",
                                           b"Yes please.\n\n> reply with unsubscribe"), NOW)
    assert quoting is not None and quoting.kind == "reply"


def test_mail_that_refers_to_nothing_is_not_an_event() -> None:
    message = EmailMessage()
    message["From"], message["Subject"], message["Message-ID"] = "x@y.example", "Newsletter", "<n@y.example>"
    message.set_content("hello")
    assert classify(message.as_bytes(), NOW) is None


# ------------------------------------------------------------------------------------------------ poll


@pytest.fixture
def seq_world(sqlite_url: str, tmp_path: Path) -> Iterator[ReviewWorld]:
    world = build_world(sqlite_url, tmp_path)
    yield world
    world.close()


def test_poll_end_to_end_against_dovecot(dovecot: Imap, seq_world: ReviewWorld, tmp_path: Path) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups())
    acme, globex = setup.approve_and_enroll("acme"), setup.approve_and_enroll("globex")
    setup.scheduler.run_until(START + timedelta(days=5), setup.clock)  # both first touches go out Tuesday
    with seq_world.factory() as session:
        ours = {row.enrollment_id: row.message_id for row in session.scalars(select(OutboxRow))}
    assert set(ours) == {acme, globex} and all(ours.values())
    acme_id, globex_id = ours[acme], ours[globex]
    assert acme_id is not None and globex_id is not None

    dovecot.append(reply(acme_id, headers={"Auto-Submitted": "auto-replied"}, subject="Out of office",
                         own_id="<ooo@acme.example>"))
    dovecot.append(reply("<somebody-else@other.example>", sender="lee@other.example",  # not about our mail
                         own_id="<r0@other.example>"))
    # A colleague's reply that names our message only in References: matched by the Message-ID alone.
    raw = reply("<their-earlier@acme.example>", sender="lee@acme.example", own_id="<r1@acme.example>").replace(
        b"References: <their-earlier@acme.example>", f"References: {acme_id}".encode())
    dovecot.append(raw)
    dovecot.append(dsn(globex_id, "dana@globex.example"))
    dovecot.append(b"From: news@y.example\r\nSubject: Newsletter\r\nMessage-ID: <n@y.example>\r\n\r\nhello\r\n")
    dovecot.append(b"From: lee@other.example\r\nTo: unsubscribe@ledgerly.example\r\nSubject: unsubscribe "
                   b"Zx8_kq-3YbT1mNw0pLr5\r\nMessage-ID: <u1@other.example>\r\n\r\n\r\n")  # List-Unsubscribe mailto
    assert dovecot.unseen() == 6

    settings = dovecot.settings(tmp_path, seq_world.url)
    report = poll(settings, seq_world.factory, clock=setup.clock)
    assert (report.read, report.replies, report.auto_replies, report.bounces, report.unsubscribes,
            report.unmatched) == (6, 1, 1, 1, 1, 2)
    assert dovecot.unseen() == 0  # marked \Seen once recorded
    again = poll(settings, seq_world.factory, clock=setup.clock)
    assert again.read == 0

    with seq_world.factory() as session:
        events = {row.kind: row for row in session.scalars(select(MailEventRow))}
        assert set(events) == {"auto_reply", "reply", "bounce", "unsubscribe"}
        opted_out = is_suppressed(session, "lee@other.example")
        assert opted_out is not None and opted_out.reason == "unsubscribe"
        assert (events["reply"].enrollment_id, events["reply"].email) == (acme, "lee@acme.example")
        assert events["auto_reply"].enrollment_id == acme
        assert events["bounce"].enrollment_id == globex and events["bounce"].email == "dana@globex.example"
        suppressed = is_suppressed(session, "dana@globex.example")
        assert suppressed is not None and suppressed.reason == "hard_bounce"
        assert is_suppressed(session, "dana@acme.example") is None  # a reply is not an opt-out

    setup.scheduler.run_until(START + timedelta(days=30), setup.clock)
    with seq_world.factory() as session:
        rows = {row.id: row for row in session.scalars(select(EnrollmentRow))}
        assert (rows[acme].status, rows[acme].exit_reason) == ("exited", "replied")
        assert (rows[globex].status, rows[globex].exit_reason) == ("exited", "hard_bounce")
        assert session.scalar(select(OutboxRow).where(OutboxRow.kind == "email", OutboxRow.step_index > 0)) is None


def test_replies_poll_command(dovecot: Imap, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from outreach import db
    from outreach.cli.main import app

    dovecot.append(dsn("<gone@ledgerly.example>", "old@initech.example"))  # a bounce for mail we no longer track
    dovecot.append(b"From: news@y.example\r\nSubject: Newsletter\r\nMessage-ID: <n@y.example>\r\n\r\nhello\r\n")
    for name, value in {"OUTREACH_DATABASE_URL": sqlite_url, "OUTREACH_IMAP_HOST": "127.0.0.1",
                        "OUTREACH_IMAP_PORT": str(dovecot.port), "OUTREACH_IMAP_USER": USER,
                        "OUTREACH_IMAP_PASSWORD": PASSWORD, "OUTREACH_IMAP_SECURITY": "none"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["replies", "poll"])
    assert result.exit_code == 0, result.output
    assert ("2 messages read: 0 replies, 0 auto-replies ignored, 1 bounces, 0 unsubscribes, 1 not about our emails"
            in result.output)
    engine = db.make_engine(sqlite_url)
    with db.session_factory(engine)() as session:
        assert is_suppressed(session, "old@initech.example") is not None  # a hard bounce suppresses regardless
    engine.dispose()
    monkeypatch.setenv("OUTREACH_IMAP_PASSWORD", "wrong")
    refused = CliRunner().invoke(app, ["replies", "poll"])
    assert refused.exit_code == 2 and f"refused the login for {USER}" in refused.output, refused.output
    monkeypatch.setenv("OUTREACH_IMAP_PORT", str(free_port()))
    unreachable = CliRunner().invoke(app, ["replies", "poll"])
    assert unreachable.exit_code == 2 and "cannot be reached" in unreachable.output, unreachable.output
