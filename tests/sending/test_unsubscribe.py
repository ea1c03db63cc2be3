"""The unsubscribe endpoint: GET never unsubscribes (link scanners), POST does at once, no login needed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from outreach import db
from outreach.sending.suppression import is_suppressed, token_for, tokens_for
from outreach.settings import Settings
from outreach.web.app import create_app


def test_get_confirms_and_post_unsubscribes(sqlite_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(sqlite_url)
    factory = db.session_factory(engine)
    with db.transaction(factory) as session:
        token = token_for(session, "Dana@Acme.example", "upsell.ledgerly.example", datetime.now(UTC))
    app = create_app(Settings(home=tmp_path, database_url=sqlite_url))
    with TestClient(app) as client:
        page = client.get(f"/unsubscribe/{token}")
        assert page.status_code == 200 and "<form method=\"post\"" in page.text and "d***@acme.example" in page.text
        with factory() as session:
            assert is_suppressed(session, "dana@acme.example") is None  # GET changed nothing
        one_click = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
        assert one_click.status_code == 200 and "unsubscribed" in one_click.text
        with factory() as session:
            row = is_suppressed(session, "dana@acme.example")
            assert row is not None and row.reason == "unsubscribe"
        assert client.get("/unsubscribe/not-a-token").status_code == 404
        assert client.post("/unsubscribe/not-a-token").status_code == 404
    engine.dispose()


def test_tokens_are_created_once_per_recipient_and_list_in_bulk_too(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    factory = db.session_factory(engine)
    now = datetime.now(UTC)
    with db.transaction(factory) as session:
        single = token_for(session, "dana@acme.example", "upsell.ledgerly.example", now)
    with db.transaction(factory) as session:
        many = tokens_for(session, {("Dana@Acme.example", "upsell.ledgerly.example"),
                                    ("lee@globex.example", "upsell.ledgerly.example"),
                                    ("lee@globex.example", "demo.ledgerly.example")}, now)
    assert many[("dana@acme.example", "upsell.ledgerly.example")] == single  # kept, not replaced
    assert len(set(many.values())) == 3
    with db.transaction(factory) as session:
        again = tokens_for(session, set(many), now)
        assert again == many
        assert token_for(session, "lee@globex.example", "demo.ledgerly.example", now) == many[
            ("lee@globex.example", "demo.ledgerly.example")]
    engine.dispose()
