"""Users, roles and API tokens: who may review which drafts.

Roles: ``sdr`` reviews the drafts assigned to them (the account's ``owner_email``) and unassigned ones;
``admin`` is the manager role and may act on every draft and manage users; ``marketing`` reads the queue
(to tune prompts and templates) but cannot approve, reject or edit. Passwords are hashed with argon2id (a
memory-hard KDF); API tokens are long random secrets, so a SHA-256 of the secret is enough to store and lets
every API call be verified without a slow KDF. Secrets are returned once, never stored.

Web logins are server-side sessions (:class:`~outreach.review.storage.WebSessionRow`): the cookie carries a
random secret, the table its SHA-256. A session ends at logout, after ``idle`` without a request, after its
absolute lifetime, and for every session of a user at once when their password or role changes or they are
deactivated — so a copied cookie stops working the moment it should. API tokens expire (90 days by default).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from outreach.drafting.facts import SenderFacts
from outreach.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from outreach.review.storage import ApiTokenRow, AuditRow, UserRow, WebSessionRow

Role = Literal["sdr", "marketing", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "otk"
DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 3650
# A session's last_seen_at is written at most this often: the idle timeout does not need per-request writes.
TOUCH_EVERY = timedelta(seconds=30)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown email as slow as one for a known email.
_DUMMY_HASH = _hasher.hash("outreach-timing-equaliser")


class Principal(BaseModel):
    """The person (or integration acting for them) behind a request."""

    model_config = ConfigDict(frozen=True)

    id: int
    email: str
    role: Role

    @property
    def is_manager(self) -> bool:
        return self.role == "admin"

    @property
    def can_review(self) -> bool:
        return self.role in ("sdr", "admin")


class TokenInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    prefix: str
    email: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class UserInfo(BaseModel):
    """A login as the admin page and ``users list`` show it."""

    model_config = ConfigDict(frozen=True)

    id: int
    email: str
    role: Role
    active: bool
    created_at: datetime
    open_sessions: int
    last_seen_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    if not _EMAIL.match(value) or len(value) > 320:
        raise InputError(f"'{email}' is not an email address", hint="use name@company.com")
    return value


def _principal(row: UserRow) -> Principal:
    return Principal(id=row.id, email=row.email, role=_check_role(row.role))


def _check_role(role: str) -> Role:
    if role not in ROLES:
        raise InputError(f"'{role}' is not a role", hint=f"use one of: {', '.join(ROLES)}")
    return role


def generate_password() -> str:
    """A random password for demo and first logins (about 100 bits, easy to type)."""
    return secrets.token_urlsafe(16)


def add_user(
    session: Session, email: str, role: str, password: str, *, actor: str = "cli", name: str | None = None,
    title: str | None = None,
) -> Principal:
    """Create a login. Refuses a duplicate email and a password shorter than ``MIN_PASSWORD_LENGTH``.

    ``name`` and ``title`` sign the drafts of the accounts this user owns."""
    address = normalize_email(email)
    checked = _check_role(role)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(
            f"the password is too short ({len(password)} characters)",
            hint=f"use at least {MIN_PASSWORD_LENGTH} characters",
        )
    if session.scalar(select(UserRow).where(UserRow.email == address)) is not None:
        raise ConflictError(f"a user {address} already exists", hint="pick another email")
    now = _now()
    row = UserRow(email=address, role=checked, password_hash=_hasher.hash(password), active=True, created_at=now,
                  name=_clean(name), title=_clean(title))
    session.add(row)
    session.flush()
    session.add(
        AuditRow(at=now, actor=actor, action="user.add", entity="user", entity_id=address, before=None,
                 after={"email": address, "role": checked})
    )
    return _principal(row)


def _clean(text: str | None) -> str | None:
    value = " ".join((text or "").split())
    if len(value) > 200:
        raise InputError(f"'{value[:40]}…' is too long ({len(value)} characters)", hint="use at most 200")
    return value or None


def set_profile(
    session: Session, email: str, *, name: str | None = None, title: str | None = None, actor: str = "cli"
) -> None:
    """Set the name and title a user signs drafts with (None leaves a field as it is, "" clears it)."""
    address = normalize_email(email)
    row = session.scalar(select(UserRow).where(UserRow.email == address))
    if row is None:
        raise NotFoundError(f"no user {address}", hint="create it with `outreach users add EMAIL --role ROLE`")
    before = {"name": row.name, "title": row.title}
    if name is not None:
        row.name = _clean(name)
    if title is not None:
        row.title = _clean(title)
    session.add(AuditRow(at=_now(), actor=actor, action="user.profile", entity="user", entity_id=address,
                         before=before, after={"name": row.name, "title": row.title}))


def senders(session: Session) -> dict[str, SenderFacts]:
    """Who signs for each owner email: every active user with a name (and title), for the drafter."""
    rows = session.scalars(select(UserRow).where(UserRow.active.is_(True), UserRow.name.is_not(None)))
    return {row.email: SenderFacts(name=row.name or "", title=row.title or "", email=row.email, owner=True)
            for row in rows}


def sender_source(factory: sessionmaker[Session]) -> Callable[[], dict[str, SenderFacts]]:
    """:func:`senders`, read afresh at each call: drafts written long after start-up (a regeneration, a
    follow-up) are signed by whoever owns the account now, with their current name and title."""

    def read() -> dict[str, SenderFacts]:
        with factory() as session:
            return senders(session)

    return read


def get_user(session: Session, user_id: int) -> Principal:
    row = session.get(UserRow, user_id)
    if row is None or not row.active:
        raise NotFoundError(f"no active user with id {user_id}")
    return _principal(row)


def list_users(session: Session) -> list[Principal]:
    return [_principal(row) for row in session.scalars(select(UserRow).order_by(UserRow.email))]


def user_infos(session: Session, now: datetime | None = None) -> list[UserInfo]:
    """Every login with its state and open sessions (admin page, ``users list``)."""
    now = now or _now()
    open_sessions = dict(session.execute(
        select(WebSessionRow.user_id, func.count()).where(WebSessionRow.revoked_at.is_(None),
                                                          WebSessionRow.expires_at > now)
        .group_by(WebSessionRow.user_id)).all())
    seen = dict(session.execute(select(WebSessionRow.user_id, func.max(WebSessionRow.last_seen_at))
                                .group_by(WebSessionRow.user_id)).all())
    return [UserInfo(id=row.id, email=row.email, role=_check_role(row.role), active=row.active,
                     created_at=row.created_at, open_sessions=int(open_sessions.get(row.id, 0)),
                     last_seen_at=seen.get(row.id))
            for row in session.scalars(select(UserRow).order_by(UserRow.email))]


def _user_row(session: Session, email: str) -> UserRow:
    address = normalize_email(email)
    row = session.scalar(select(UserRow).where(UserRow.email == address))
    if row is None:
        raise NotFoundError(f"no user {address}", hint="list users with `outreach users list`")
    return row


def _audit(session: Session, actor: str, action: str, entity: str, entity_id: str,
           before: dict[str, object] | None, after: dict[str, object] | None) -> None:
    session.add(AuditRow(at=_now(), actor=actor, action=action, entity=entity, entity_id=entity_id, before=before,
                         after=after))


def _check_admin_remains(session: Session, row: UserRow, *, role: str, active: bool) -> None:
    """Refuse a change that would leave no active admin: nobody could manage users from the web any more."""
    if row.role != "admin" or not row.active or (role == "admin" and active):
        return
    others = session.scalar(select(func.count()).select_from(UserRow).where(
        UserRow.role == "admin", UserRow.active.is_(True), UserRow.id != row.id))
    if not others:
        raise ConflictError(f"{row.email} is the last active admin", hint="make another user admin first")


def deactivate_user(session: Session, email: str, *, actor: str = "cli") -> int:
    """Block a login: its web sessions end now and its API tokens stop working. Returns the sessions ended."""
    row = _user_row(session, email)
    _check_admin_remains(session, row, role=row.role, active=False)
    ended = revoke_sessions(session, row.id, "deactivated")
    if row.active:
        row.active = False
        _audit(session, actor, "user.deactivate", "user", row.email, {"active": True},
               {"active": False, "sessions_ended": ended})
    return ended


def activate_user(session: Session, email: str, *, actor: str = "cli") -> None:
    """Let a deactivated login in again (its old sessions stay ended)."""
    row = _user_row(session, email)
    if not row.active:
        row.active = True
        _audit(session, actor, "user.activate", "user", row.email, {"active": False}, {"active": True})


def set_role(session: Session, email: str, role: str, *, actor: str = "cli") -> int:
    """Change a user's role; their web sessions end (they log in again with the new role). API tokens act
    with the user's current role, so they follow the change. Returns the sessions ended."""
    row = _user_row(session, email)
    checked = _check_role(role)
    if checked == row.role:
        return 0
    _check_admin_remains(session, row, role=checked, active=row.active)
    before = row.role
    row.role = checked
    ended = revoke_sessions(session, row.id, "role_changed")
    _audit(session, actor, "user.role", "user", row.email, {"role": before},
           {"role": checked, "sessions_ended": ended})
    return ended


def authenticate(session: Session, email: str, password: str) -> Principal:
    """The user for an email and password, or PermissionDeniedError with one message for every failure."""
    denied = PermissionDeniedError("wrong email or password")
    address = email.strip().lower()
    row = session.scalar(select(UserRow).where(UserRow.email == address))
    if row is None or not row.active:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        raise denied
    try:
        _hasher.verify(row.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise denied from None
    if _hasher.check_needs_rehash(row.password_hash):
        row.password_hash = _hasher.hash(password)
    return _principal(row)


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, email: str, name: str, *, actor: str = "cli",
                 days: int = DEFAULT_TOKEN_DAYS) -> tuple[TokenInfo, str]:
    """A new API token for a user, valid for ``days``. Returns the token's info and the secret, which is never
    shown again."""
    address = normalize_email(email)
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise InputError(f"a token lasts 1 to {MAX_TOKEN_DAYS} days, not {days}", hint="e.g. --days 90")
    user = session.scalar(select(UserRow).where(UserRow.email == address))
    if user is None or not user.active:
        raise NotFoundError(f"no user {address}", hint="create it with `outreach users add EMAIL --role ROLE`")
    label = name.strip() or "api"
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    now = _now()
    expires = now + timedelta(days=days)
    row = ApiTokenRow(user_id=user.id, name=label[:200], prefix=prefix, token_hash=_token_hash(secret),
                      created_at=now, expires_at=expires)
    session.add(row)
    session.flush()
    session.add(
        AuditRow(at=now, actor=actor, action="token.create", entity="api_token", entity_id=prefix, before=None,
                 after={"email": address, "name": row.name, "expires_at": expires.isoformat()})
    )
    return _token_info(row, address), f"{TOKEN_PREFIX}_{prefix}_{secret}"


def _token_info(row: ApiTokenRow, email: str) -> TokenInfo:
    return TokenInfo(id=row.id, name=row.name, prefix=row.prefix, email=email, created_at=row.created_at,
                     expires_at=row.expires_at, last_used_at=row.last_used_at, revoked_at=row.revoked_at)


def list_tokens(session: Session, *, email: str | None = None) -> list[TokenInfo]:
    """Every API token (never its secret), newest first; only one user's with ``email``."""
    query = select(ApiTokenRow, UserRow.email).join(UserRow, ApiTokenRow.user_id == UserRow.id)
    if email is not None:
        query = query.where(UserRow.email == normalize_email(email))
    rows = session.execute(query.order_by(ApiTokenRow.created_at.desc(), ApiTokenRow.id.desc()))
    return [_token_info(row, address) for row, address in rows]


def principal_for_token(session: Session, token: str) -> Principal:
    """The user behind a bearer token; PermissionDeniedError for a malformed, unknown or revoked token."""
    denied = PermissionDeniedError("invalid API token")
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise denied
    row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.prefix == parts[1]))
    if row is None or row.revoked_at is not None or not row.user.active:
        raise denied
    if not hmac.compare_digest(row.token_hash, _token_hash(parts[2])):
        raise denied
    now = _now()
    if row.expires_at is not None and row.expires_at <= now:
        raise PermissionDeniedError(f"API token {row.prefix} expired on {row.expires_at:%Y-%m-%d}",
                                    hint="create a new one with `outreach tokens create EMAIL`")
    row.last_used_at = now
    return _principal(row.user)


def revoke_token(session: Session, prefix: str, *, actor: str = "cli") -> None:
    """Stop a token working at once (``outreach tokens revoke PREFIX``); revoking twice is harmless."""
    row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.prefix == prefix))
    if row is None:
        raise NotFoundError(f"no API token with prefix {prefix}")
    if row.revoked_at is None:
        row.revoked_at = _now()
        session.add(
            AuditRow(at=row.revoked_at, actor=actor, action="token.revoke", entity="api_token", entity_id=prefix,
                     before={"revoked": False}, after={"revoked": True})
        )


def set_password(session: Session, email: str, password: str, *, actor: str = "cli") -> Principal:
    """Replace a user's password and end every web session they have (``users reset-password``; the demo
    resets its logins this way on every run)."""
    row = _user_row(session, email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"the password is too short ({len(password)} characters)",
                            hint=f"use at least {MIN_PASSWORD_LENGTH} characters")
    row.password_hash = _hasher.hash(password)
    ended = revoke_sessions(session, row.id, "password_changed")
    session.add(AuditRow(at=_now(), actor=actor, action="user.password", entity="user", entity_id=row.email,
                         before=None, after={"sessions_ended": ended}))
    return _principal(row)


# ------------------------------------------------------------------------------------------------ web sessions


def audit_login(session: Session, action: str, email: str, address: str, detail: dict[str, object] | None) -> None:
    """A failed or throttled login in the audit log: which account was tried, from where (never the password)."""
    _audit(session, f"web:{address}"[:320], action, "login", email.strip().lower()[:200] or "(empty)", None,
           {"address": address, **(detail or {})})


def _session_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start_session(session: Session, user: Principal, *, lifetime: timedelta, address: str | None = None,
                  user_agent: str | None = None, now: datetime | None = None) -> str:
    """A new web session for ``user``; returns the secret the cookie carries (only its hash is stored)."""
    now = now or _now()
    secret = secrets.token_urlsafe(32)
    session.add(WebSessionRow(id=_session_id(secret), user_id=user.id, created_at=now, last_seen_at=now,
                              expires_at=now + lifetime, address=(address or "")[:100] or None,
                              user_agent=(user_agent or "")[:300] or None))
    _audit(session, user.email, "session.start", "user", user.email, None,
           {"address": address, "expires_at": (now + lifetime).isoformat()})
    return secret


def session_principal(session: Session, secret: str, *, idle: timedelta, now: datetime | None = None) -> Principal:
    """The user of a live web session. PermissionDeniedError (saying why) when it is unknown, revoked, idle
    for longer than ``idle``, past its absolute lifetime, or its user is deactivated; an ended session is
    marked revoked so it can never come back."""
    now = now or _now()
    row = session.get(WebSessionRow, _session_id(secret)) if secret else None
    if row is None:
        raise PermissionDeniedError("no such session")
    reason = None
    if row.revoked_at is not None:
        raise PermissionDeniedError(f"the session ended ({row.revoked_reason or 'revoked'})")
    if now >= row.expires_at:
        reason = "expired"
    elif now - row.last_seen_at > idle:
        reason = "idle"
    user = session.get(UserRow, row.user_id)
    if user is None or not user.active:
        reason = "deactivated"
    if reason is not None:
        row.revoked_at, row.revoked_reason = now, reason
        raise PermissionDeniedError(f"the session ended ({reason})")
    assert user is not None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return _principal(user)


def end_session(session: Session, secret: str, *, reason: str = "logout") -> None:
    row = session.get(WebSessionRow, _session_id(secret)) if secret else None
    if row is not None and row.revoked_at is None:
        row.revoked_at, row.revoked_reason = _now(), reason
        user = session.get(UserRow, row.user_id)
        _audit(session, user.email if user else "unknown", f"session.{reason}", "user",
               user.email if user else str(row.user_id), None, None)


def end_user_sessions(session: Session, email: str, *, actor: str = "cli") -> int:
    """End every web session of a user (admin page); returns how many were open."""
    row = _user_row(session, email)
    ended = revoke_sessions(session, row.id, "ended_by_admin")
    _audit(session, actor, "user.sessions_end", "user", row.email, None, {"sessions_ended": ended})
    return ended


def revoke_sessions(session: Session, user_id: int, reason: str) -> int:
    """End every open web session of a user at once; returns how many were open."""
    result = session.execute(
        update(WebSessionRow).where(WebSessionRow.user_id == user_id, WebSessionRow.revoked_at.is_(None))
        .values(revoked_at=_now(), revoked_reason=reason)
    )
    return int(getattr(result, "rowcount", 0) or 0)
