"""The queue's trigger filter offers every built-in kind and the custom kinds that have drafts."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import update

from outreach import db
from outreach.engine.triggers.registry import builtin_kinds
from outreach.review.storage import DraftRow
from tests.review_world import MAYA, ReviewWorld
from tests.webclient import login, make_app


def test_trigger_filter_lists_builtin_and_queued_custom_kinds(sqlite_world: ReviewWorld) -> None:
    with db.transaction(sqlite_world.factory) as session:
        session.execute(
            update(DraftRow).where(DraftRow.id == sqlite_world.draft_ids["acme"]).values(trigger="reports_shared")
        )
    assert sqlite_world.queue.triggers() == [*builtin_kinds(), "reports_shared"]
    with TestClient(make_app(sqlite_world), base_url="http://127.0.0.1") as client:
        login(client, MAYA)
        page = client.get("/queue?owner=all&trigger=reports_shared").text
        assert '<option value="reports_shared" selected>reports shared</option>' in page
        assert "Acme Corp" in page and "Globex" not in page
        assert client.get("/queue?trigger=Not%20A%20Kind").status_code == 422
