"""The server-rendered pages: login, queue, draft detail, and the form posts behind every review action.

Each POST checks the session's CSRF token first, then calls the queue library. Success redirects (303) to
the next thing a rep wants to see — after approving or rejecting from the detail page, the next draft in the
queue — with a flash message; a library error re-renders the page with the error and the right status
(409 conflict, 403 wrong owner or role, 422 bad input), keeping what the rep typed.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from outreach.db import transaction
from outreach.engine.triggers.spec import KIND_PATTERN
from outreach.errors import OutreachError, PermissionDeniedError
from outreach.review.queue import (
    MAX_BODY_CHARS,
    MAX_CTA_CHARS,
    MAX_INSTRUCTIONS_CHARS,
    MAX_NOTE_CHARS,
    MAX_SUBJECT_CHARS,
    REJECT_REASONS,
    SORTS,
    STATUSES,
    UNDO_SECONDS,
    DraftDetail,
    QueueFilter,
    ReviewQueue,
    can_act,
)
from outreach.review.users import (
    Principal,
    audit_login,
    authenticate,
    end_session,
    session_principal,
    start_session,
)
from outreach.web.security import client_address
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


def current_user(request: Request) -> Principal | None:
    """The user of this request's server-side session, or None (the cookie is cleared when the session has
    ended, and the login page says why)."""
    secret = request.session.get("sid")
    if not isinstance(secret, str):
        return None
    review = _review(request)
    with transaction(review.factory) as session:  # commits the revocation of a session that just timed out
        try:
            return session_principal(session, secret, idle=review.session_idle)
        except PermissionDeniedError as error:
            ended = error
    request.session.clear()
    flash(request, "warning", ended.message[0].upper() + ended.message[1:] + ". Log in again.")
    return None


def page_user(request: Request) -> Principal:
    user = current_user(request)
    if user is None:
        raise LoginRequired()
    return user


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
    user = current_user(request)
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
    review = _review(request)
    address = client_address(request)
    throttled = review.throttle.check(email, address)
    if throttled is not None:
        with transaction(review.factory) as session:
            audit_login(session, "login.throttled", email, address, {"retry_after": throttled.retry_after,
                                                                     "scope": throttled.scope})
        message = throttled.message()
        return HTMLResponse(render_login(request, error=message[0].upper() + message[1:] + ".",
                                         next_url=_safe_next(next_url)),
                            status_code=429, headers={"Retry-After": str(throttled.retry_after)})
    try:
        with transaction(review.factory) as session:
            user = authenticate(session, email, password)
            secret = start_session(session, user, lifetime=review.session_lifetime, address=address,
                                   user_agent=request.headers.get("User-Agent"))
    except PermissionDeniedError as error:
        review.throttle.failed(email, address)
        with transaction(review.factory) as session:
            audit_login(session, "login.failed", email, address, None)
        return HTMLResponse(render_login(request, error=error.message, next_url=_safe_next(next_url)),
                            status_code=401)
    review.throttle.succeeded(email)
    request.session.clear()  # a fresh session (and CSRF token) at login: no session fixation
    request.session["sid"] = secret
    csrf_token(request)
    return RedirectResponse(_safe_next(next_url), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token_field: Annotated[str | None, Form(alias="csrf_token")] = None) -> Response:
    check_csrf(request, csrf_token_field)
    secret = request.session.get("sid")
    if isinstance(secret, str):
        with transaction(_review(request).factory) as session:
            end_session(session, secret)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# ------------------------------------------------------------------------------------------------ queue


PAGE_SIZE = 50
MAX_PAGE = 100_000
# Snooze choices offered on the page: label → how long.
SNOOZE_CHOICES = {"1d": ("1 day", timedelta(days=1)), "3d": ("3 days", timedelta(days=3)),
                  "7d": ("1 week", timedelta(days=7)), "30d": ("30 days", timedelta(days=30))}


def _reps(review: ReviewApp) -> list[str]:
    """Active sdr and admin logins: who a draft can be handed to."""
    from outreach.review.users import list_users

    with review.factory() as session:
        return [u.email for u in list_users(session) if u.role in ("sdr", "admin") and _active(session, u.id)]


def _active(session: Any, user_id: int) -> bool:
    from outreach.review.storage import UserRow

    row = session.get(UserRow, user_id)
    return bool(row is not None and row.active)


def _snooze_until(choice: str) -> datetime:
    if choice not in SNOOZE_CHOICES:
        raise OutreachError(f"'{choice[:20]}' is not a snooze choice", hint=f"use one of: {', '.join(SNOOZE_CHOICES)}")
    return datetime.now(UTC) + SNOOZE_CHOICES[choice][1]


def _filter(user: Principal, params: dict[str, str]) -> tuple[QueueFilter, dict[str, str]]:
    """Parse queue query parameters (a bad value is a 422 page). SDRs see their own drafts unless they ask for
    everyone's; ``status=snoozed`` lists the pending drafts that are snoozed."""
    status = params.get("status") or "pending_review"
    owner = params.get("owner") or ("me" if user.role == "sdr" else "all")
    motion = params.get("motion") or ""
    trigger = params.get("trigger") or ""
    search = (params.get("q") or "").strip()[:200]
    sort = params.get("sort") or "priority"
    direction = params.get("dir") or ""
    raw_page = (params.get("page") or "1").strip()
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= MAX_PAGE:
        raise OutreachError(f"page '{raw_page[:40]}' is not a page number", hint=f"use 1 to {MAX_PAGE:,}")
    page = int(raw_page)
    if status not in ("all", "snoozed") and status not in STATUSES:
        raise OutreachError(f"'{status}' is not a draft status",
                            hint=f"use one of: all, snoozed, {', '.join(STATUSES)}")
    if motion and motion not in MOTIONS:
        raise OutreachError(f"'{motion}' is not a motion", hint=f"use one of: {', '.join(MOTIONS)}")
    if trigger and not KIND_PATTERN.match(trigger):
        raise OutreachError(f"'{trigger[:60]}' is not a trigger",
                            hint="triggers are snake_case kinds; see `outreach rules check`")
    if sort not in SORTS:
        raise OutreachError(f"'{sort}' is not a sort order", hint=f"use one of: {', '.join(SORTS)}")
    if direction not in ("", "asc", "desc"):
        raise OutreachError(f"'{direction}' is not a direction", hint="use asc or desc")
    flt = QueueFilter(
        status="pending_review" if status == "snoozed" else None if status == "all" else status,
        snoozed=status == "snoozed",
        motion=motion or None,
        trigger=trigger or None,
        owner=user.email if owner == "me" else None if owner == "all" else owner,
        search=search or None,
        sort=sort,
        descending=None if not direction else direction == "desc",
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    shown = {"status": status, "owner": owner, "motion": motion, "trigger": trigger, "q": search, "sort": sort,
             "dir": direction, "page": str(page)}
    return flt, shown


def _query(shown: dict[str, str], **changes: str) -> str:
    merged = {**shown, **changes}
    defaults = {"page": "1", "sort": "priority"}
    return urlencode({k: v for k, v in merged.items() if v and defaults.get(k) != v})


@router.get("/", include_in_schema=False)
def home(_user: User) -> Response:
    return RedirectResponse("/queue", status_code=303)


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request, user: User) -> HTMLResponse:
    review = _review(request)
    flt, shown = _filter(user, dict(request.query_params))
    page = review.queue.page(user, flt)
    last_page = max(1, -(-page.matching // PAGE_SIZE))
    if int(shown["page"]) > last_page:  # past the end (drafts were acted on): the last page that has rows
        shown["page"] = str(last_page)
        flt = flt.model_copy(update={"offset": (last_page - 1) * PAGE_SIZE})
        page = review.queue.page(user, flt)
    request.session["queue_query"] = _query(shown)
    extra = []
    if page.expired_now:
        extra.append({"kind": "warning", "text": f"{len(page.expired_now)} draft(s) expired: the account no "
                      "longer passes the gate (see the Expired tab)."})
    return _render(request, "queue.html", _context(
        request, user, page=page, shown=shown, query=lambda **c: _query(shown, **c),
        owners=review.queue.owners(), motions=MOTIONS, triggers=review.queue.triggers(), statuses=STATUSES,
        sorts={key: label for key, (label, _, _) in SORTS.items()},
        sort_desc={key: desc for key, (_, _, desc) in SORTS.items()}, reps=_reps(review), last_page=last_page,
        snooze_choices=SNOOZE_CHOICES, extra_flashes=extra,
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
    return _render(request, "draft.html", _context(
        request, user, d=detail, mode=mode, form=form or {}, prev_id=newer, next_id=older,
        queue_query=queue_query, can_act=can_act(user, detail.summary.owner_email), extra_flashes=extra,
        regenerate_available=review.queue.regenerator is not None,
        follows_instructions=review.queue.follows_instructions,
        has_edits=detail.current.source == "edit", reps=_reps(review), snooze_choices=SNOOZE_CHOICES,
    ), status=status)


@router.get("/drafts/{draft_id}", response_class=HTMLResponse)
def draft_page(request: Request, draft_id: int, user: User, mode: str = "") -> HTMLResponse:
    detail = _review(request).queue.show(user, draft_id)
    return _detail_page(request, user, detail, mode=mode if mode in ("edit", "reject", "regenerate") else "")


@router.get("/drafts/{draft_id}/edit", response_class=HTMLResponse)
def edit_page(request: Request, draft_id: int, user: User) -> HTMLResponse:
    return draft_page(request, draft_id, user, mode="edit")


def _after_action(request: Request, user: Principal, draft_id: int, return_to: str, message: str,
                  next_id: int | None, *, undo_version: int | None = None) -> Response:
    flash(request, "success", message)
    if undo_version is not None:
        request.session["flash"][-1]["undo"] = {
            "draft_id": draft_id, "version": undo_version,
            "expires": int((datetime.now(UTC).timestamp() + UNDO_SECONDS) * 1000)}
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
    return _after_action(request, user, draft_id, return_to, f"Approved: {detail.summary.account_name}", next_id,
                         undo_version=detail.summary.version)


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
                         f"Rejected: {detail.summary.account_name} ({label})", next_id,
                         undo_version=detail.summary.version)


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
               csrf_token_field: CsrfField = None, instructions: Annotated[str, Form()] = "",
               keep_edits: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token_field)
    queue = _review(request).queue
    try:
        detail = queue.regenerate(user, draft_id, version, instructions, keep_edits=keep_edits != "off")
    except OutreachError as error:
        return _act_failed(request, user, draft_id, error, mode="regenerate", form={"instructions": instructions})
    note = detail.actions[-1].note if detail.actions else None
    flash(request, "success", f"Regenerated: version {detail.current.number}" + (f" ({note})" if note else ""))
    return RedirectResponse(f"/drafts/{draft_id}", status_code=303)


@router.post("/drafts/{draft_id}/undo", response_model=None)
def undo(request: Request, draft_id: int, user: User, version: VersionField, csrf_token_field: CsrfField = None) -> Response:
    check_csrf(request, csrf_token_field)
    try:
        detail = _review(request).queue.undo(user, draft_id, version)
    except OutreachError as error:
        flash(request, "error", error.message)
        return RedirectResponse(f"/drafts/{draft_id}", status_code=303)
    flash(request, "success", f"Undone: {detail.summary.account_name} is pending review again")
    return RedirectResponse(f"/drafts/{draft_id}", status_code=303)


@router.post("/drafts/{draft_id}/snooze", response_model=None)
def snooze(request: Request, draft_id: int, user: User, version: VersionField, csrf_token_field: CsrfField = None,
           until: Annotated[str, Form(max_length=20)] = "1d", next_id: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token_field)
    queue = _review(request).queue
    flt, _ = _queue_filter_from_session(request, user)
    _, following = queue.neighbours(flt, draft_id)
    try:
        detail = queue.snooze(user, draft_id, version, None if until == "wake" else _snooze_until(until))
    except OutreachError as error:
        return _act_failed(request, user, draft_id, error)
    when = detail.summary.snoozed_until
    return _after_action(request, user, draft_id, "", f"Snoozed: {detail.summary.account_name} until "
                         f"{when:%b %d %H:%M} UTC" if when else f"Woken: {detail.summary.account_name}",
                         following if when else None)


@router.post("/drafts/{draft_id}/reassign", response_model=None)
def reassign(request: Request, draft_id: int, user: User, version: VersionField, csrf_token_field: CsrfField = None,
             owner: Annotated[str, Form(max_length=320)] = "") -> Response:
    check_csrf(request, csrf_token_field)
    try:
        detail = _review(request).queue.reassign(user, draft_id, version, owner)
    except OutreachError as error:
        return _act_failed(request, user, draft_id, error)
    flash(request, "success", f"Reassigned: {detail.summary.account_name} → {detail.summary.owner_email}")
    return RedirectResponse(f"/drafts/{draft_id}", status_code=303)


BULK_ACTIONS = ("approve", "reject", "reassign", "snooze")


@router.post("/queue/bulk", response_model=None)
@router.post("/queue/bulk-approve", response_model=None)
async def bulk(request: Request, user: User) -> Response:
    """Approve, reject (one reason for all), reassign or snooze the selected rows; each succeeds or fails on
    its own and the page says which."""
    form = await request.form()

    def field(name: str, default: str = "") -> str:
        value = form.get(name)
        return value if isinstance(value, str) else default

    check_csrf(request, field("csrf_token") or None)
    action = field("action", "approve")
    items: list[tuple[int, int]] = []
    for value in form.getlist("selected"):
        draft_id, _, version = str(value).partition(":")
        if draft_id.isdigit() and version.isdigit():
            items.append((int(draft_id), int(version)))
    query = request.session.get("queue_query", "")
    target = f"/queue?{query}" if query else "/queue"
    if action not in BULK_ACTIONS:
        flash(request, "error", f"'{action[:20]}' is not a bulk action")
        return RedirectResponse(target, status_code=303)
    if not items:
        flash(request, "warning", "Select drafts first (x toggles the current row).")
        return RedirectResponse(target, status_code=303)
    queue = _review(request).queue
    try:
        if action == "approve":
            approved = await run_in_threadpool(queue.bulk_approve, user, items)
            done, failed = approved.approved, approved.failed
        elif action == "reject":
            result = await run_in_threadpool(queue.bulk_reject, user, items, field("reason"), field("note"))
            done, failed = result.done, result.failed
        elif action == "reassign":
            result = await run_in_threadpool(queue.bulk_reassign, user, items, field("owner"))
            done, failed = result.done, result.failed
        else:
            result = await run_in_threadpool(queue.bulk_snooze, user, items, _snooze_until(field("until", "1d")))
            done, failed = result.done, result.failed
    except OutreachError as error:
        flash(request, "error", error.message + (f" — {error.hint}" if error.hint else ""))
        return RedirectResponse(target, status_code=303)
    verbs = {"approve": "Approved", "reject": "Rejected", "reassign": "Reassigned", "snooze": "Snoozed"}
    if done:
        flash(request, "success", f"{verbs[action]} {len(done)} draft(s).")
    for failed_id, message in sorted(failed.items()):
        flash(request, "error", f"Draft {failed_id}: {message}")
    return RedirectResponse(target, status_code=303)
