"""Decisions within a minute: an event through /v1 re-decides its account; one that becomes ready gets its draft
queued and a Slack message to its owner."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from outreach.application import Application
from outreach.integrations.tables import AccountStateRow, NotificationRow
from outreach.review.storage import DraftRow
from outreach.settings import Settings
from outreach.web.app import create_app
from tests.datadir import AS_OF, DataDir
from tests.integrations.cassettes import capture, cassette
from tests.integrations.live import Served

SLACK = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"


def _application(tmp_path: Path) -> tuple[Application, Path]:
    data = DataDir()
    data.account("acme", name="Acme Corp", owner_email="maya@ledgerly.example").active("acme")
    for days in (5, 10):  # two limit hits: one short of the trigger
        data.event("acme", "Limit Reached", days, limit="reports", used=50, cap=50)
    data.account("globex").active("globex")
    root = data.write(tmp_path / "data")
    settings = Settings(home=tmp_path / "home", data_dir=root, as_of=AS_OF, slack_webhook_url=SLACK)
    application = Application.from_settings(settings)
    application.upgrade_database()
    return application, root


def test_an_event_makes_an_account_ready_and_queues_its_draft(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from outreach.integrations.intake import create_key
    from outreach.review.users import add_user

    application, _ = _application(tmp_path)
    with application.transaction() as session:
        key = create_key(session, "test", datetime.now(UTC))
        add_user(session, "maya@ledgerly.example", "sdr", "a-long-enough-password", name="Maya Chen",
                 title="Account Manager")
    sent_to_slack: list[bytes] = []
    with cassette("test_reactor", "test_an_event_makes_an_account_ready_and_queues_its_draft.yaml",
                  before_record_request=capture(sent_to_slack)) as played, Served(create_app(application)) as served:
        intake = served.server.config.app.state.intake
        reactor = intake.reactor
        deadline = time.monotonic() + 60
        while not reactor.passes:  # the baseline pass records every cohort first
            assert time.monotonic() < deadline
            time.sleep(0.05)
        sent = time.monotonic()
        event = {"type": "track", "event": "Limit Reached", "userId": "acme-u3", "messageId": "limit-3",
                 "timestamp": "2026-11-18T09:00:00Z", "context": {"groupId": "acme"},
                 "properties": {"limit": "reports", "used": 50, "cap": 50}}
        assert httpx.post(f"{served.url}/v1/track", json=event, auth=(key, "")).json() == {"success": True}
        with application.sessions() as session:
            while session.scalar(select(DraftRow.id).where(DraftRow.account_id == "acme")) is None:
                assert time.monotonic() - sent < 60, reactor.passes
                time.sleep(0.1)
                session.expire_all()
        while not played.all_played:  # the Slack message follows the commit
            assert time.monotonic() - sent < 60
            time.sleep(0.05)
    report = next(p for p in reactor.passes if p.became_ready)
    assert report.became_ready == ["acme"] and report.error is None
    with application.sessions() as session:
        draft = session.scalar(select(DraftRow).where(DraftRow.account_id == "acme"))
        assert draft is not None and draft.status == "pending_review" and draft.trigger == "repeated_limit_hits"
        assert draft.versions[-1].body.rstrip().endswith("Maya Chen\nAccount Manager\nLedgerly")  # the owner signs
        states = {r.account_id: r.cohort for r in session.scalars(select(AccountStateRow))}
        assert states["acme"] == "ready" and set(states) == {"acme", "globex"}
        notification = session.scalar(select(NotificationRow))
        assert notification is not None and (notification.channel, notification.kind, notification.state) == (
            "slack", "ready", "done")
    text = json.loads(sent_to_slack[-1])["text"]
    assert text.startswith("*Acme Corp* is ready for upsell (owner maya@ledgerly.example).")
    assert f"/drafts/{draft.id}" in text
