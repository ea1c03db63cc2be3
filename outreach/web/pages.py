"""The server-rendered pages: login, queue, draft detail, and the form posts behind every review action.

Each POST checks the session's CSRF token first, then calls the queue library. Success redirects (303) to
the next thing a rep wants to see — after approving or rejecting from the detail page, the next draft in the
queue — with a flash message; a library error re-renders the page with the error and the right status
(409 conflict, 403 wrong owner or role, 422 bad input), keeping what the rep typed.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from outreach.db import transaction
from outreach.engine.triggers.spec import KIND_PATTERN
from outreach.errors import NotFoundError, OutreachError, PermissionDeniedError
from outreach.review.queue import (
    MAX_BODY_CHARS,
    MAX_CTA_CHARS,
    MAX_INSTRUCTIONS_CHARS,
    MAX_NOTE_CHARS,
    MAX_SUBJECT_CHARS,
    REJECT_REASONS,
    STATUSES,
    DraftDetail,
    QueueFilter,
    ReviewQueue,
)
from outreach.review.users import Principal, authenticate, get_user
from outreach.web.state import WEB_DIR, LoginRequired, ReviewApp

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
MOTIONS = ("upsell", "cross_sell", "bundle")
STATUS_LABELS = {s: s.replace("_", " ") for s in STATUSES}


class CsrfError(PermissionDeniedError):
    """A form arrived without this session's CSRF token (forged, or from a page open before a re-login)."""


def _review(request: Request) -> ReviewApp:
    review: ReviewApp = request.app.state.review
    return review


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get("csrf")
    given = submitted or request.headers.get("X-CSRF-Token") or ""
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), given.encode()):
        raise CsrfError("this form has expired or did not come from this app (CSRF check failed)",
                        hint="reload the page and try again; nothing was changed")


def page_user(request: Request) -> Principal:
    user_id = request.session.get("uid")
    if not isinstance(user_id, int):
        raise LoginRequired()
    try:
        with _review(request).factory() as session:
            return get_user(session, user_id)
    except NotFoundError:
        request.session.clear()
        raise LoginRequired() from None


User = Annotated[Principal, Depends(page_user)]


def flash(request: Request, kind: str, text: str) -> None:
    messages = list(request.session.get("flash", []))
    messages.append({"kind": kind, "text": text})
    request.session["flash"] = messages[-5:]


def _context(request: Request, user: Principal | None, **values: Any) -> dict[str, Any]:
    flashes = request.session.pop("flash", [])
    return {
        "request": request,
        "user": user,
        "csrf": csrf_token(request),
        "flashes": flashes + values.pop("extra_flashes", []),
        "status_labels": STATUS_LABELS,
        "reject_reasons": REJECT_REASONS,
        "limits": {"subject": MAX_SUBJECT_CHARS, "body": MAX_BODY_CHARS, "cta": MAX_CTA_CHARS,
                   "note": MAX_NOTE_CHARS, "instructions": MAX_INSTRUCTIONS_CHARS},
        **values,
    }


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


def render_login(request: Request, *, error: str | None = None, next_url: str = "/queue") -> str:
    template = templates.get_template("login.html")
    return template.render(_context(request, None, error=error, next_url=next_url))


def render_error(request: Request, error: OutreachError, status: int) -> str:
    user = None
    user_id = request.session.get("uid")
    if isinstance(user_id, int):
        try:
            with _review(request).factory() as session:
                user = get_user(session, user_id)
        except NotFoundError:
            user = None
    template = templates.get_template("error.html")
    return template.render(_context(request, user, error=error, status=status))


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an attacker's ?next=https://evil.example must not become a redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/queue"
    return target


# ------------------------------------------------------------------------------------------------ login


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return HTMLResponse(render_login(request, next_url=_safe_next(next)))


@router.post("/login", response_model=None)
def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token_field: Annotated[str | None, Form(alias="csrf_token")] = None,
    next_url: Annotated[str, Form(alias="next")] = "/queue",
) -> Response:
    try:
        check_csrf(request, csrf_token_field)
    except CsrfError as error:
        return HTMLResponse(render_login(request, error=error.message, next_url=_safe_next(next_url)),
                            status_code=403)
    try:
        with transaction(_review(request).factory) as session:
            user = authenticate(session, email, password)
    except PermissionDeniedError as error:
        return HTMLResponse(render_login(request, error=error.message, next_url=_safe_next(next_url)),
                            status_code=401)
    request.session.clear()  # a fresh session (and CSRF token) at login: no session fixation
    request.session["uid"] = user.id
    csrf_token(request)
    return RedirectResponse(_safe_next(next_url), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token_field: Annotated[str | None, Form(alias="csrf_token")] = None) -> Response:
    check_csrf(request, csrf_token_field)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# ------------------------------------------------------------------------------------------------ queue


def _filter(user: Principal, params: dict[str, str]) -> tuple[QueueFilter, dict[str, str]]:
    """Parse queue query parameters. SDRs see their own drafts unless they ask for everyone's."""
    status = params.get("status") or "pending_review"
    owner = params.get("owner") or ("me" if user.role == "sdr" else "all")
    motion = params.get("motion") or ""
    trigger = params.get("trigger") or ""
    try:
        page = max(int(params.get("page") or 1), 1)
    except ValueError:
        page = 1
    if status != "all" and status not in STATUSES:
        raise OutreachError(f"'{status}' is not a draft status", hint=f"use one of: all, {', '.join(STATUSES)}")
    if motion and motion not in MOTIONS:
        raise OutreachError(f"'{motion}' is not a motion", hint=f"use one of: {', '.join(MOTIONS)}")
    if trigger and not KIND_PATTERN.match(trigger):
        raise OutreachError(f"'{trigger}' is not a trigger", hint="triggers are snake_case kinds; see `outreach rules check`")
    flt = QueueFilter(
        status=None if status == "all" else status,
        motion=motion or None,
        trigger=trigger or None,
        owner=user.email if owner == "me" else None if owner == "all" else owner,
        limit=50,
        offset=(page - 1) * 50,
    )
    shown = {"status": status, "owner": owner, "motion": motion, "trigger": trigger, "page": str(page)}
    return flt, shown


def _query(shown: dict[str, str], **changes: str) -> str:
    merged = {**shown, **changes}
    return urlencode({k: v for k, v in merged.items() if v and not (k == "page" and v == "1")})


@router.get("/", include_in_schema=False)
def home(_user: User) -> Response:
    return RedirectResponse("/queue", status_code=303)


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request, user: User) -> HTMLResponse:
    review = _review(request)
    flt, shown = _filter(user, dict(request.query_params))
    request.session["queue_query"] = _query(shown)
    page = review.queue.page(user, flt)
    extra = []
    if page.expired_now:
        extra.append({"kind": "warning", "text": f"{len(page.expired_now)} draft(s) expired: the account no "
                      "longer passes the gate (see the Expired tab)."})
    return _render(request, "queue.html", _context(
        request, user, page=page, shown=shown, query=lambda **c: _query(shown, **c),
        owners=review.queue.owners(), motions=MOTIONS, triggers=review.queue.triggers(), statuses=STATUSES,
        extra_flashes=extra,
    ))


def _queue_filter_from_session(request: Request, user: Principal) -> tuple[QueueFilter, str]:
    raw = request.session.get("queue_query", "")
    from urllib.parse import parse_qsl

    params = dict(parse_qsl(raw if isinstance(raw, str) else ""))
    try:
        flt, shown = _filter(user, params)
    except OutreachError:
        flt, shown = _filter(user, {})
    return flt, _query(shown)


def _detail_page(request: Request, user: Principal, detail: DraftDetail, *, mode: str = "",
                 status: int = 200, form: dict[str, str] | None = None,
                 error: OutreachError | None = None) -> HTMLResponse:
    review = _review(request)
    flt, queue_query = _queue_filter_from_session(request, user)
    newer, older = review.queue.neighbours(flt, detail.summary.id)
    extra = []
    if error is not None:
        extra.append({"kind": "error", "text": error.message + (f" — {error.hint}" if error.hint else "")})
    can_act = user.is_manager or (user.can_review and detail.summary.owner_email in (None, user.email))
    return _render(request, "draft.html", _context(
        request, user, d=detail, mode=mode, form=form or {}, prev_id=newer, next_id=older,
        queue_query=queue_query, can_act=can_act, extra_flashes=extra,
        regenerate_available=review.queue.regenerator is not None,
    ), status=status)


@router.get("/drafts/{draft_id}", response_class=HTMLResponse)
def draft_page(request: Request, draft_id: int, user: User, mode: str = "") -> HTMLResponse:
    detail = _review(request).queue.show(user, draft_id)
    return _detail_page(request, user, detail, mode=mode if mode in ("edit", "reject", "regenerate") else "")


@router.get("/drafts/{draft_id}/edit", response_class=HTMLResponse)
def edit_page(request: Request, draft_id: int, user: User) -> HTMLResponse:
    return draft_page(request, draft_id, user, mode="edit")


def _after_action(request: Request, user: Principal, draft_id: int, return_to: str, message: str,
                  next_id: int | None) -> Response:
    flash(request, "success", message)
    if return_to == "queue":
        query = request.session.get("queue_query", "")
        return RedirectResponse(f"/queue?{query}" if query else "/queue", status_code=303)
    if next_id is not None:
        return RedirectResponse(f"/drafts/{next_id}", status_code=303)
    return RedirectResponse(f"/drafts/{draft_id}", status_code=303)


def _act_failed(request: Request, user: Principal, draft_id: int, error: OutreachError, *, mode: str = "",
                form: dict[str, str] | None = None) -> HTMLResponse:
    from outreach.web.state import status_for

    status = status_for(error)
    queue: ReviewQueue = _review(request).queue
    detail = queue.show(user, draft_id)
    return _detail_page(request, user, detail, mode=mode, status=status, form=form, error=error)


CsrfField = Annotated[str | None, Form(alias="csrf_token")]
VersionField = Annotated[int, Form()]
ReturnField = Annotated[str, Form()]


@router.post("/drafts/{draft_id}/approve", response_model=None)
def approve(request: Request, draft_id: int, user: User, version: VersionField, csrf_token_field: CsrfField = None,
            return_to: ReturnField = "") -> Response:
    check_csrf(request, csrf_token_field)
    queue = _review(request).queue
    flt, _ = _queue_filter_from_session(request, user)
    _, next_id = queue.neighbours(flt, draft_id)
    try:
        detail = queue.approve(user, draft_id, version)
    except OutreachError as error:
        if return_to == "queue":
            flash(request, "error", error.message)
            return RedirectResponse(f"/queue?{request.session.get('queue_query', '')}", status_code=303)
        return _act_failed(request, user, draft_id, error)
    return _after_action(request, user, draft_id, return_to, f"Approved: {detail.summary.account_name}", next_id)


@router.post("/drafts/{draft_id}/reject", response_model=None)
def reject(request: Request, draft_id: int, user: User, version: VersionField, csrf_token_field: CsrfField = None,
           reason: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "",
           return_to: ReturnField = "") -> Response:
    check_csrf(request, csrf_token_field)
    queue = _review(request).queue
    flt, _ = _queue_filter_from_session(request, user)
    _, next_id = queue.neighbours(flt, draft_id)
    try:
        detail = queue.reject(user, draft_id, version, reason, note)
    except OutreachError as error:
        return _act_failed(request, user, draft_id, error, mode="reject", form={"reason": reason, "note": note})
    label = REJECT_REASONS.get(reason, reason)  # type: ignore[call-overload]
    return _after_action(request, user, draft_id, return_to,
                         f"Rejected: {detail.summary.account_name} ({label})", next_id)


@router.post("/drafts/{draft_id}/edit", response_model=None)
def edit(request: Request, draft_id: int, user: User, version: VersionField, csrf_token_field: CsrfField = None,
         subject: Annotated[str, Form()] = "", body: Annotated[str, Form()] = "",
         call_to_action: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token_field)
    queue = _review(request).queue
    try:
        detail = queue.edit(user, draft_id, version, subject=subject, body=body, call_to_action=call_to_action)
    except OutreachError as error:
        return _act_failed(request, user, draft_id, error, mode="edit",
                           form={"subject": subject, "body": body, "call_to_action": call_to_action})
    flash(request, "success", f"Saved version {detail.current.number} (edit distance "
                              f"{detail.current.edit_distance} from the model's text)")
    return RedirectResponse(f"/drafts/{draft_id}", status_code=303)


@router.post("/drafts/{draft_id}/regenerate", response_model=None)
def regenerate(request: Request, draft_id: int, user: User, version: VersionField,
               csrf_token_field: CsrfField = None, instructions: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token_field)
    queue = _review(request).queue
    try:
        detail = queue.regenerate(user, draft_id, version, instructions)
    except OutreachError as error:
        return _act_failed(request, user, draft_id, error, mode="regenerate", form={"instructions": instructions})
    flash(request, "success", f"Regenerated: version {detail.current.number}")
    return RedirectResponse(f"/drafts/{draft_id}", status_code=303)


@router.post("/queue/bulk-approve", response_model=None)
async def bulk_approve(request: Request, user: User) -> Response:
    form = await request.form()
    token = form.get("csrf_token")
    check_csrf(request, token if isinstance(token, str) else None)
    items: list[tuple[int, int]] = []
    for value in form.getlist("selected"):
        draft_id, _, version = str(value).partition(":")
        if draft_id.isdigit() and version.isdigit():
            items.append((int(draft_id), int(version)))
    query = request.session.get("queue_query", "")
    target = f"/queue?{query}" if query else "/queue"
    if not items:
        flash(request, "warning", "Select drafts first (x toggles the current row).")
        return RedirectResponse(target, status_code=303)
    queue = _review(request).queue
    result = await run_in_threadpool(queue.bulk_approve, user, items)
    if result.approved:
        flash(request, "success", f"Approved {len(result.approved)} draft(s).")
    for failed_id, message in sorted(result.failed.items()):
        flash(request, "error", f"Draft {failed_id}: {message}")
    return RedirectResponse(target, status_code=303)

