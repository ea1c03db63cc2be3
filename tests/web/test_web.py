"""The web app and JSON API over a real database: every transition, permission, conflict, CSRF, escaping,
over-long input and authentication rule, through HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from outreach import db
from outreach.errors import ConfigError
from outreach.review.queue import MAX_BODY_CHARS
from outreach.review.users import create_token
from outreach.settings import Settings
from outreach.web.app import create_app
from tests.review_world import ADMIN, MARKETING, MAYA, SAM, ReviewWorld
from tests.webclient import csrf_of, login, make_app, web_settings


@pytest.fixture
def client(sqlite_world: ReviewWorld) -> Iterator[TestClient]:
    with TestClient(make_app(sqlite_world), base_url="http://127.0.0.1") as test_client:
        yield test_client


def token_for(world: ReviewWorld, email: str) -> dict[str, str]:
    with db.transaction(world.factory) as session:
        _, secret = create_token(session, email, "tests")
    return {"Authorization": f"Bearer {secret}"}


def status_of(world: ReviewWorld, account: str) -> str:
    return world.queue.show(world.admin, world.draft_ids[account]).summary.status


# ------------------------------------------------------------------------------------------------ auth


def test_unauthenticated_pages_go_to_login(client: TestClient) -> None:
    response = client.get("/queue", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    response = client.get("/drafts/1", follow_redirects=False)
    assert response.headers["location"] == "/login?next=/drafts/1"
    page = client.get("/drafts/1")
    assert page.status_code == 200 and "Log in to review drafts" in page.text


def test_unauthenticated_api_gets_401_json(client: TestClient) -> None:
    response = client.get("/api/drafts")
    assert response.status_code == 401
    assert response.json()["detail"].startswith("authentication required")
    assert response.headers["www-authenticate"].startswith("Bearer")
    bad = client.get("/api/drafts", headers={"Authorization": "Bearer otk_nope_nope"})
    assert bad.status_code == 401 and bad.json()["detail"] == "invalid API token"


def test_session_cookie_does_not_authenticate_the_api(client: TestClient) -> None:
    login(client, MAYA)
    assert client.get("/api/drafts").status_code == 401


def test_login_sets_a_hardened_session_cookie(client: TestClient) -> None:
    page = client.get("/login")
    response = client.post("/login", data={"email": MAYA, "password": "correct horse battery",
                                           "csrf_token": csrf_of(page.text)}, follow_redirects=False)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "outreach_session=" in cookie


def test_wrong_password_and_forged_login_csrf(client: TestClient) -> None:
    page = client.get("/login")
    wrong = client.post("/login", data={"email": MAYA, "password": "nope", "csrf_token": csrf_of(page.text)})
    assert wrong.status_code == 401 and "wrong email or password" in wrong.text
    forged = client.post("/login", data={"email": MAYA, "password": "correct horse battery",
                                         "csrf_token": "forged"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert client.get("/queue", follow_redirects=False).status_code == 303  # still logged out


def test_login_refuses_off_site_redirects(client: TestClient) -> None:
    page = client.get("/login")
    response = client.post("/login", data={"email": MAYA, "password": "correct horse battery",
                                           "csrf_token": csrf_of(page.text), "next": "https://evil.example/x"},
                           follow_redirects=False)
    assert response.headers["location"] == "/queue"


def test_logout_needs_csrf(client: TestClient) -> None:
    csrf = login(client, MAYA)
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/queue", follow_redirects=False).status_code == 200
    client.post("/logout", data={"csrf_token": csrf})
    assert client.get("/queue", follow_redirects=False).status_code == 303


# ------------------------------------------------------------------------------------------------ pages


def test_queue_shows_mine_by_default_with_counts(client: TestClient, sqlite_world: ReviewWorld) -> None:
    login(client, MAYA)
    page = client.get("/queue").text
    assert "Acme Corp" in page and "Globex" not in page
    assert 'data-status-count="pending_review">1<' in page
    everyone = client.get("/queue?owner=all").text
    assert all(name in everyone for name in ("Acme Corp", "Globex", "Initech"))
    assert 'data-status-count="pending_review">3<' in everyone
    assert client.get("/queue?status=bogus").status_code == 422


def test_manager_sees_all_by_default(client: TestClient) -> None:
    login(client, ADMIN)
    page = client.get("/queue").text
    assert all(name in page for name in ("Acme Corp", "Globex", "Initech"))


def test_detail_shows_evidence_and_links_numbers(client: TestClient, sqlite_world: ReviewWorld) -> None:
    login(client, MAYA)
    page = client.get(f"/drafts/{sqlite_world.draft_ids['acme']}").text
    assert "hit the reports limit 3 times in the last 30 days (cap 50)" in page
    assert re.search(r'<a class="fig" href="#friction-1" title="[^"]*hits = 3">3</a>', page)
    assert '<a class="fig" href="#offer"' in page
    assert 'id="friction-1"' in page and "Limit Reached by acme-u1" in page and "evt-000" in page
    assert "$499/month" in page and "Gate" in page and "passes" in page


def test_approve_from_the_form(client: TestClient, sqlite_world: ReviewWorld) -> None:
    csrf = login(client, MAYA)
    draft_id = sqlite_world.draft_ids["acme"]
    response = client.post(f"/drafts/{draft_id}/approve",
                           data={"csrf_token": csrf, "version": sqlite_world.version("acme")}, follow_redirects=False)
    assert response.status_code == 303
    assert status_of(sqlite_world, "acme") == "approved"
    assert "Approved: Acme Corp" in client.get(response.headers["location"]).text


def test_stale_version_is_a_409_and_changes_nothing(client: TestClient, sqlite_world: ReviewWorld) -> None:
    csrf = login(client, MAYA)
    draft_id, seen = sqlite_world.draft_ids["acme"], sqlite_world.version("acme")
    sqlite_world.queue.edit(sqlite_world.admin, draft_id, seen, subject="Changed by Ada", body="New body")
    response = client.post(f"/drafts/{draft_id}/approve", data={"csrf_token": csrf, "version": seen})
    assert response.status_code == 409
    assert "changed since you opened it" in response.text and "Changed by Ada" in response.text
    assert status_of(sqlite_world, "acme") == "pending_review"


def test_forged_or_missing_csrf_changes_nothing(client: TestClient, sqlite_world: ReviewWorld) -> None:
    login(client, MAYA)
    draft_id, version = sqlite_world.draft_ids["acme"], sqlite_world.version("acme")
    for data in ({"csrf_token": "forged", "version": version}, {"version": version}):
        response = client.post(f"/drafts/{draft_id}/approve", data=data)
        assert response.status_code == 403 and "CSRF check failed" in response.text
    response = client.post(f"/drafts/{draft_id}/edit", data={"csrf_token": "x", "version": version,
                                                             "subject": "pwned", "body": "pwned"})
    assert response.status_code == 403
    detail = sqlite_world.queue.show(sqlite_world.admin, draft_id)
    assert detail.summary.status == "pending_review" and detail.summary.version == version


def test_wrong_owner_and_wrong_role_get_403(client: TestClient, sqlite_world: ReviewWorld) -> None:
    csrf = login(client, SAM)
    acme = sqlite_world.draft_ids["acme"]
    response = client.post(f"/drafts/{acme}/approve", data={"csrf_token": csrf, "version": sqlite_world.version("acme")})
    assert response.status_code == 403 and f"assigned to {MAYA}" in response.text
    page = client.get(f"/drafts/{acme}").text
    assert "only they or a manager can act on it" in page and 'id="approve-form"' not in page
    client.post("/logout", data={"csrf_token": csrf})
    csrf = login(client, MARKETING)
    response = client.post(f"/drafts/{acme}/reject", data={"csrf_token": csrf, "version": sqlite_world.version("acme"),
                                                            "reason": "tone"})
    assert response.status_code == 403 and "marketing role" in response.text
    assert status_of(sqlite_world, "acme") == "pending_review"


def test_manager_can_approve_anyones_draft(client: TestClient, sqlite_world: ReviewWorld) -> None:
    csrf = login(client, ADMIN)
    response = client.post(f"/drafts/{sqlite_world.draft_ids['globex']}/approve",
                           data={"csrf_token": csrf, "version": sqlite_world.version("globex")}, follow_redirects=False)
    assert response.status_code == 303 and status_of(sqlite_world, "globex") == "approved"


def test_reject_with_reason(client: TestClient, sqlite_world: ReviewWorld) -> None:
    csrf = login(client, MAYA)
    draft_id, version = sqlite_world.draft_ids["acme"], sqlite_world.version("acme")
    missing = client.post(f"/drafts/{draft_id}/reject", data={"csrf_token": csrf, "version": version,
                                                              "reason": "other", "note": ""})
    assert missing.status_code == 422 and "when the reason is" in missing.text
    response = client.post(f"/drafts/{draft_id}/reject", data={"csrf_token": csrf, "version": version,
                                                               "reason": "timing", "note": "renewal next week"},
                           follow_redirects=False)
    assert response.status_code == 303
    detail = sqlite_world.queue.show(sqlite_world.admin, draft_id)
    assert (detail.summary.status, detail.reject_reason, detail.reject_text) == (
        "rejected", "timing", "renewal next week")


def test_edit_escapes_html_and_script(client: TestClient, sqlite_world: ReviewWorld) -> None:
    csrf = login(client, MAYA)
    draft_id = sqlite_world.draft_ids["acme"]
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)> See you'
    response = client.post(f"/drafts/{draft_id}/edit", data={
        "csrf_token": csrf, "version": sqlite_world.version("acme"), "subject": "<b>Hi</b>", "body": evil,
        "call_to_action": "Reply"})
    assert response.status_code == 200  # followed the redirect back to the draft
    page = response.text
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>Hi</b>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page and "&lt;b&gt;Hi&lt;/b&gt;" in page
    assert "Saved version 2" in page


def test_over_long_edit_is_refused_and_keeps_the_text(client: TestClient, sqlite_world: ReviewWorld) -> None:
    csrf = login(client, MAYA)
    draft_id, version = sqlite_world.draft_ids["acme"], sqlite_world.version("acme")
    body = "word " * (MAX_BODY_CHARS // 4)
    response = client.post(f"/drafts/{draft_id}/edit", data={"csrf_token": csrf, "version": version,
                                                             "subject": "Subject", "body": body})
    assert response.status_code == 422 and "the limit is 5,000" in response.text
    assert body.strip()[:200] in response.text  # what the rep typed is still in the form
    assert sqlite_world.queue.show(sqlite_world.admin, draft_id).summary.version == version


def test_offline_regeneration_is_offered_without_instructions(client: TestClient, sqlite_world: ReviewWorld) -> None:
    """The offline drafter cannot follow instructions: the page offers a re-draft from the facts, and an
    instructed regeneration is refused instead of pretending."""
    csrf = login(client, MAYA)
    draft_id = sqlite_world.draft_ids["acme"]
    page = client.get(f"/drafts/{draft_id}").text
    assert "Re-draft from the latest facts" in page and 'name="instructions"' not in page
    refused = client.post(f"/drafts/{draft_id}/regenerate", data={
        "csrf_token": csrf, "version": sqlite_world.version("acme"), "instructions": "shorter"})
    assert refused.status_code == 422 and "cannot follow instructions" in refused.text
    response = client.post(f"/drafts/{draft_id}/regenerate", data={
        "csrf_token": csrf, "version": sqlite_world.version("acme")})
    assert response.status_code == 200 and "Regenerated: version 2" in response.text
    detail = sqlite_world.queue.show(sqlite_world.admin, draft_id)
    assert detail.current.source == "regeneration" and detail.current.provider == "offline"


def test_a_regenerated_version_is_signed_by_the_owner_as_named_now(client: TestClient,
                                                                   sqlite_world: ReviewWorld) -> None:
    from outreach import db
    from outreach.review.users import set_profile

    csrf = login(client, MAYA)
    with db.transaction(sqlite_world.factory) as session:  # named after the app started: read at regeneration
        set_profile(session, MAYA, name="Maya Chen", title="Account Manager")
    draft_id = sqlite_world.draft_ids["acme"]
    response = client.post(f"/drafts/{draft_id}/regenerate", data={
        "csrf_token": csrf, "version": sqlite_world.version("acme"), "instructions": ""})
    assert response.status_code == 200, response.text
    body = sqlite_world.queue.show(sqlite_world.admin, draft_id).current.body
    assert body.rstrip().endswith("Maya Chen\nAccount Manager\nLedgerly"), body


def test_bulk_approve_selected_rows(client: TestClient, sqlite_world: ReviewWorld) -> None:
    csrf = login(client, MAYA)
    w = sqlite_world
    selected = [f"{w.draft_ids[a]}:{w.version(a)}" for a in ("acme", "initech", "globex")]
    response = client.post("/queue/bulk-approve", data={"csrf_token": csrf, "selected": selected})
    assert response.status_code == 200
    assert "Approved 2 draft(s)." in response.text and f"assigned to {SAM}" in response.text
    assert [status_of(w, a) for a in ("acme", "initech", "globex")] == ["approved", "approved", "pending_review"]
    assert client.post("/queue/bulk-approve", data={"csrf_token": "forged", "selected": selected}).status_code == 403


def test_gate_recheck_expires_on_the_queue_page(client: TestClient, sqlite_world: ReviewWorld) -> None:
    from tests.review_world import build_data

    data = build_data()
    data.accounts[0].update(cs_veto="true", cs_veto_reason="escalation")
    data.write(sqlite_world.data_dir)
    sqlite_world.queue.gate_check.reload()  # type: ignore[union-attr]
    login(client, MAYA)
    page = client.get("/queue?status=all").text
    assert "1 draft(s) expired" in page
    assert status_of(sqlite_world, "acme") == "expired"


def test_missing_draft_is_404(client: TestClient) -> None:
    login(client, MAYA)
    response = client.get("/drafts/9999")
    assert response.status_code == 404 and "no draft 9999" in response.text


def test_app_refuses_an_unmigrated_database(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="not at the latest schema"):
        create_app(web_settings(Settings(database_url=f"sqlite:///{tmp_path}/empty.db"), secret_key="k" * 32))


def test_static_assets_are_served_locally(client: TestClient) -> None:
    login(client, MAYA)
    page = client.get("/queue").text
    assert '<script src="/static/htmx.min.js"' in page and "https://" not in page.split("<body")[0]
    assert client.get("/static/htmx.min.js").status_code == 200
    assert "keydown" in client.get("/static/review.js").text


# ------------------------------------------------------------------------------------------------ API


def test_api_list_show_approve(client: TestClient, sqlite_world: ReviewWorld) -> None:
    headers = token_for(sqlite_world, MAYA)
    assert client.get("/api/me", headers=headers).json() == {"email": MAYA, "role": "sdr"}
    listing = client.get("/api/drafts?owner=me", headers=headers).json()
    assert [r["account_id"] for r in listing["rows"]] == ["acme"]
    assert listing["counts"]["by_status"]["pending_review"] == 1  # counts follow the owner filter
    draft_id = sqlite_world.draft_ids["acme"]
    detail = client.get(f"/api/drafts/{draft_id}", headers=headers).json()
    assert detail["frictions"][0]["evidence"][0]["source"] == "event"
    version = detail["summary"]["version"]
    approved = client.post(f"/api/drafts/{draft_id}/approve", json={"version": version}, headers=headers)
    assert approved.status_code == 200 and approved.json()["summary"]["status"] == "approved"
    again = client.post(f"/api/drafts/{draft_id}/approve", json={"version": version}, headers=headers)
    assert again.status_code == 409 and "changed since you opened it" in again.json()["detail"]


def test_api_errors(client: TestClient, sqlite_world: ReviewWorld) -> None:
    headers = token_for(sqlite_world, MAYA)
    globex = sqlite_world.draft_ids["globex"]
    forbidden = client.post(f"/api/drafts/{globex}/approve", json={"version": sqlite_world.version("globex")},
                            headers=headers)
    assert forbidden.status_code == 403 and "assigned to" in forbidden.json()["detail"]
    assert client.get("/api/drafts/9999", headers=headers).status_code == 404
    bad_reason = client.post(f"/api/drafts/{sqlite_world.draft_ids['acme']}/reject",
                             json={"version": 1, "reason": "meh"}, headers=headers)
    assert bad_reason.status_code == 422
    too_long = client.post(f"/api/drafts/{sqlite_world.draft_ids['acme']}/edit",
                           json={"version": 1, "subject": "s", "body": "x" * (MAX_BODY_CHARS + 1)}, headers=headers)
    assert too_long.status_code == 422
    assert sqlite_world.queue.show(sqlite_world.admin, sqlite_world.draft_ids["acme"]).summary.version == 1


def test_api_reject_edit_regenerate_bulk(client: TestClient, sqlite_world: ReviewWorld) -> None:
    w = sqlite_world
    headers = token_for(w, ADMIN)
    edited = client.post(f"/api/drafts/{w.draft_ids['acme']}/edit", headers=headers,
                         json={"version": w.version("acme"), "subject": "S", "body": "B", "call_to_action": ""})
    assert edited.status_code == 200 and edited.json()["current"]["edit_distance"] > 0
    regenerated = client.post(f"/api/drafts/{w.draft_ids['acme']}/regenerate", headers=headers,
                              json={"version": w.version("acme")})
    assert regenerated.json()["current"]["source"] == "regeneration"
    # the offline drafter kept the rep's edit (merged into its new text) instead of discarding it
    assert (regenerated.json()["current"]["subject"], regenerated.json()["current"]["body"]) == ("S", "B")
    rejected = client.post(f"/api/drafts/{w.draft_ids['acme']}/reject", headers=headers,
                           json={"version": w.version("acme"), "reason": "wrong_friction", "note": "x"})
    assert rejected.json()["summary"]["status"] == "rejected"
    bulk = client.post("/api/drafts/bulk-approve", headers=headers, json={"items": [
        {"id": w.draft_ids["globex"], "version": w.version("globex")},
        {"id": w.draft_ids["acme"], "version": w.version("acme")}]})
    assert bulk.json()["approved"] == [w.draft_ids["globex"]]
    assert "rejected" in bulk.json()["failed"][str(w.draft_ids["acme"])]


def test_openapi_documents_the_api(client: TestClient, sqlite_world: ReviewWorld) -> None:
    assert client.get("/api/openapi.json").status_code == 401  # the schema is behind a login too
    schema = client.get("/api/openapi.json", headers=token_for(sqlite_world, MAYA)).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {"/api/drafts", "/api/drafts/{draft_id}/approve", "/api/drafts/{draft_id}/reject",
            "/api/drafts/{draft_id}/edit", "/api/drafts/{draft_id}/regenerate",
            "/api/drafts/bulk-approve"} <= set(schema["paths"])
    assert not any(path.startswith("/drafts") for path in schema["paths"])  # HTML routes stay out
