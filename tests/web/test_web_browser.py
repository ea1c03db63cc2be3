"""End to end in a real browser: Playwright drives Debian's Chromium against the app served by uvicorn.

A rep logs in, opens the queue, opens a draft, sees the evidence, edits, approves with the keyboard and
rejects with a reason. Screenshots of the queue and a draft (demo data) are saved in docs/screenshots/.
Without /usr/bin/chromium the tests skip, except under CI=true, where they fail: CI must run them.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from outreach import bundled
from outreach.settings import Settings
from outreach.web.app import create_app
from tests.review_world import MAYA, PASSWORD, ReviewWorld
from tests.webclient import make_app, web_settings

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DEMO_DATA = bundled.DEMO_DATA

if not CHROMIUM.exists():
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("/usr/bin/chromium is missing; CI must install Debian's chromium", pytrace=False)
    pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium): skipping browser tests",
                allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn in a background thread on 127.0.0.1 and a free port."""

    def __init__(self, app: FastAPI) -> None:
        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 15 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


def log_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/queue")
    expect(page.get_by_role("heading", name="Log in to review drafts")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#queue-table")).to_be_visible()


def test_review_a_draft_end_to_end(page: Page, sqlite_world: ReviewWorld) -> None:
    world = sqlite_world
    with LiveServer(make_app(world)) as server:
        log_in(page, server.url, MAYA)
        # The queue: mine by default, counts per status, the first row is current and focused.
        expect(page.locator("[data-status-count=pending_review]")).to_have_text("1")
        page.get_by_label("Owner").select_option("all")
        expect(page.locator("#queue-table tbody tr")).to_have_count(3)
        expect(page.locator("tr.current")).to_have_count(1)
        # j moves down, k up (the current row is remembered across pages); Enter opens the current draft.
        ids = [row.get_attribute("data-draft-id") for row in page.locator("#queue-table tbody tr").all()]
        start = ids.index(page.locator("tr.current").get_attribute("data-draft-id"))
        there, back = ("j", "k") if start < len(ids) - 1 else ("k", "j")
        page.keyboard.press(there)
        expect(page.locator("tr.current")).to_have_attribute("data-draft-id", ids[start + (1 if there == "j" else -1)])
        expect(page.locator("tr.current a.rowlink")).to_be_focused()
        page.keyboard.press(back)
        expect(page.locator("tr.current")).to_have_attribute("data-draft-id", ids[start])
        acme_row = page.locator(f"tr[data-draft-id='{world.draft_ids['acme']}']")
        acme_row.click()
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Acme Corp")).to_be_visible()
        # The evidence beside the draft; a number links to its friction card.
        expect(page.locator("#friction-1")).to_contain_text("hit the reports limit 3 times")
        expect(page.locator("#friction-1 table.ev tbody tr")).to_have_count(3)
        page.locator("#draft-body a.fig", has_text="3").first.click()
        expect(page).to_have_url(f"{server.url}/drafts/{world.draft_ids['acme']}#friction-1")
        # e opens the editor; Ctrl+Enter saves a new version.
        page.locator("body").press("e")
        body = page.locator("#edit-body")
        expect(body).to_be_focused()
        body.fill("Hi Dana,\n\nYou hit the reports limit 3 times. <script>window.pwned=1</script>\n\nMaya")
        body.press("Control+Enter")
        expect(page.locator(".flash-success")).to_contain_text("Saved version 2")
        expect(page.locator("#draft-body")).to_contain_text("<script>window.pwned=1</script>")
        assert page.evaluate("window.pwned") is None  # shown as text, never executed
        # a approves (the gate is re-checked) and moves on to the next draft.
        page.locator("body").press("a")
        expect(page.locator(".flash-success")).to_contain_text("Approved: Acme Corp")
        assert world.queue.show(world.admin, world.draft_ids["acme"]).summary.status == "approved"
        # r opens the reject form on Initech (unassigned, so Maya may act); pick "Timing" with a note.
        page.goto(f"{server.url}/drafts/{world.draft_ids['initech']}")
        page.locator("body").press("r")
        expect(page.locator("#panel-reject")).to_be_visible()
        page.get_by_label("Timing").check()
        page.locator("#reject-note").fill("renewal call next week")
        page.get_by_role("button", name="Reject draft").click()
        expect(page.locator(".flash-success")).to_contain_text("Rejected: Initech (Timing)")
        detail = world.queue.show(world.admin, world.draft_ids["initech"])
        assert (detail.summary.status, detail.reject_reason, detail.reject_text) == (
            "rejected", "timing", "renewal call next week")
        # ? opens the shortcut help.
        page.goto(f"{server.url}/queue")
        page.keyboard.press("?")
        expect(page.locator("dialog#help")).to_be_visible()


def test_conflict_is_shown_to_the_second_reviewer(page: Page, sqlite_world: ReviewWorld) -> None:
    world = sqlite_world
    with LiveServer(make_app(world)) as server:
        log_in(page, server.url, MAYA)
        page.goto(f"{server.url}/drafts/{world.draft_ids['acme']}")
        expect(page.locator("#approve-button")).to_be_visible()
        world.queue.edit(world.admin, world.draft_ids["acme"], world.version("acme"), subject="Ada's subject",
                         body="Ada rewrote this.")
        page.locator("body").press("a")
        expect(page.locator(".flash-error")).to_contain_text("changed since you opened it")
        expect(page.locator("#draft-subject")).to_contain_text("Ada's subject")
        assert world.queue.show(world.admin, world.draft_ids["acme"]).summary.status == "pending_review"


@dataclass
class DemoServer:
    url: str
    email: str
    password: str
    admin_email: str
    admin_password: str


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """The demo's queue (prepare_demo, as `outreach demo` fills it) served once for the demo-data tests."""
    from concurrent.futures import ThreadPoolExecutor

    from outreach.cli.review import prepare_demo

    home = tmp_path_factory.mktemp("demo")
    settings = Settings(database_url=f"sqlite:///{home / 'demo.db'}")
    # Drafting runs its own asyncio loop; Playwright's sync API already runs one in this thread.
    with ThreadPoolExecutor(1) as pool:
        demo = pool.submit(prepare_demo, settings, DEMO_DATA, date(2026, 11, 20)).result()
    app = create_app(web_settings(settings, secret_key="screenshot-secret-0123456789", data_dir=DEMO_DATA,
                                  as_of=date(2026, 11, 20)))
    with LiveServer(app) as server:
        yield DemoServer(server.url, demo.email, demo.password, demo.admin_email, demo.admin_password)


def test_screenshots_of_the_demo(page: Page, tmp_path: Path, request: pytest.FixtureRequest,
                                 demo_server: DemoServer) -> None:
    """Screenshots of the demo queue and a draft: into a temp dir, or docs/screenshots with --update-screenshots."""
    shots = SCREENSHOTS if request.config.getoption("--update-screenshots") else tmp_path / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    log_in(page, demo_server.url, demo_server.email, demo_server.password)
    rows = page.locator("#queue-table tbody tr")
    assert rows.count() >= 5
    page.screenshot(path=str(shots / "queue.png"))
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page.locator(".evidence .friction").first).to_be_visible()
    expect(page.locator("#draft-body a.fig").first).to_be_visible()
    page.screenshot(path=str(shots / "draft.png"), full_page=True)
    assert (shots / "queue.png").stat().st_size > 10_000
    assert (shots / "draft.png").stat().st_size > 10_000


def test_security_in_the_browser(browser: Browser, demo_server: DemoServer) -> None:
    """No third-party request and no CSP violation on any page (Swagger UI included); a cookie copied before
    logout opens nothing afterwards."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    foreign: list[str] = []
    violations: list[str] = []
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith((demo_server.url, "data:")) else None)
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    log_in(page, demo_server.url, demo_server.admin_email, demo_server.admin_password)
    first = page.locator("#queue-table tbody tr a.rowlink").first.get_attribute("href")
    for path in ("/queue?status=all", str(first), "/dashboard", "/prompts", "/prompts/upsell", "/admin", "/integrations",
                 "/api/docs"):
        page.goto(demo_server.url + path)
        page.wait_for_load_state("networkidle")
    expect(page.locator("#swagger-ui .opblock").first).to_be_visible()  # Swagger UI ran from local assets
    assert foreign == [] and violations == []
    cookies = context.cookies()
    page.goto(demo_server.url + "/queue")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to review drafts")).to_be_visible()
    replay = browser.new_context()
    replay.add_cookies(cookies)  # type: ignore[arg-type]
    stolen = replay.new_page()
    stolen.goto(demo_server.url + "/queue")
    expect(stolen.get_by_role("heading", name="Log in to review drafts")).to_be_visible()
    replay.close()
    context.close()


def test_a_reps_morning(page: Page, demo_server: DemoServer) -> None:
    """The demo SDR works the queue: sort, search, bulk reject two with a reason, approve one and undo it,
    edit then regenerate keeping the edit, and Back after navigating shows what the URL says."""
    base = demo_server.url
    log_in(page, base, demo_server.email, demo_server.password)
    rows = page.locator("#queue-table tbody tr")
    expect(rows.first).to_be_visible()
    count = rows.count()
    assert count >= 5  # the demo leaves the rep a real queue: all of their drafts pending
    # Sort by MRR: rows come highest first, and the order is in the URL.
    page.locator("#queue-sort").select_option("mrr")
    expect(page).to_have_url(re.compile(r"sort=mrr"))
    mrrs = [float(t.replace("$", "").replace(",", "")) for t in page.locator("td.mrr").all_inner_texts()]
    assert mrrs == sorted(mrrs, reverse=True)
    # Search for one account by name.
    name = page.locator("td.acct a.rowlink").nth(1).inner_text()
    page.keyboard.press("/")
    page.locator("#queue-search").fill(name)
    page.locator("#queue-search").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(name)
    page.goto(f"{base}/queue?sort=mrr")
    # Bulk reject the last two rows with one reason.
    rejected = [rows.nth(i).get_attribute("data-draft-id") for i in (count - 2, count - 1)]
    for draft_id in rejected:
        page.locator(f"tr[data-draft-id='{draft_id}'] input[type=checkbox]").check()
    page.locator("#bulk-reason").select_option("timing")
    page.locator("#bulk-note").fill("renewal next month")
    page.locator("#bulk-reject").click()
    expect(page.locator(".flash-success")).to_contain_text("Rejected 2 draft(s)")
    expect(rows).to_have_count(count - 2)
    # Approve the first one from its page, then undo with z.
    first_id = rows.first.get_attribute("data-draft-id")
    rows.first.locator("td.subject").click()  # the current row (j/k and clicks move it)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/drafts/{first_id}")
    expect(page.locator("#draft-to")).to_contain_text("@")  # the recipient is on the page
    page.locator("body").press("a")
    expect(page.locator(".flash-success")).to_contain_text("Approved:")
    expect(page.locator("#undo-button")).to_be_visible()
    page.locator("body").press("z")
    expect(page.locator(".flash-success")).to_contain_text("pending review again")
    expect(page).to_have_url(f"{base}/drafts/{first_id}")
    expect(page.locator("#approve-button")).to_be_visible()
    # Edit (add a P.S.), then regenerate keeping the edit.
    page.locator("body").press("e")
    body = page.locator("#edit-body")
    body.fill(body.input_value() + "\n\nP.S. Happy to walk your team through it on Thursday.")
    body.press("Control+Enter")
    expect(page.locator(".flash-success")).to_contain_text("Saved version 2")
    page.locator("body").press("g")
    expect(page.locator("#keep-edits")).to_be_checked()
    page.locator("#confirm-regenerate").click()
    expect(page.locator(".flash-success")).to_contain_text("Regenerated: version 3")
    expect(page.locator("#draft-body")).to_contain_text("P.S. Happy to walk your team through it on Thursday.")
    # j opens the next draft; Back shows the previous one again, exactly as its URL says.
    heading = page.locator("h1").inner_text()
    page.locator("body").press("j")
    expect(page).not_to_have_url(f"{base}/drafts/{first_id}")
    assert page.locator("h1").inner_text() != heading
    page.go_back()
    expect(page).to_have_url(f"{base}/drafts/{first_id}")
    expect(page.locator("h1")).to_have_text(heading)
    page.keyboard.press("?")
    expect(page.locator("dialog#help dt").first).to_contain_text("j")
    help_rows = page.locator("dialog#help dl").first
    expect(help_rows.locator("dt").nth(0)).to_contain_text("j")
    expect(help_rows.locator("dd").nth(0)).to_contain_text("next / previous draft")
