"""The unsubscribe endpoint behind every email's links: ``/unsubscribe/<token>``.

GET only shows a confirm button and never unsubscribes: mail scanners and link previewers fetch every URL
in a message, and must not opt people out. POST unsubscribes at once, for every sequence — both the
button's form and RFC 8058 one-click POSTs from mail clients (body ``List-Unsubscribe=One-Click``). No login,
cookie or CSRF token is needed: the random token in the URL is the only credential and names one recipient.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from outreach.db import transaction
from outreach.errors import NotFoundError
from outreach.sending.suppression import lookup, unsubscribe

router = APIRouter(tags=["unsubscribe"])

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<link rel="stylesheet" href="/static/standalone.css"></head><body class="standalone">
<h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status,
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _masked(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain}"


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, include_in_schema=False)
def confirm(request: Request, token: str) -> HTMLResponse:
    from outreach.web.state import ReviewApp

    review: ReviewApp = request.app.state.review
    try:
        with transaction(review.factory) as session:
            row = lookup(session, token)
            email = row.email
    except NotFoundError:
        return _page("Link not valid", "<p>This unsubscribe link is not valid. Reply to the email with "
                     "“unsubscribe” and we will take you off the list.</p>", 404)
    action = html.escape(f"/unsubscribe/{token}", quote=True)
    return _page("Unsubscribe?", f"<p>Stop all product emails to <strong>{html.escape(_masked(email))}</strong>?</p>"
                 f'<form method="post" action="{action}"><button type="submit">Unsubscribe</button></form>')


@router.post("/unsubscribe/{token}", response_class=HTMLResponse, include_in_schema=False)
def unsubscribe_post(request: Request, token: str) -> HTMLResponse:
    from outreach.web.state import ReviewApp

    review: ReviewApp = request.app.state.review
    one_click = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    try:
        with transaction(review.factory) as session:
            unsubscribe(session, token, datetime.now(UTC), via="one-click" if one_click else "web")
    except NotFoundError:
        return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 404)
    return _page("You are unsubscribed", "<p>You will not get any more of these emails. It took effect "
                 "immediately, for every list.</p>")
