"""The /dashboard page (server-rendered SVG charts) and the outcomes/metrics JSON API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from outreach import bundled, db
from outreach.metrics.demo_history import load_demo_history
from outreach.review.users import add_user, create_token
from outreach.settings import Settings
from outreach.web.app import create_app
from tests.datadir import AS_OF
from tests.review_world import ADMIN, MAYA, PASSWORD, ReviewWorld
from tests.webclient import login, web_settings

DEMO = bundled.DEMO_DATA


@pytest.fixture
def demo_client(sqlite_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=sqlite_url)
    load_demo_history(settings, DEMO)
    engine = db.make_engine(sqlite_url)
    with db.transaction(db.session_factory(engine)) as session:
        add_user(session, ADMIN, "admin", PASSWORD)
    engine.dispose()
    web = web_settings(settings, secret_key="test-secret-key-0123456789", data_dir=DEMO, as_of=date(2026, 11, 20))
    with TestClient(create_app(web), base_url="http://127.0.0.1") as client:
        login(client, ADMIN)
        yield client


def test_dashboard_shows_the_seeded_history_with_accessible_charts(demo_client: TestClient) -> None:
    page = demo_client.get("/dashboard?period=2026")
    assert page.status_code == 200, page.text
    html = page.text
    assert '<a href="/dashboard" aria-current="page">Metrics</a>' in html
    charts = re.findall(r'<svg class="chart" id="([^"]+)" role="img" aria-labelledby="([^"]+)"', html)
    assert [c[0] for c in charts] == ["chart-funnel", "chart-conversion", "chart-nrr", "chart-reverts"]
    for chart_id, _ in charts:
        assert f'<title id="{chart_id}-title">' in html and f'<desc id="{chart_id}-desc">' in html
    # Numbers are in the page as text: attributed and organic MRR, NRR, the funnel and the chart descriptions.
    assert "1,551" in html and "1,137" in html and "NRR" in html
    funnel_desc = re.search(r'<desc id="chart-funnel-desc">([^<]*)</desc>', html)
    assert funnel_desc and "bundle converted 1" in funnel_desc.group(1)
    assert "integration request: 100% (2 of 2 sent)" in html
    # 35 journeys in the totals row: 10 drafted ones, and 25 triggered accounts without a draft this year
    assert re.search(r"<td>all</td><td>35</td>", html)
    assert "cdn" not in html.lower() and "<script src=\"http" not in html


def test_dashboard_opens_on_the_latest_period_with_data(demo_client: TestClient) -> None:
    opened = demo_client.get("/dashboard").text  # as of 2026-11-20: Q4 has sends and outcomes
    assert "Expansion metrics <span class=\"muted\">2026-Q4</span>" in opened
    empty = demo_client.get("/dashboard?period=2027-Q1").text
    assert "no data: the period starts after the analysis date (2026-11-20)" in empty
    before = demo_client.get("/dashboard?period=2024-Q1").text
    assert "no data: the period ends before the first contract starts" in before


def test_dashboard_period_controls_and_errors(demo_client: TestClient) -> None:
    q3 = demo_client.get("/dashboard?period=2026-Q3")
    assert q3.status_code == 200 and "2026-07-01 – 2026-09-30" in q3.text
    custom = demo_client.get("/dashboard?start=2026-10-01&end=2026-10-31&window=90")
    assert custom.status_code == 200 and "2026-10-01..2026-10-31" in custom.text
    assert 'name="window" min="0" value="90"' in custom.text
    bad = demo_client.get("/dashboard?period=someday")
    assert bad.status_code == 422 and "someday" in bad.text


def test_dashboard_needs_a_login(sqlite_url: str) -> None:
    settings = Settings(database_url=sqlite_url)
    with TestClient(create_app(web_settings(settings, secret_key="k" * 32)), base_url="http://127.0.0.1") as client:
        response = client.get("/dashboard", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


def _token(world: ReviewWorld, email: str) -> dict[str, str]:
    with db.transaction(world.factory) as session:
        _, secret = create_token(session, email, "tests")
    return {"Authorization": f"Bearer {secret}"}


def test_outcomes_api_records_and_metrics_api_reports(db_url: str, tmp_path: Path) -> None:
    world = ReviewWorld.build(db_url, tmp_path)
    settings = Settings(database_url=db_url)
    web = web_settings(settings, secret_key="test-secret-key-0123456789", data_dir=world.data_dir, as_of=AS_OF)
    outcomes = [
        {"kind": "seat_add", "account_id": "acme", "offer_id": "seats-5", "mrr_delta": 60,
         "occurred_at": "2026-11-02", "external_id": "crm-7"},
        {"kind": "churn", "account_id": "globex", "occurred_at": "2026-11-10"},
    ]
    try:
        with TestClient(create_app(web), base_url="http://127.0.0.1") as client:
            admin, sdr = _token(world, ADMIN), _token(world, MAYA)
            assert client.post("/api/outcomes", json=outcomes).status_code == 401
            assert client.post("/api/outcomes", json=outcomes, headers=sdr).status_code == 403
            created = client.post("/api/outcomes", json=outcomes, headers=admin)
            assert created.status_code == 200 and created.json() == {"read": 2, "created": 2, "duplicates": 0}
            again = client.post("/api/outcomes", json=outcomes[0], headers=admin)
            assert again.json() == {"read": 1, "created": 0, "duplicates": 1}
            bad = client.post("/api/outcomes", json={"kind": "upgrade", "account_id": "acme",
                                                     "occurred_at": "2026-11-02"}, headers=admin)
            assert bad.status_code == 422 and "mrr_delta" in bad.json()["detail"]
            metrics = client.get("/api/metrics?period=2026-Q4", headers=sdr)
            assert metrics.status_code == 200
            data = metrics.json()
            # Three accounts at 199; acme +60 (organic: nothing was sent), globex churns its 199.
            assert data["retention"]["start_mrr"] == 597 and data["retention"]["churn"] == 199
            assert data["retention"]["nrr"] == pytest.approx((597 + 60 - 199) / 597)
            assert data["organic"] == {"expansions": 1, "mrr": 60.0, "by_motion": {"upsell": 60.0}}
            assert data["totals"]["drafted"] == 3 and data["totals"]["sent"] == 0
            assert client.get("/api/metrics?period=nope", headers=sdr).status_code == 422
    finally:
        world.close()
