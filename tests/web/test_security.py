"""Security of the review app over HTTP: sessions that really end, throttled guessing, headers on every response,
no 500 on malformed or out-of-range input, no third-party asset, token expiry and the admin page."""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from outreach import db
from outreach.review.storage import ApiTokenRow, AuditRow, WebSessionRow
from outreach.review.users import create_token, set_password, set_role
from tests.review_world import ADMIN, MAYA, PASSWORD, SAM, ReviewWorld
from tests.webclient import csrf_of, login, make_app

HUGE = "99999999999999999999999"


@pytest.fixture
def client(sqlite_world: ReviewWorld) -> Iterator[TestClient]:
    with TestClient(make_app(sqlite_world), base_url="http://127.0.0.1") as test_client:
        yield test_client


def fresh(client: TestClient) -> TestClient:
    return TestClient(client.app, base_url="http://127.0.0.1")


def test_logout_ends_the_session_and_a_copied_cookie_is_refused(client: TestClient) -> None:
    csrf = login(client, MAYA)
    stolen = dict(client.cookies)
    assert client.get("/queue", follow_redirects=False).status_code == 200
    client.post("/logout", data={"csrf_token": csrf})
    replay = fresh(client)
    replay.cookies.update(stolen)
    response = replay.get("/queue", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"


def test_password_and_role_changes_end_every_session(client: TestClient, sqlite_world: ReviewWorld) -> None:
    login(client, MAYA)
    other = fresh(client)
    login(other, MAYA)
    with db.transaction(sqlite_world.factory) as session:
        set_password(session, MAYA, "a brand new passphrase")
    for browser in (client, other):
        assert browser.get("/queue", follow_redirects=False).status_code == 303
    login(client, SAM)
    with db.transaction(sqlite_world.factory) as session:
        assert set_role(session, SAM, "marketing") == 1
    assert client.get("/queue", follow_redirects=False).status_code == 303
    ended = client.get("/login").text
    assert "The session ended (role_changed)" in ended


def test_idle_and_absolute_timeouts(client: TestClient, sqlite_world: ReviewWorld) -> None:
    login(client, MAYA)
    with db.transaction(sqlite_world.factory) as session:
        session.execute(update(WebSessionRow).values(last_seen_at=datetime.now(UTC) - timedelta(minutes=61)))
    assert client.get("/queue", follow_redirects=False).status_code == 303
    login(client, MAYA)
    with db.transaction(sqlite_world.factory) as session:
        session.execute(update(WebSessionRow).where(WebSessionRow.revoked_at.is_(None))
                        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert client.get("/queue", follow_redirects=False).status_code == 303
    with sqlite_world.factory() as session:
        reasons = set(session.scalars(select(WebSessionRow.revoked_reason)))
    assert reasons == {"idle", "expired"}


def test_deactivation_ends_sessions_and_tokens(client: TestClient, sqlite_world: ReviewWorld) -> None:
    from outreach.review.users import deactivate_user

    login(client, MAYA)
    with db.transaction(sqlite_world.factory) as session:
        _, secret = create_token(session, MAYA, "slack")
        assert deactivate_user(session, MAYA) == 1
    assert client.get("/queue", follow_redirects=False).status_code == 303
    assert client.get("/api/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_guessing_is_throttled_with_backoff_and_audited(client: TestClient, sqlite_world: ReviewWorld,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import limits.storage.memory

    now = [1_000_000.0]
    monkeypatch.setattr(limits.storage.memory, "time", types.SimpleNamespace(time=lambda: now[0]))
    throttle = client.app.state.review.throttle  # type: ignore[attr-defined]
    throttle.clock = lambda: now[0]

    def attempt(password: str, email: str = MAYA) -> int:
        page = client.get("/login").text
        return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_of(page)},
                           follow_redirects=False).status_code

    assert [attempt(f"wrong {i}") for i in range(5)] == [401] * 5
    refused = client.post("/login", data={"email": MAYA, "password": PASSWORD,
                                          "csrf_token": csrf_of(client.get("/login").text)}, follow_redirects=False)
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60  # even the right password
    assert "too many failed logins for this account" in refused.text.lower()
    now[0] += 61  # the minute window has passed: five more tries, then the 15-minute window holds
    assert [attempt(f"again {i}") for i in range(5)] == [401] * 5
    longer = client.post("/login", data={"email": MAYA, "password": PASSWORD,
                                         "csrf_token": csrf_of(client.get("/login").text)}, follow_redirects=False)
    assert longer.status_code == 429 and int(longer.headers["Retry-After"]) > 60  # the wait grew
    now[0] += 15 * 60 + 1
    assert attempt(PASSWORD) == 303
    with sqlite_world.factory() as session:
        actions = list(session.scalars(select(AuditRow.action).where(AuditRow.entity == "login")))
    assert actions.count("login.failed") == 10 and actions.count("login.throttled") == 2


def test_guessing_across_accounts_is_throttled_per_address(client: TestClient) -> None:
    statuses = []
    for i in range(21):
        page = client.get("/login").text
        statuses.append(client.post("/login", data={"email": f"user{i}@example.com", "password": "x",
                                                    "csrf_token": csrf_of(page)}).status_code)
    assert statuses[:20] == [401] * 20 and statuses[20] == 429


def test_security_headers_on_every_kind_of_response(client: TestClient, sqlite_world: ReviewWorld) -> None:
    login(client, MAYA)
    for path in ("/login", "/queue", f"/drafts/{sqlite_world.draft_ids['acme']}", "/static/review.css",
                 "/drafts/abc", "/no-such-page", "/api/drafts", "/dashboard", "/api/docs"):
        headers = client.get(path, follow_redirects=False).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, path
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "no-referrer", path
    assert client.get("/queue").headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", [
    f"/drafts/{HUGE}", "/drafts/abc", "/drafts/-1", "/drafts/0", f"/drafts/{HUGE}/edit",
    f"/queue?page={HUGE}", "/queue?page=abc", "/queue?page=0", "/queue?page=999", "/queue?sort=evil",
    "/queue?status=nope", "/queue?q=%25_%5C", "/dashboard?period=0001-Q1", "/dashboard?period=9999",
    "/dashboard?period=2026-13", "/dashboard?start=0001-01-01", "/dashboard?window=-5",
    f"/dashboard?window={HUGE}", "/dashboard?as_of=nope", "/prompts/nope", "/admin",
])
def test_no_500_on_malformed_or_out_of_range_pages(client: TestClient, path: str) -> None:
    login(client, MAYA)
    response = client.get(path)
    assert response.status_code in (200, 403, 404, 422), (path, response.status_code)
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text and "Internal Server Error" not in response.text


@pytest.mark.parametrize("path", [f"/api/drafts/{HUGE}", "/api/drafts/abc", f"/api/drafts?offset={HUGE}",
                                  "/api/drafts?limit=0", "/api/drafts?sort=evil", "/api/metrics?period=0001-Q1"])
def test_no_500_in_the_api(client: TestClient, sqlite_world: ReviewWorld, path: str) -> None:
    with db.transaction(sqlite_world.factory) as session:
        _, secret = create_token(session, ADMIN, "tests")
    response = client.get(path, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code in (404, 422), (path, response.status_code, response.text)
    assert response.json()["detail"]


def test_posts_with_bad_ids_are_not_500(client: TestClient) -> None:
    csrf = login(client, MAYA)
    for action in ("approve", "reject", "edit", "regenerate", "undo", "snooze", "reassign"):
        response = client.post(f"/drafts/{HUGE}/{action}", data={"csrf_token": csrf, "version": "1"})
        assert response.status_code in (404, 422), (action, response.status_code)


def test_sandboxed_preview_is_an_error_message_not_a_500(client: TestClient) -> None:
    csrf = login(client, ADMIN)
    source = ("---\nname: upsell\nversion: '9'\nmotion: upsell\ndescription: d\n---\n"
              "{% block system %}{{ ''.__class__.__mro__ }}{% endblock %}\n{% block user %}u{% endblock %}\n")
    response = client.post("/prompts/upsell/preview", data={"csrf_token": csrf, "source": source, "account": "acme"})
    assert response.status_code < 500 and "Traceback" not in response.text


def test_no_third_party_asset_on_any_page(client: TestClient, sqlite_world: ReviewWorld) -> None:
    login(client, ADMIN)
    pages = ["/login", "/queue", "/queue?status=all", f"/drafts/{sqlite_world.draft_ids['acme']}", "/dashboard",
             "/prompts", "/prompts/upsell", "/api/docs", "/admin"]
    for path in pages:
        html = client.get(path).text
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert url.startswith(("/", "#", "?", "mailto:")), (path, url)
        assert "<script>" not in html and " onclick=" not in html and " onchange=" not in html, path
    docs = client.get("/api/docs").text
    for asset in re.findall(r'(?:src|href)="(/api/docs/assets/[^"]+)"', docs):
        assert client.get(asset).status_code == 200
    assert client.get("/api/openapi.json").status_code == 200  # the docs page reads it with the login cookie


def test_docs_need_a_login(client: TestClient) -> None:
    assert client.get("/api/docs", follow_redirects=False).status_code == 303
    assert client.get("/api/openapi.json").status_code == 401


def test_tokens_expire_and_can_be_revoked(client: TestClient, sqlite_world: ReviewWorld) -> None:
    from outreach.review.users import list_tokens, revoke_token

    with db.transaction(sqlite_world.factory) as session:
        info, secret = create_token(session, MAYA, "slack", days=30)
    headers = {"Authorization": f"Bearer {secret}"}
    assert info.expires_at is not None and client.get("/api/me", headers=headers).status_code == 200
    with db.transaction(sqlite_world.factory) as session:
        session.execute(update(ApiTokenRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    expired = client.get("/api/me", headers=headers)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    with db.transaction(sqlite_world.factory) as session:
        _, second = create_token(session, MAYA, "zapier")
        revoke_token(session, list_tokens(session, email=MAYA)[0].prefix)
        assert [t.state(datetime.now(UTC)) for t in list_tokens(session, email=MAYA)] == ["revoked", "expired"]
    assert client.get("/api/me", headers={"Authorization": f"Bearer {second}"}).status_code == 401


def test_admin_page_manages_users_and_tokens(client: TestClient, sqlite_world: ReviewWorld) -> None:
    other = fresh(client)
    login(other, MAYA)
    assert other.get("/admin").status_code == 403  # an SDR cannot
    csrf = login(client, ADMIN)
    with db.transaction(sqlite_world.factory) as session:
        info, secret = create_token(session, SAM, "slack")
    page = client.get("/admin").text
    assert MAYA in page and info.prefix in page
    changed = client.post("/admin/users/role", data={"csrf_token": csrf, "email": MAYA, "role": "marketing"})
    assert "is now marketing; 1 session(s) ended" in changed.text
    assert other.get("/queue", follow_redirects=False).status_code == 303  # her session ended with the change
    reset = client.post("/admin/users/reset-password", data={"csrf_token": csrf, "email": MAYA})
    password = re.search(r"shown once; their open sessions have ended\): <code>([^<]+)</code>", reset.text)
    assert password and login(fresh(client), MAYA, password.group(1))
    client.post("/admin/tokens/revoke", data={"csrf_token": csrf, "prefix": info.prefix})
    assert client.get("/api/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    client.post("/admin/users/deactivate", data={"csrf_token": csrf, "email": SAM})
    last = client.post("/admin/users/deactivate", data={"csrf_token": csrf, "email": ADMIN})
    assert last.status_code == 409 and "last active admin" in last.text
    forged = client.post("/admin/users/activate", data={"csrf_token": "forged", "email": SAM})
    assert forged.status_code == 403
