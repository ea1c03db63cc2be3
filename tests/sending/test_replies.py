"""The IMAP poller against a private Dovecot: replies, auto-replies and RFC 3464 bounces are classified,
matched to our stored Message-IDs, recorded once, and end the enrollment / fill the suppression list.

The fixture starts ``/usr/sbin/dovecot -F`` with a throwaway config (127.0.0.1, a free port, no TLS, a
passwd-file user, maildir in a temp dir) and delivers messages with IMAP APPEND. Without Dovecot the tests skip
with a message; under ``CI=true`` they fail instead (``.ci/run`` installs ``dovecot-imapd``).
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from outreach.sending.replies import classify, poll
from outreach.sending.suppression import is_suppressed
from outreach.sending.tables import EnrollmentRow, MailEventRow, OutboxRow
from outreach.settings import Settings
from tests.review_world import ReviewWorld
from tests.sequencing import START, CannedFollowups, build_world, make_setup

DOVECOT = Path("/usr/sbin/dovecot")
USER, PASSWORD = "replies@ledgerly.example", "imap secret"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
OURS = "<first.abc123@ledgerly.example>"


@dataclass
class Imap:
    port: int
    log: Path

    def append(self, raw: bytes) -> None:
        client = imaplib.IMAP4("127.0.0.1", self.port)
        try:
            client.login(USER, PASSWORD)
            status, detail = client.append("INBOX", None, None, raw)
            assert status == "OK", detail
        finally:
            client.logout()

    def unseen(self) -> int:
        client = imaplib.IMAP4("127.0.0.1", self.port)
        try:
            client.login(USER, PASSWORD)
            client.select("INBOX")
            _, data = client.uid("SEARCH", "UNSEEN")
            return len(data[0].split()) if data and data[0] else 0
        finally:
            client.logout()

    def settings(self, home: Path, url: str) -> Settings:
        return Settings(home=home, database_url=url, imap_host="127.0.0.1", imap_port=self.port, imap_user=USER,
                        imap_password=SecretStr(PASSWORD), imap_security="none")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def dovecot() -> Iterator[Imap]:
    if not DOVECOT.exists():
        message = f"{DOVECOT} is not installed (apt-get install dovecot-imapd): skipping the IMAP poller tests"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message.replace("skipping", "CI must run"))
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="outreach-dovecot-", dir="/tmp"))
    root.chmod(0o755)  # the mail processes run as an unprivileged user and must reach the maildir
    # As root, Dovecot's own processes and the mail user are `nobody`; otherwise they are the current user.
    account = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    for name in ("mail", "run", "state"):
        (root / name).mkdir()
    os.chown(root / "mail", account.pw_uid, account.pw_gid)
    port = _free_port()
    (root / "passwd").write_text(
        f"{USER}:{{PLAIN}}{PASSWORD}:{account.pw_uid}:{account.pw_gid}::{root / 'mail' / USER}::\n", encoding="utf-8")
    (root / "dovecot.conf").write_text(f"""
base_dir = {root / 'run'}
state_dir = {root / 'state'}
log_path = {root / 'dovecot.log'}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root / 'mail'}/%u
default_internal_user = {account.pw_name}
default_internal_group = {_group(account.pw_gid)}
default_login_user = {account.pw_name}
first_valid_uid = 1
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root / 'passwd'}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root / 'passwd'}
}}
""", encoding="utf-8")
    process = subprocess.Popen([str(DOVECOT), "-F", "-c", str(root / "dovecot.conf")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = root / "dovecot.log"
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                pytest.fail(f"dovecot did not start: {output} {log.read_text() if log.exists() else ''}")
            time.sleep(0.05)
        yield Imap(port=port, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - dovecot stops on SIGTERM
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
        shutil.rmtree(root, ignore_errors=True)


def _group(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


# ------------------------------------------------------------------------------------------------ messages


def reply(in_reply_to: str, *, sender: str = "dana@acme.example", subject: str = "Re: More room for reports",
          headers: dict[str, str] | None = None, own_id: str = "<r1@acme.example>") -> bytes:
    message = EmailMessage()
    message["From"] = f"Dana <{sender}>"
    message["To"] = "maya@ledgerly.example"
    message["Subject"] = subject
    message["Date"] = format_datetime(NOW)
    message["Message-ID"] = own_id
    message["In-Reply-To"] = in_reply_to
    message["References"] = in_reply_to
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content("Sounds good, can we talk on Thursday?\n")
    return message.as_bytes()


def dsn(original: str, recipient: str, *, action: str = "failed", status: str = "5.1.1",
        own_id: str = "<dsn1@mx.acme.example>") -> bytes:
    """An RFC 3464 delivery status notification as an MTA writes it."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\n"
        "To: maya@ledgerly.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(NOW)}\r\n"
        f"Message-ID: {own_id}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"\r\n'
        "\r\n"
        "--BOUND\r\n"
        "Content-Type: text/plain\r\n\r\n"
        f"I'm sorry to have to inform you that your message could not be delivered to {recipient}.\r\n"
        "--BOUND\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n"
        "Arrival-Date: Wed, 25 Nov 2026 11:59:00 +0000\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "\r\n"
        "--BOUND\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        "From: Maya <maya@ledgerly.example>\r\n"
        f"To: {recipient}\r\n"
        "Subject: More room for reports\r\n"
        f"Message-ID: {original}\r\n"
        "\r\n"
        "--BOUND--\r\n"
    ).encode()


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
    monkeypatch.setenv("OUTREACH_IMAP_PORT", str(_free_port()))
    unreachable = CliRunner().invoke(app, ["replies", "poll"])
    assert unreachable.exit_code == 2 and "cannot be reached" in unreachable.output, unreachable.output
