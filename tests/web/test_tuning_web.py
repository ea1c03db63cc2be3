"""Prompt tuning in the web app: list, versions, edit → new version with a note, live preview, promote, roles,
CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from outreach.drafting.registry import Registry
from outreach.settings import Settings
from outreach.web.app import create_app
from tests.review_world import MARKETING, MAYA, ReviewWorld
from tests.tuning_helpers import PROMPTS, copy_prompts
from tests.webclient import csrf_of, login, web_settings


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    return copy_prompts(tmp_path / "prompts")


@pytest.fixture
def client(sqlite_world: ReviewWorld, prompts: Path) -> Iterator[TestClient]:
    settings = Settings(database_url=sqlite_world.url, prompts_dir=prompts)
    app = create_app(web_settings(settings, secret_key="test-secret-key-0123456789"),
                     gate_check=sqlite_world.queue.gate_check, regenerator=None)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


# The shipped production version of upsell and the number its next save gets.
CURRENT = Registry.open(PROMPTS).resolve("upsell")
NEXT = str(int(CURRENT) + 1)


def _edited(prompts: Path) -> str:
    return (prompts / "upsell.md.j2").read_text().replace("No hype", "Never any hype")


def test_marketing_lists_templates_and_versions(client: TestClient) -> None:
    login(client, MARKETING)
    page = client.get("/prompts")
    assert page.status_code == 200
    for name in ("upsell", "cross_sell", "bundle", "followup"):
        assert f'href="/prompts/{name}"' in page.text
    assert f"production → {CURRENT}" in page.text
    detail = client.get("/prompts/upsell")
    assert detail.status_code == 200
    assert "Initial version (drafting release)" in detail.text
    assert "<code>offer.price_after_discount</code>" in detail.text  # variables from the facts schema
    assert "(untrusted: customer-written)" in detail.text
    assert "No drafts of this template in the queue yet." not in detail.text  # the world queued upsell drafts


def test_edit_save_preview_and_promote(client: TestClient, prompts: Path) -> None:
    login(client, MARKETING)
    csrf = csrf_of(client.get("/prompts/upsell").text)
    preview = client.post("/prompts/upsell/preview", data={
        "csrf_token": csrf, "account": "northwind-freight.first", "source": _edited(prompts), "version": CURRENT})
    assert preview.status_code == 200
    assert "Never any hype" in preview.text and "Offline drafter" in preview.text
    assert "No LLM provider configured" in preview.text and "✓ names_offer" in preview.text
    broken = client.post("/prompts/upsell/preview", data={
        "csrf_token": csrf, "account": "northwind-freight.first",
        "source": _edited(prompts).replace("{{ offer.id }}", "{{ ofer.id }}")})
    assert "unknown variable &#39;ofer&#39;" in broken.text
    saved = client.post("/prompts/upsell/versions", data={"csrf_token": csrf, "source": _edited(prompts),
                                                          "note": "stricter on hype"}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == f"/prompts/upsell?version={NEXT}"
    registry = Registry.open(prompts)
    assert [(v.version, v.note, v.author) for v in registry.versions("upsell")][-1] == (
        NEXT, "stricter on hype", MARKETING)
    assert registry.resolve("upsell") == CURRENT
    page = client.get(f"/prompts/upsell?version={NEXT}")
    assert f"Saved upsell version {NEXT}" in page.text and f"showing v{NEXT}" in page.text
    promoted = client.post("/prompts/upsell/promote", data={"csrf_token": csrf, "version": NEXT,
                                                             "label": "production"}, follow_redirects=False)
    assert promoted.status_code == 303
    assert Registry.open(prompts).resolve("upsell") == NEXT


def test_save_without_note_keeps_the_text(client: TestClient, prompts: Path) -> None:
    login(client, MARKETING)
    csrf = csrf_of(client.get("/prompts/upsell").text)
    response = client.post("/prompts/upsell/versions", data={"csrf_token": csrf, "source": _edited(prompts),
                                                             "note": ""})
    assert response.status_code == 422 and "change note" in response.text and "Never any hype" in response.text
    assert Registry.open(prompts).versions("upsell")[-1].version == CURRENT  # nothing saved


def test_sdr_reads_but_cannot_change_and_csrf_is_checked(client: TestClient, prompts: Path) -> None:
    login(client, MAYA)
    page = client.get("/prompts/upsell")
    assert page.status_code == 200 and "Save as new version" not in page.text
    csrf = csrf_of(page.text)
    response = client.post("/prompts/upsell/versions", data={"csrf_token": csrf, "source": _edited(prompts),
                                                             "note": "sneaky"})
    assert response.status_code == 403
    response = client.post("/prompts/upsell/promote", data={"csrf_token": csrf, "version": CURRENT, "label": "staging"})
    assert response.status_code == 403
    client.post("/logout", data={"csrf_token": csrf})
    login(client, MARKETING)
    forged = client.post("/prompts/upsell/versions", data={"csrf_token": "forged", "source": _edited(prompts),
                                                           "note": "x"})
    assert forged.status_code == 403
    assert Registry.open(prompts).versions("upsell")[-1].version == CURRENT  # nothing saved
    assert Registry.open(prompts).label_target("upsell", "staging") is None


def test_pages_need_a_login(client: TestClient) -> None:
    response = client.get("/prompts", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
