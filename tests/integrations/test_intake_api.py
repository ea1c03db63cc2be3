"""The /v1 API's contract: Segment's limits and answers, a clear 400 for anything invalid (nothing stored then),
401 without the write key, and what each call type stores."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from outreach.application import Application
from outreach.engine.store_tables import EventUserRow, StoredEventRow
from outreach.integrations.intake import create_key, parse_request
from outreach.settings import Settings
from outreach.web.app import create_app


def _api(home: Path) -> tuple[TestClient, Application, str]:
    application = Application.from_settings(Settings(home=home, intake_react=False))
    application.upgrade_database()
    with application.transaction() as session:
        key = create_key(session, "test", datetime.now(UTC))
    return TestClient(create_app(application)), application, key


@pytest.fixture
def api(tmp_path: Path) -> tuple[TestClient, Application, str]:
    return _api(tmp_path)


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, Application, str]:
    """One app for the requests that must store nothing."""
    return _api(tmp_path_factory.mktemp("refusing"))


def _stored(application: Application) -> list[StoredEventRow]:
    with application.sessions() as session:
        return list(session.scalars(select(StoredEventRow).order_by(StoredEventRow.id)))


TRACK = {"userId": "u1", "event": "Limit Reached", "properties": {"limit": "reports"},
         "context": {"groupId": "acme"}, "timestamp": "2026-11-19T10:00:00Z"}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/track", {"userId": "u1"}, "track: field 'event': required for track calls"),
        ("/v1/track", {"event": "X"}, "track: field 'userId': a userId or anonymousId is required"),
        ("/v1/track", {**TRACK, "properties": [1]}, "track: field 'properties': must be a JSON object"),
        ("/v1/track", {**TRACK, "timestamp": "yesterday"},
         "track: field 'timestamp': 'yesterday' is not an ISO 8601 timestamp"),
        ("/v1/track", {**TRACK, "type": "identify"}, "track: field 'type': 'identify' sent to /v1/track"),
        ("/v1/group", {"userId": "u1"}, "group: field 'groupId': required for group calls"),
        ("/v1/alias", {"userId": "u1"}, "alias: field 'previousId': required for alias calls"),
        ("/v1/batch", {"batch": [TRACK, {**TRACK, "type": "bogus"}]},
         "batch[0]: field 'type': None is not one of track, identify, group, page, screen, alias"),
        ("/v1/batch", {"batch": [{**TRACK, "type": "track"}, {**TRACK, "type": "bogus"}]},
         "batch[1]: field 'type': 'bogus' is not one of track, identify, group, page, screen, alias"),
        ("/v1/batch", {"batch": {}}, "field 'batch': must be a list of messages"),
        ("/v1/batch", {"batch": []}, "field 'batch': empty"),
        ("/v1/track", {**TRACK, "properties": {"limit": "reports", "used": "lots", "cap": 50}},
         "track: field 'properties.used': 'lots' is not a number (a 'Limit Reached' event)"),
        ("/v1/track", {**TRACK, "properties": {"limit": "reports", "used": 50, "cap": -1}},
         "track: field 'properties.cap': -1 must not be negative (a 'Limit Reached' event)"),
        ("/v1/batch", {"batch": [{**TRACK, "type": "track", "event": "Export Created", "properties": {"rows": "x"}}]},
         "batch[0]: field 'properties.rows': 'x' is not a whole number (a 'Export Created' event)"),
        ("/v1/track", {**TRACK, "properties": {"blob": "x" * 33_000}},
         "track: message is 33,128 bytes; the limit is 32 KB per message"),
    ],
)
def test_invalid_requests_get_a_400_naming_message_and_field(refusing: tuple[TestClient, Application, str],
                                                              path: str, body: dict[str, Any], message: str) -> None:
    client, application, key = refusing
    response = client.post(path, json=body, auth=(key, ""))
    assert response.status_code == 400
    assert response.json()["success"] is False and response.json()["code"] == "invalid_request"
    assert response.json()["message"] == message
    assert _stored(application) == []


def test_numbers_are_checked_under_the_products_own_event_names(tmp_path: Path) -> None:
    """rules.yaml renames the limit event: the API checks the renamed event's numbers (a trigger reads them) and
    no longer the default name's."""
    (tmp_path / "rules.yaml").write_text("events:\n  limit_reached: Quota Hit\n")
    client, application, key = _api(tmp_path)
    with client:
        renamed = {**TRACK, "event": "Quota Hit", "properties": {"limit": "reports", "used": "lots", "cap": 50}}
        response = client.post("/v1/track", json=renamed, auth=(key, ""))
        assert response.status_code == 400
        assert response.json()["message"] == (
            "track: field 'properties.used': 'lots' is not a number (a 'Quota Hit' event)"
        )
        assert _stored(application) == []
        other = {**TRACK, "properties": {"limit": "reports", "used": "lots"}}  # no trigger reads this name now
        assert client.post("/v1/track", json=other, auth=(key, "")).status_code == 200
        assert [row.event for row in _stored(application)] == ["Limit Reached"]


def test_request_limits_encodings_and_keys(api: tuple[TestClient, Application, str]) -> None:
    client, application, key = api
    big = {"batch": [{**TRACK, "type": "track", "properties": {"blob": "x" * 30_000}} for _ in range(17)]}
    response = client.post("/v1/batch", json=big, auth=(key, ""))
    assert response.status_code == 400 and "the limit is 500 KB per request" in response.json()["message"]
    assert client.post("/v1/track", content=b"{nope", auth=(key, "")).json()["message"].startswith("body is not JSON")
    bomb = gzip.compress(json.dumps({"batch": [TRACK] * 4000}).encode())  # small compressed, over 500 KB inflated
    response = client.post("/v1/batch", content=bomb, headers={"Content-Encoding": "gzip"}, auth=(key, ""))
    assert response.status_code == 400 and "500 KB uncompressed" in response.json()["message"]
    assert client.post("/v1/track", json=TRACK).status_code == 401
    denied = client.post("/v1/track", json=TRACK, auth=("wk_someone_else", ""))
    assert denied.status_code == 401 and denied.headers["WWW-Authenticate"].startswith("Basic")
    assert client.post("/v1/track", json={**TRACK, "writeKey": key}).status_code == 200  # key in the body
    assert len(_stored(application)) == 1


def test_webhooks_destination_single_message_and_signature(api: tuple[TestClient, Application, str]) -> None:
    client, application, key = api
    body = json.dumps({**TRACK, "type": "track", "messageId": "wh-1"}).encode()
    signature = hmac.new(key.encode(), body, hashlib.sha1).hexdigest()
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    assert client.post("/v1/batch", content=body, headers={**auth, "X-Signature": "0" * 40}).status_code == 401
    assert client.post("/v1/batch", content=body, headers={**auth, "X-Signature": signature}).status_code == 200
    assert [row.dedup_key for row in _stored(application)] == ["wh-1"]


def test_what_each_call_type_stores(api: tuple[TestClient, Application, str]) -> None:
    client, application, key = api
    calls = [
        ("/v1/identify", {"userId": "u2", "traits": {"email": "u2@acme.example"}, "context": {"groupId": "acme"}}),
        ("/v1/page", {"userId": "u2", "name": "Add-on", "properties": {"addon": "sso"}}),
        ("/v1/screen", {"anonymousId": "anon-1", "name": "Home", "context": {"groupId": "acme"}}),
        ("/v1/alias", {"userId": "u2", "previousId": "anon-1"}),
        ("/v1/group", {"userId": "u3", "groupId": "globex", "traits": {"name": "Globex"}}),
    ]
    for path, body in calls:
        assert client.post(path, json=body, auth=(key, "")).json() == {"success": True}
    rows = _stored(application)
    assert [(r.type, r.event, r.user_id, r.account_id) for r in rows] == [
        ("identify", None, "u2", "acme"),
        ("page", "Page Viewed", "u2", "acme"),  # u2 was placed in acme by identify's context.groupId
        ("screen", "Screen Viewed", "anon-1", "acme"),
        ("alias", None, "u2", None),
        ("group", None, "u3", "globex"),
    ]
    assert rows[1].props == {"addon": "sso", "name": "Add-on"}
    with application.sessions() as session:
        assert {u.user_id: u.account_id for u in session.scalars(select(EventUserRow))} == {"u2": "acme", "u3": "globex"}


def test_timestamps_follow_segment(api: tuple[TestClient, Application, str]) -> None:
    received = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
    doc = {"batch": [{"type": "track", "userId": "u", "event": "X", "originalTimestamp": "2026-11-20T11:00:00Z"},
                     {"type": "track", "userId": "u", "event": "X"},
                     {"type": "track", "userId": "u", "event": "X", "timestamp": "2026-11-19T08:00:00+02:00"}],
           "sentAt": "2026-11-20T11:30:00Z"}  # the sender's clock runs 30 minutes slow
    stamps = [m.ts for m in parse_request(doc, "batch", received)]
    assert stamps == [datetime(2026, 11, 20, 11, 30, tzinfo=UTC), received, datetime(2026, 11, 19, 6, tzinfo=UTC)]
