"""Helpers for driving the review web app in tests: build it over a ReviewWorld, log in, read CSRF tokens."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from outreach.drafting.providers.offline import OfflineProvider
from outreach.review.redraft import Redrafter
from outreach.review.users import sender_source
from outreach.settings import Settings
from outreach.web.app import create_app
from tests.review_world import PASSWORD, ReviewWorld

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_app(world: ReviewWorld) -> FastAPI:
    settings = Settings(database_url=world.url)
    redrafter = Redrafter.for_dataset(world.dataset, settings, provider=OfflineProvider(),
                                     senders=sender_source(world.factory))
    return create_app(web_settings(settings, secret_key="test-secret-key-0123456789"),
                      gate_check=world.queue.gate_check, regenerator=redrafter)


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Log in and return the session's CSRF token."""
    page = client.get("/login")
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text),
                                           "next": "/queue"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/login").text)  # any page carries the session token; /login reads no drafts


def web_settings(settings: Settings, **web: Any) -> Settings:
    """``settings`` with the web app's fields (secret key, data dir, as-of) set, as the app reads them."""
    if isinstance(web.get("secret_key"), str):
        web["secret_key"] = SecretStr(web["secret_key"])
    return settings.model_copy(update=web)
