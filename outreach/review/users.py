"""Users, roles and API tokens: who may review which drafts.

Roles: ``sdr`` reviews the drafts assigned to them (the account's ``owner_email``) and unassigned ones;
``admin`` is the manager role and may act on every draft and manage users; ``marketing`` reads the queue
(to tune prompts and templates) but cannot approve, reject or edit. Passwords are hashed with argon2id (a
memory-hard KDF); API tokens are long random secrets, so a SHA-256 of the secret is enough to store and lets
every API call be verified without a slow KDF. Secrets are returned once, never stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from outreach.drafting.facts import SenderFacts
from outreach.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from outreach.review.storage import ApiTokenRow, AuditRow, UserRow

Role = Literal["sdr", "marketing", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "otk"

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


def create_token(session: Session, email: str, name: str, *, actor: str = "cli") -> tuple[TokenInfo, str]:
    """A new API token for a user. Returns the token's info and the secret, which is never shown again."""
    address = normalize_email(email)
    user = session.scalar(select(UserRow).where(UserRow.email == address))
    if user is None or not user.active:
        raise NotFoundError(f"no user {address}", hint="create it with `outreach users add EMAIL --role ROLE`")
    label = name.strip() or "api"
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    now = _now()
    row = ApiTokenRow(user_id=user.id, name=label[:200], prefix=prefix, token_hash=_token_hash(secret),
                      created_at=now)
    session.add(row)
    session.flush()
    session.add(
        AuditRow(at=now, actor=actor, action="token.create", entity="api_token", entity_id=prefix, before=None,
                 after={"email": address, "name": row.name})
    )
    info = TokenInfo(id=row.id, name=row.name, prefix=prefix, email=address, created_at=now)
    return info, f"{TOKEN_PREFIX}_{prefix}_{secret}"


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
    row.last_used_at = _now()
    return _principal(row.user)


def revoke_token(session: Session, prefix: str, *, actor: str = "cli") -> None:
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
    """Replace a user's password (the demo resets its login this way on every run)."""
    address = normalize_email(email)
    row = session.scalar(select(UserRow).where(UserRow.email == address))
    if row is None:
        raise NotFoundError(f"no user {address}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"the password is too short ({len(password)} characters)",
                            hint=f"use at least {MIN_PASSWORD_LENGTH} characters")
    row.password_hash = _hasher.hash(password)
    session.add(AuditRow(at=_now(), actor=actor, action="user.password", entity="user", entity_id=address,
                         before=None, after=None))
    return _principal(row)
