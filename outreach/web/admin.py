"""The admin page (``/admin``, admin role only): logins and API tokens.

What ``outreach users …`` and ``outreach tokens …`` do, for a manager without a shell: add a login, change a
role, deactivate or re-activate, reset a password (a generated one, shown once on the page, never stored in a
cookie), end a user's web sessions, and revoke an API token. Role changes, password resets and
deactivation end the user's sessions at once; every change is in the audit log under the admin's email.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from outreach.db import transaction
from outreach.errors import OutreachError, PermissionDeniedError
from outreach.review.users import (
    ROLES,
    Principal,
    activate_user,
    add_user,
    deactivate_user,
    end_user_sessions,
    generate_password,
    list_tokens,
    revoke_token,
    set_password,
    set_role,
    user_infos,
)
from outreach.review.users import _now as now
from outreach.web.pages import CsrfField, User, _context, _render, _review, check_csrf, flash
from outreach.web.state import status_for

router = APIRouter(include_in_schema=False)
EmailField = Annotated[str, Form(max_length=320)]


def _require_admin(user: Principal) -> None:
    if not user.is_manager:
        raise PermissionDeniedError("only an admin can manage users and tokens", hint="ask an admin")


def _page(request: Request, user: Principal, *, status: int = 200, error: OutreachError | None = None,
          password: tuple[str, str] | None = None) -> HTMLResponse:
    with _review(request).factory() as session:
        users = user_infos(session)
        tokens = list_tokens(session)
    extra = [{"kind": "error", "text": error.message + (f" — {error.hint}" if error.hint else "")}] if error else []
    return _render(request, "admin.html", _context(request, user, users=users, tokens=tokens, roles=ROLES,
                                                   now=now(), password=password, extra_flashes=extra),
                   status=status)


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, user: User) -> HTMLResponse:
    _require_admin(user)
    return _page(request, user)


def _act(request: Request, user: Principal, csrf: str | None, change: Callable[[Session], str]) -> Response:
    """Run one change in a transaction; back to /admin with its message, or the page with the error."""
    check_csrf(request, csrf)
    _require_admin(user)
    try:
        with transaction(_review(request).factory) as session:
            message = change(session)
    except OutreachError as error:
        return _page(request, user, status=status_for(error), error=error)
    flash(request, "success", message)
    return RedirectResponse("/admin", status_code=303)


@router.post("/admin/users/role", response_model=None)
def change_role(request: Request, user: User, email: EmailField, role: Annotated[str, Form()] = "",
                csrf_token_field: CsrfField = None) -> Response:
    return _act(request, user, csrf_token_field, lambda session: (
        f"{email} is now {role}; {set_role(session, email, role, actor=user.email)} session(s) ended"))


@router.post("/admin/users/deactivate", response_model=None)
def deactivate(request: Request, user: User, email: EmailField, csrf_token_field: CsrfField = None) -> Response:
    return _act(request, user, csrf_token_field, lambda session: (
        f"Deactivated {email}; {deactivate_user(session, email, actor=user.email)} session(s) ended"))


@router.post("/admin/users/activate", response_model=None)
def activate(request: Request, user: User, email: EmailField, csrf_token_field: CsrfField = None) -> Response:
    def change(session: Session) -> str:
        activate_user(session, email, actor=user.email)
        return f"Re-activated {email}"

    return _act(request, user, csrf_token_field, change)


@router.post("/admin/users/end-sessions", response_model=None)
def end_sessions(request: Request, user: User, email: EmailField, csrf_token_field: CsrfField = None) -> Response:
    return _act(request, user, csrf_token_field, lambda session: (
        f"Ended {end_user_sessions(session, email, actor=user.email)} session(s) of {email}"))


@router.post("/admin/tokens/revoke", response_model=None)
def revoke(request: Request, user: User, prefix: Annotated[str, Form(max_length=20)] = "",
           csrf_token_field: CsrfField = None) -> Response:
    def change(session: Session) -> str:
        revoke_token(session, prefix, actor=user.email)
        return f"Revoked token {prefix}"

    return _act(request, user, csrf_token_field, change)


@router.post("/admin/users/reset-password", response_model=None)
def reset_password(request: Request, user: User, email: EmailField, csrf_token_field: CsrfField = None) -> Response:
    """A new generated password, shown once on this response (not stored in the cookie or a redirect)."""
    check_csrf(request, csrf_token_field)
    _require_admin(user)
    password = generate_password()
    try:
        with transaction(_review(request).factory) as session:
            changed = set_password(session, email, password, actor=user.email)
    except OutreachError as error:
        return _page(request, user, status=status_for(error), error=error)
    return _page(request, user, password=(changed.email, password))


@router.post("/admin/users/add", response_model=None)
def add(request: Request, user: User, email: EmailField, role: Annotated[str, Form()] = "sdr",
        csrf_token_field: CsrfField = None) -> Response:
    check_csrf(request, csrf_token_field)
    _require_admin(user)
    password = generate_password()
    try:
        with transaction(_review(request).factory) as session:
            added = add_user(session, email, role, password, actor=user.email)
    except OutreachError as error:
        return _page(request, user, status=status_for(error), error=error)
    return _page(request, user, password=(added.email, password))
