"""``outreach events ingest``: a JSONL file of replies, bounces, meetings and conversions from elsewhere is
recorded once, matched to enrollments, applied to the suppression list and ends the right sequences."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from outreach.cli.main import app
from outreach.sending.suppression import is_suppressed
from outreach.sending.tables import EnrollmentRow, MailEventRow, OutboxRow
from tests.review_world import ReviewWorld
from tests.sequencing import START, CannedFollowups, build_world, make_setup

runner = CliRunner()


@pytest.fixture
def seq_world(sqlite_url: str, tmp_path: Path) -> Iterator[ReviewWorld]:
    world = build_world(sqlite_url, tmp_path)
    yield world
    world.close()


def test_events_ingest_records_once_and_ends_sequences(seq_world: ReviewWorld, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    setup = make_setup(seq_world, tmp_path, followups=CannedFollowups())
    acme, globex = setup.approve_and_enroll("acme"), setup.approve_and_enroll("globex")
    setup.scheduler.run_until(START + timedelta(days=5), setup.clock)
    with seq_world.factory() as session:
        acme_message = session.scalar(select(OutboxRow.message_id).where(OutboxRow.enrollment_id == acme))
    at = (START + timedelta(days=5)).isoformat()
    events = [
        {"kind": "reply", "occurred_at": at, "external_id": "crm-1", "message_id": acme_message},
        {"kind": "bounce", "occurred_at": at, "external_id": "esp-7", "email": "Dana@Globex.example",
         "detail": {"status": "5.1.1"}},
        {"kind": "meeting", "occurred_at": at, "account_id": "initech"},  # no enrollment, but an account
        {"kind": "click", "occurred_at": at, "email": "nobody@elsewhere.example"},  # matches nothing
        {"kind": "reply", "occurred_at": at, "external_id": "crm-1", "message_id": acme_message},  # again
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + "\n", encoding="utf-8")
    monkeypatch.setenv("OUTREACH_DATABASE_URL", seq_world.url)

    result = runner.invoke(app, ["events", "ingest", str(path)])
    assert result.exit_code == 0, result.output
    assert ("5 events read: 4 recorded, 1 already known, 1 not matched to an enrollment, 1 addresses suppressed"
            in result.output)
    again = runner.invoke(app, ["events", "ingest", "-"], input=path.read_text(encoding="utf-8"))
    assert again.exit_code == 0, again.output
    assert "5 events read: 0 recorded, 5 already known" in again.output  # id-less events dedupe by content

    with seq_world.factory() as session:
        assert session.scalar(select(func.count()).select_from(MailEventRow).where(
            MailEventRow.kind != "click")) == 3
        reply = session.scalar(select(MailEventRow).where(MailEventRow.kind == "reply"))
        assert reply is not None and reply.enrollment_id == acme and reply.source == "file"
        suppressed = is_suppressed(session, "dana@globex.example")
        assert suppressed is not None and suppressed.reason == "hard_bounce"
    setup.scheduler.run_until(START + timedelta(days=30), setup.clock)
    with seq_world.factory() as session:
        reasons = {row.id: row.exit_reason for row in session.scalars(select(EnrollmentRow))}
    assert reasons == {acme: "replied", globex: "hard_bounce"}


def test_events_ingest_names_the_bad_line_and_field(sqlite_url: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    path = tmp_path / "events.jsonl"
    path.write_text('{"kind": "reply", "occurred_at": "2026-11-24T10:00:00Z", "email": "a@b.example"}\n'
                    '{"kind": "opened", "occurred_at": "2026-11-24T10:00:00Z"}\n', encoding="utf-8")
    result = runner.invoke(app, ["events", "ingest", str(path)])
    assert result.exit_code == 2
    assert "events.jsonl:2" in result.output and "kind" in result.output
    missing = runner.invoke(app, ["events", "ingest", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "file not found" in missing.output
