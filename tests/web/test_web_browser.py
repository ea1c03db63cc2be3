"""End to end in a real browser: Playwright drives Debian's Chromium against the app served by uvicorn.

A rep logs in, opens the queue, opens a draft, sees the evidence, edits, approves with the keyboard and
rejects with a reason. Screenshots of the queue and a draft (demo data) are saved in docs/screenshots/.
Without /usr/bin/chromium the tests skip, except under CI=true, where they fail: CI must run them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
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


@pytest.mark.skipif(not (DEMO_DATA / "accounts.csv").exists(), reason="outreach/defaults/demo is not present")
def test_screenshots_of_the_demo(page: Page, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Screenshots of the demo queue and a draft: into a temp dir, or docs/screenshots with --update-screenshots."""
    shots = SCREENSHOTS if request.config.getoption("--update-screenshots") else tmp_path / "screenshots"
    from outreach.cli.review import prepare_demo

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}")
    # Drafting runs its own asyncio loop; Playwright's sync API already runs one in this thread.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        demo = pool.submit(prepare_demo, settings, DEMO_DATA, date(2026, 11, 20)).result()
    app = create_app(web_settings(settings, secret_key="screenshot-secret-0123456789", data_dir=DEMO_DATA,
                                           as_of=date(2026, 11, 20)))
    shots.mkdir(parents=True, exist_ok=True)
    with LiveServer(app) as server:
        log_in(page, server.url, demo.email, demo.password)
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
