"""Never mail someone who just replied: a worker pass over 520 due follow-ups runs in its own process on
SQLite (the default), sending into a real SMTP server, and meanwhile three people answer — one reply arrives
through ``outreach events ingest``, one through ``outreach replies poll`` from a real IMAP server (Dovecot), and
one person clicks unsubscribe (the one-click POST). Each is recorded in under a second, and none of the three
gets a follow-up afterwards; everyone else gets theirs exactly once.

The worker claims, drafts and renders outside any write transaction and holds SQLite's write lock only for
the moment it hands one message over or records its result, so a writer never waits more than that.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from outreach import db
from outreach.cli.main import app
from outreach.sending.tables import EnrollmentRow, MailEventRow, SuppressionRow
from outreach.settings import Settings
from outreach.web.app import create_app
from tests.sending.mailbox import PASSWORD, USER, Imap, reply
from tests.sending.test_crash_safety import finish, start_worker, wait_for
from tests.sendload import first_message_id, populate, recipient_of, token_of
from tests.smtpsink import Handler, Sink

COUNT = 520


def test_replies_and_unsubscribes_are_recorded_at_once_while_a_pass_sends(
        dovecot: Imap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    sink = Sink(Handler(delay=0.01)).start()
    try:
        env = populate(url, tmp_path, COUNT, own_accounts=True, followup=True) | sink.env()
        # The three who answer are the last in line, so without their answers they would surely be mailed.
        by_file, by_imap, by_link = COUNT - 3, COUNT - 2, COUNT - 1
        for name, value in {"OUTREACH_DATABASE_URL": url, "OUTREACH_HOME": str(tmp_path),
                            "OUTREACH_IMAP_HOST": "127.0.0.1", "OUTREACH_IMAP_PORT": str(dovecot.port),
                            "OUTREACH_IMAP_USER": USER, "OUTREACH_IMAP_PASSWORD": PASSWORD,
                            "OUTREACH_IMAP_SECURITY": "none"}.items():
            monkeypatch.setenv(name, value)
        events = tmp_path / "events.jsonl"
        events.write_text(json.dumps({"kind": "reply", "occurred_at": "2026-11-20T10:00:05+00:00",
                                      "external_id": "crm-reply-1", "message_id": first_message_id(by_file)}) + "\n",
                          encoding="utf-8")
        dovecot.append(reply(first_message_id(by_imap), sender=recipient_of(by_imap, True),
                             own_id="<answer@acct.example>"))
        web = TestClient(create_app(Settings(home=tmp_path, database_url=url)))
        runner = CliRunner()
        seconds: dict[str, float] = {}

        with web:
            worker = start_worker(env, "--real-time", "--followups", "canned")
            wait_for(lambda: sink.count() >= 30, worker, "the pass to be sending")

            started = time.perf_counter()
            ingested = runner.invoke(app, ["events", "ingest", str(events)])
            seconds["events ingest"] = time.perf_counter() - started
            assert ingested.exit_code == 0 and "1 recorded" in ingested.output, ingested.output

            started = time.perf_counter()
            polled = runner.invoke(app, ["replies", "poll"])
            seconds["replies poll"] = time.perf_counter() - started
            assert polled.exit_code == 0 and "1 replies" in polled.output, polled.output

            started = time.perf_counter()
            clicked = web.post(f"/unsubscribe/{token_of(by_link)}", data={"List-Unsubscribe": "One-Click"})
            seconds["unsubscribe POST"] = time.perf_counter() - started
            assert clicked.status_code == 200 and "unsubscribed" in clicked.text

            assert worker.poll() is None and sink.count() < COUNT - 3  # all three landed mid-pass
            result = finish(worker)

        assert all(value < 1.0 for value in seconds.values()), seconds
        assert result["sent"] == COUNT - 3 and result["exited"] == 3, result
        for index in (by_file, by_imap, by_link):
            assert sink.to(recipient_of(index, True)) == []  # no follow-up after the answer
        received = sink.keys()
        assert received == {f"enr{i}-step1": 1 for i in range(1, COUNT - 2)}  # everyone else: exactly once
        engine = db.make_engine(url)
        with db.session_factory(engine)() as session:
            exits = {row.id: row.exit_reason for row in session.scalars(
                select(EnrollmentRow).where(EnrollmentRow.status == "exited"))}
            assert exits == {by_file + 1: "replied", by_imap + 1: "replied", by_link + 1: "unsubscribed"}
            assert {e.source for e in session.scalars(select(MailEventRow))} == {"file", "imap"}
            assert session.get(SuppressionRow, recipient_of(by_link, True)) is not None
        engine.dispose()
    finally:
        sink.stop()
