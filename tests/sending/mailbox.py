"""A private Dovecot for the tests that read replies over IMAP, and the messages people send back.

:func:`dovecot` starts ``/usr/sbin/dovecot -F`` with a throwaway config (127.0.0.1, a free port, no TLS, a
passwd-file user, maildir in a temp dir); :class:`Imap` delivers messages with IMAP APPEND. Without Dovecot the
tests skip with a message; under ``CI=true`` they fail instead (``.ci/run`` installs ``dovecot-imapd``).
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
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from outreach.settings import Settings

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
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
    port = free_port()
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
