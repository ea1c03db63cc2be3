"""The unsubscribe endpoint: GET never unsubscribes (link scanners), POST does at once, no login needed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from outreach import db
from outreach.sending.suppression import is_suppressed, token_for
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
