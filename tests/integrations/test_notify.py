"""Notifications out: approvals and sends reach the CRM, ready accounts, holds and replies reach Slack, everything
reaches the signed outbound webhook - after the commit, retried with tenacity, failures visible, sends never
blocked. The CRM and Slack are replayed from hand-written cassettes in their documented shapes; the outbound
webhook goes to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from outreach.application import Application
from outreach.integrations.notify import collect, deliver_pending, enqueue_ready, notify_pass, retry_failed
from outreach.integrations.tables import NotificationRow
from outreach.review.storage import DraftRow
from outreach.sending.tables import OutboxRow
from tests.integrations.cassettes import capture, cassette
from tests.review_world import ReviewWorld
from tests.sequencing import START, Setup, build_world, make_setup


@pytest.fixture
def world(sqlite_url: str, tmp_path: Path) -> Iterator[ReviewWorld]:
    built = build_world(sqlite_url, tmp_path)
    yield built
    built.close()


def _application(setup: Setup, url: str) -> Application:
    return Application.from_settings(setup.settings.model_copy(update={"database_url": url}))


def _approve_and_send(setup: Setup, application: Application) -> None:
    """The first pass sets the collector's cursor; then acme's draft is approved and its first email sent."""
    assert collect(application) == 0
    setup.approve_and_enroll("acme")
    setup.scheduler.run_until(START + timedelta(days=4, hours=4), setup.clock)  # Tuesday, inside the window
    with application.sessions() as session:
        assert session.scalar(select(OutboxRow.state).where(OutboxRow.account_id == "acme")) == "sent"


def _rows(application: Application) -> list[NotificationRow]:
    with application.sessions() as session:
        return list(session.scalars(select(NotificationRow).order_by(NotificationRow.id)))


def _bodies(sent: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(body) if body else {} for body in sent]


def test_hubspot_task_on_approve_email_and_closed_task_on_send(world: ReviewWorld, tmp_path: Path,
                                                               sqlite_url: str) -> None:
    setup = make_setup(world, tmp_path, crm="hubspot", hubspot_access_token="pat-test")
    application = _application(setup, sqlite_url)
    _approve_and_send(setup, application)
    assert collect(application) == 2
    sent: list[Any] = []
    with cassette("test_notify", "test_hubspot_task_on_approve_email_and_closed_task_on_send.yaml",
                  before_record_request=capture(sent)) as played:
        report = deliver_pending(application, sleep=lambda _: None)
    assert (report.delivered, report.failed) == (2, 0) and played.all_played
    approved, logged = _rows(application)
    assert (approved.kind, approved.state, approved.external_id) == ("approved", "done", "5001")
    assert (logged.kind, logged.state, logged.external_id) == ("sent", "done", "7001")
    search, task, _, email, close = _bodies(sent)
    assert search["filterGroups"][0]["filters"][0] == {"propertyName": "domain", "operator": "EQ",
                                                       "value": "acme.example"}
    assert task["properties"]["hs_task_status"] == "NOT_STARTED"
    assert task["associations"][0] == {"to": {"id": "9001"}, "types": [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}]}
    with world.factory() as session:
        outbox = session.scalar(select(OutboxRow).where(OutboxRow.account_id == "acme"))
        assert outbox is not None
    assert email["properties"]["hs_email_subject"] == outbox.subject
    assert email["properties"]["hs_email_text"] == outbox.body
    assert email["associations"][0]["types"][0]["associationTypeId"] == 186
    assert close == {"properties": {"hs_task_status": "COMPLETED"}}
    assert collect(application) == 0  # nothing new: nothing queued twice


def test_hubspot_outage_fails_visibly_and_never_blocks_the_send(world: ReviewWorld, tmp_path: Path,
                                                                sqlite_url: str) -> None:
    setup = make_setup(world, tmp_path, crm="hubspot", hubspot_access_token="pat-test")
    application = _application(setup, sqlite_url)
    assert collect(application) == 0
    setup.approve_and_enroll("acme")
    collect(application)
    waits: list[float] = []
    with cassette("test_notify", "test_hubspot_outage_fails_visibly_and_never_blocks_the_send.yaml") as played:
        report = deliver_pending(application, sleep=waits.append)
    assert (report.delivered, report.failed) == (0, 1) and played.all_played
    assert waits == [0.5, 1.0]  # tenacity: three attempts, exponential waits
    failed = _rows(application)[0]
    assert failed.state == "failed" and failed.attempts == 3
    assert failed.last_error is not None and failed.last_error.startswith("HubSpot answered 503")
    # the send goes out all the same
    setup.scheduler.run_until(START + timedelta(days=4, hours=4), setup.clock)
    with world.factory() as session:
        draft = session.get(DraftRow, world.draft_ids["acme"])
        assert draft is not None and draft.status == "sent"
    assert retry_failed(application) == 1 and _rows(application)[0].state == "pending"


def test_salesforce_task_on_approve_email_task_on_send(world: ReviewWorld, tmp_path: Path, sqlite_url: str) -> None:
    setup = make_setup(world, tmp_path, crm="salesforce", salesforce_username="api@ledgerly.example",
                       salesforce_password="pw", salesforce_security_token="token")
    application = _application(setup, sqlite_url)
    _approve_and_send(setup, application)
    collect(application)
    sent: list[Any] = []
    with cassette("test_notify", "test_salesforce_task_on_approve_email_task_on_send.yaml",
                  before_record_request=capture(sent)) as played:
        report = deliver_pending(application, sleep=lambda _: None)
    assert (report.delivered, report.failed) == (2, 0) and played.all_played
    assert [r.external_id for r in _rows(application)] == ["00T000000000001AAA", "00T000000000002AAA"]
    task, email, close = (json.loads(b) for b in sent[2:3] + sent[4:6])
    assert (task["WhatId"], task["Status"]) == ("001000000000001AAA", "Not Started")
    assert (email["TaskSubtype"], email["Status"]) == ("Email", "Completed")
    assert email["Subject"].startswith("Email: ")
    assert close == {"Status": "Completed"}


def test_slack_bot_messages_the_owner_and_waits_out_a_429(world: ReviewWorld, tmp_path: Path,
                                                         sqlite_url: str) -> None:
    setup = make_setup(world, tmp_path, slack_bot_token="xoxb-test", public_url="https://outreach.ledgerly.example")
    application = _application(setup, sqlite_url)
    decision = world.decisions["acme"]
    with application.transaction() as session:
        assert enqueue_ready(session, application.settings, decision, world.draft_ids["acme"], datetime.now(UTC)) == 1
        assert enqueue_ready(session, application.settings, decision, world.draft_ids["acme"], datetime.now(UTC)) == 0
    sent: list[Any] = []
    waits: list[float] = []
    with cassette("test_notify", "test_slack_bot_messages_the_owner_and_waits_out_a_429.yaml",
                  before_record_request=capture(sent)) as played:
        report = deliver_pending(application, sleep=waits.append)
    assert report.delivered == 1 and played.all_played
    assert waits == [2.0]  # Retry-After, not the exponential default
    message = json.loads(sent[-1])
    assert message["channel"] == "U012AB3CD"
    assert message["text"].startswith("*Acme* is ready for upsell (owner maya@ledgerly.example).")
    assert f"<https://outreach.ledgerly.example/drafts/{world.draft_ids['acme']}|" in message["text"]
    assert _rows(application)[0].external_id == "1763625600.000100"


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver that checks the signature the way the docs tell receivers to."""

    secret = b"whsec-test"
    received: ClassVar[list[dict[str, Any]]] = []
    failures_left = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        stamp = self.headers["X-Outreach-Timestamp"]
        expected = "sha256=" + hmac.new(self.secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_response(500)
        elif hmac.compare_digest(expected, self.headers["X-Outreach-Signature"]):
            type(self).received.append({"headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(204)
        else:
            self.send_response(401)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received, Receiver.failures_left = [], 0
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/outreach"
    server.shutdown()
    thread.join(timeout=10)


def test_outbound_webhook_is_signed_retried_and_visible_when_failing(world: ReviewWorld, tmp_path: Path,
                                                                     sqlite_url: str, receiver: str) -> None:
    setup = make_setup(world, tmp_path, webhook_url=receiver, webhook_secret="whsec-test")
    application = _application(setup, sqlite_url)
    _approve_and_send(setup, application)
    Receiver.failures_left = 4  # the approval fails three times (given up), the send once (retried)
    report = notify_pass(application, sleep=lambda _: None)
    assert (report.delivered, report.failed) == (1, 1)
    failed, done = _rows(application)
    assert (failed.kind, failed.state, failed.attempts) == ("approved", "failed", 3)
    assert failed.last_error is not None and "webhook answered 500" in failed.last_error
    assert (done.kind, done.state, done.attempts) == ("sent", "done", 2)
    assert retry_failed(application) == 1
    assert notify_pass(application, sleep=lambda _: None).delivered == 1
    kinds = [r["body"]["kind"] for r in Receiver.received]
    assert kinds == ["sent", "approved"]
    first = Receiver.received[0]
    assert first["headers"]["X-Outreach-Event"] == "sent"
    assert first["body"]["payload"]["account"]["account_id"] == "acme"
    assert first["body"]["payload"]["recipient"] == "dana@acme.example"


def test_collector_starts_from_now_and_skips_unconfigured_channels(world: ReviewWorld, tmp_path: Path,
                                                                   sqlite_url: str) -> None:
    setup = make_setup(world, tmp_path)
    application = _application(setup, sqlite_url)
    setup.approve_and_enroll("acme")
    assert collect(application) == 0  # first pass: cursor only, no replay of history
    setup.approve_and_enroll("globex")
    assert collect(application) == 0  # nothing configured: nothing queued
    assert _rows(application) == []


def test_failures_are_visible_and_retried_in_the_app(world: ReviewWorld) -> None:
    from fastapi.testclient import TestClient

    from tests.review_world import ADMIN, MAYA
    from tests.webclient import login, make_app

    now = datetime.now(UTC)
    with world.factory() as session, session.begin():
        session.add(NotificationRow(dedup_key="slack:ready:x", channel="slack", kind="ready", account_id="acme",
                                    draft_id=world.draft_ids["acme"], payload={}, state="failed", attempts=3,
                                    last_error="Slack answered 503: upstream unavailable", created_at=now,
                                    updated_at=now))
    client = TestClient(make_app(world))
    login(client, MAYA)
    page = client.get("/integrations?state=failed")
    assert page.status_code == 200 and "Slack answered 503: upstream unavailable" in page.text
    assert "Retry all failed" not in page.text  # an SDR sees failures; managers retry them
    client = TestClient(make_app(world))
    csrf = login(client, ADMIN)
    assert client.post("/integrations/retry", data={"csrf_token": "forged"}).status_code == 403
    response = client.post("/integrations/retry", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303
    with world.factory() as session:
        assert session.scalar(select(NotificationRow.state)) == "pending"
