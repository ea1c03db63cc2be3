"""``/integrations``: what outreach sent to Slack, the CRM and the outbound webhook, and what failed.

A failed notification never blocked the approval or send it reports; it waits here with the other side's
answer until a manager retries it (the button, or ``outreach notify --retry-failed``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from outreach.errors import PermissionDeniedError
from outreach.integrations.intake import active_key
from outreach.integrations.notify import configured_channels, retry_failed, summary
from outreach.integrations.tables import NotificationRow
from outreach.web.pages import User, _context, _render, check_csrf, flash
from outreach.web.state import ReviewApp

router = APIRouter(include_in_schema=False)


def _review(request: Request) -> ReviewApp:
    review: ReviewApp = request.app.state.review
    return review


@router.get("/integrations", response_class=HTMLResponse)
def integrations_page(request: Request, user: User, state: str | None = None) -> HTMLResponse:
    review = _review(request)
    with review.factory() as session:
        counts = summary(session)
        query = select(NotificationRow).order_by(NotificationRow.id.desc()).limit(100)
        if state:
            query = query.where(NotificationRow.state == state)
        rows = list(session.scalars(query))
        key = active_key(session)
    return _render(request, "integrations.html", _context(
        request, user, counts=counts, rows=rows, state=state or "",
        channels=sorted(configured_channels(review.settings)), key_prefix=key.prefix if key else None,
    ))


@router.post("/integrations/retry")
def retry(request: Request, user: User, csrf_token: Annotated[str | None, Form()] = None,
          notification_id: Annotated[int | None, Form()] = None) -> RedirectResponse:
    check_csrf(request, csrf_token)
    if not user.is_manager:
        raise PermissionDeniedError("only managers and admins retry notifications")
    count = retry_failed(_review(request).application, notification_id)
    flash(request, "ok", f"{count} notification(s) queued again; they go out within 15 seconds")
    return RedirectResponse("/integrations?state=pending", status_code=303)
