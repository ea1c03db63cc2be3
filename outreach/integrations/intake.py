"""Segment's HTTP Tracking API, as a library: write keys, message checks and storing messages.

:mod:`outreach.web.intake` serves it at ``/v1/track``, ``/v1/identify``, ``/v1/group``, ``/v1/page``,
``/v1/screen``, ``/v1/alias`` and ``/v1/batch`` so ``segment-analytics-python`` or ``rudder-sdk-python`` with
``host=`` pointed at outreach, or Segment's Webhooks destination, deliver to it unchanged. The rules are
Segment's: the write key is the HTTP Basic username (or ``writeKey`` in the body), a message may be 32 KB and a
request 500 KB, ``messageId`` makes a retried message count once, and ``timestamp`` is corrected for the sender's
clock by ``sentAt`` when only ``originalTimestamp`` is given. Anything else invalid is a 400 naming the message
and field.

``track``, ``page`` (stored as the event ``Page Viewed``) and ``screen`` (``Screen Viewed``) calls are product
events; ``group`` places a user in an account (the ``groupId`` is the ``account_id`` of accounts.csv), so later
- and earlier - events of that user without ``context.groupId`` count for that account. ``identify`` and
``alias`` are stored and answered but do not change decisions.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import secrets
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from outreach.engine.data import EVENT_NUMBERS, number_problem
from outreach.engine.store import ENGINE_TYPES, lock_appends
from outreach.engine.store_tables import EventUserRow, StoredEventRow
from outreach.errors import OutreachError, PermissionDeniedError
from outreach.integrations.tables import IntakeKeyRow

MAX_MESSAGE_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024
MESSAGE_TYPES = ("track", "identify", "group", "page", "screen", "alias")
PAGE_EVENTS = {"page": "Page Viewed", "screen": "Screen Viewed"}
MAX_NAME_CHARS = 400
KEY_PREFIX = "wk_"


class IntakeError(OutreachError):
    """A request the API refuses with 400: names the message (``batch[3]``) and field."""

    exit_code = 2


# ---------------------------------------------------------------------------------------------- write keys


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, actor: str, now: datetime) -> str:
    """A new write key for the workspace; the previous one stops working (one key per workspace). Returns the
    key, which is not stored (only its hash) and so is shown once."""
    for row in session.scalars(select(IntakeKeyRow).where(IntakeKeyRow.revoked_at.is_(None))):
        row.revoked_at = now
    key = KEY_PREFIX + secrets.token_urlsafe(24)
    session.add(IntakeKeyRow(prefix=key[:10], key_hash=_hash(key), created_by=actor, created_at=now))
    session.flush()
    return key


def revoke_keys(session: Session, now: datetime) -> int:
    rows = list(session.scalars(select(IntakeKeyRow).where(IntakeKeyRow.revoked_at.is_(None))))
    for row in rows:
        row.revoked_at = now
    return len(rows)


def active_key(session: Session) -> IntakeKeyRow | None:
    return session.scalar(select(IntakeKeyRow).where(IntakeKeyRow.revoked_at.is_(None)).limit(1))


def check_key(session: Session, key: str) -> None:
    """Raise unless ``key`` is the workspace's current write key."""
    row = active_key(session)
    if row is None:
        raise PermissionDeniedError("this workspace has no write key", hint="create one with `outreach intake key`")
    if not key or not hmac.compare_digest(row.key_hash, _hash(key)):
        raise PermissionDeniedError("unknown write key",
                                    hint="send the key from `outreach intake key` as the HTTP Basic username")


def signature_matches(key: str, body: bytes, signature: str) -> bool:
    """Segment's Webhooks destination signs with ``X-Signature``: hex HMAC-SHA1 of the body, keyed with the
    shared secret (here the write key)."""
    expected = hmac.new(key.encode(), body, hashlib.sha1).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


# ---------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Message:
    """One checked Segment message, ready to store."""

    type: str
    message_id: str
    dedup_key: str | None
    event: str | None
    user_id: str | None
    ts: datetime
    account_id: str | None  # context.groupId / properties.account_id / groupId (group calls)
    props: dict[str, Any]
    where: str


def decode_body(body: bytes, encoding: str | None) -> Any:
    """The request body as JSON (gzip or deflate as ``Content-Encoding`` says), within Segment's 500 KB."""
    if len(body) > MAX_REQUEST_BYTES:
        raise IntakeError(f"request is {len(body):,} bytes; the limit is 500 KB per request",
                          hint="send smaller batches (the Segment libraries split at 500 KB)")
    encoding = (encoding or "").strip().lower()
    if encoding in ("gzip", "deflate"):
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
            body = inflater.decompress(body, MAX_REQUEST_BYTES + 1)
        except (zlib.error, gzip.BadGzipFile) as error:
            raise IntakeError(f"body is not valid {encoding} data ({error})") from None
        if len(body) > MAX_REQUEST_BYTES or inflater.unconsumed_tail:
            raise IntakeError("request is over 500 KB uncompressed; the limit is 500 KB per request")
    elif encoding not in ("", "identity"):
        raise IntakeError(f"Content-Encoding '{encoding}' is not supported", hint="send gzip or plain JSON")
    if not body.strip():
        raise IntakeError("empty body: send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise IntakeError(f"body is not JSON ({error.msg} at column {error.colno})") from None


def messages_of(doc: Any, call: str) -> tuple[list[Any], Mapping[str, Any]]:
    """The messages of a request body (``batch`` for /v1/batch and /v1/import, else the body itself) and the
    body, whose ``sentAt``/``context`` apply to every message of a batch."""
    if not isinstance(doc, dict):
        raise IntakeError("body must be a JSON object")
    if call == "batch":
        batch = doc.get("batch")
        if batch is None and isinstance(doc.get("type"), str):
            return [doc], {}  # a single message (Segment's Webhooks destination posts one at a time)
        if not isinstance(batch, list):
            raise IntakeError("field 'batch': must be a list of messages")
        return batch, doc
    return [doc], {}


TriggerNumbers = Mapping[str, tuple[tuple[str, bool], ...]]


def trigger_numbers(event_names: Mapping[str, str]) -> TriggerNumbers:
    """Event name → the numeric properties the built-in triggers read from it, and whether each is whole
    (:data:`outreach.engine.data.EVENT_NUMBERS` under the product's event names, the rules' ``events``)."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for key, prop, whole in EVENT_NUMBERS:
        found.setdefault(event_names[key], []).append((prop, whole))
    return {event: tuple(props) for event, props in found.items()}


@cache
def _default_trigger_numbers() -> TriggerNumbers:
    from outreach.engine.triggers.spec import EventNames

    return trigger_numbers(EventNames().model_dump())


def parse_message(
    raw: Any, call: str, envelope: Mapping[str, Any], received_at: datetime, where: str,
    numbers: TriggerNumbers | None = None,
) -> Message:
    """Check one message the way Segment does and resolve its timestamp; IntakeError names ``where`` and the
    field. ``numbers`` (:func:`trigger_numbers`) are the numeric properties checked, by event name."""
    if not isinstance(raw, dict):
        raise IntakeError(f"{where}: must be a JSON object")
    size = len(orjson.dumps(raw))
    if size > MAX_MESSAGE_BYTES:
        raise IntakeError(f"{where}: message is {size:,} bytes; the limit is 32 KB per message")
    kind = raw.get("type", call if call != "batch" else None)
    if kind not in MESSAGE_TYPES:
        raise IntakeError(f"{where}: field 'type': {kind!r} is not one of {', '.join(MESSAGE_TYPES)}")
    if call != "batch" and kind != call:
        raise IntakeError(f"{where}: field 'type': '{kind}' sent to /v1/{call}")

    def text(name: str, value: Any, *, required: bool = False) -> str | None:
        if value is None or value == "":
            if required:
                raise IntakeError(f"{where}: field '{name}': required for {kind} calls")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise IntakeError(f"{where}: field '{name}': must be a string")
        checked = str(value)
        if len(checked) > MAX_NAME_CHARS:
            raise IntakeError(f"{where}: field '{name}': longer than {MAX_NAME_CHARS} characters")
        return checked

    def obj(name: str) -> dict[str, Any]:
        value = raw.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise IntakeError(f"{where}: field '{name}': must be a JSON object")
        return value

    user = text("userId", raw.get("userId"))
    anonymous = text("anonymousId", raw.get("anonymousId"))
    if kind != "alias" and user is None and anonymous is None:
        raise IntakeError(f"{where}: field 'userId': a userId or anonymousId is required")
    context = {**obj("context")} if "context" in raw else {}
    envelope_context = envelope.get("context")
    if isinstance(envelope_context, dict):
        context = {**envelope_context, **context}
    message_id = text("messageId", raw.get("messageId"))
    properties = obj("properties")
    traits = obj("traits")
    event: str | None = None
    account: str | None = None
    group_in_context = context.get("groupId")
    if kind == "track":
        event = text("event", raw.get("event"), required=True)
        for prop, whole in (numbers if numbers is not None else _default_trigger_numbers()).get(event or "", ()):
            value = properties.get(prop)
            # Stored events skip the file loader's check at decide time: a trigger would read the value as missing.
            problem = number_problem(value, whole) if value is not None else None
            if problem is not None:
                raise IntakeError(f"{where}: field 'properties.{prop}': {problem} (a '{event}' event)")
    elif kind in PAGE_EVENTS:
        event = PAGE_EVENTS[kind]
        name = text("name", raw.get("name"))
        if name is not None and "name" not in properties:
            properties = {**properties, "name": name}
    elif kind == "group":
        account = text("groupId", raw.get("groupId"), required=True)
    elif kind == "alias":
        text("previousId", raw.get("previousId"), required=True)
        user = user or anonymous
        if user is None:
            raise IntakeError(f"{where}: field 'userId': required for alias calls")
    if kind in ENGINE_TYPES or kind == "identify":
        for candidate in (group_in_context, properties.get("account_id") if kind in ENGINE_TYPES else None):
            if candidate not in (None, ""):
                account = text("context.groupId", candidate)
                break
    stamp = _timestamp(raw, envelope, received_at, where)
    return Message(
        type=kind,
        message_id=message_id or f"api-{uuid.uuid4()}",
        dedup_key=message_id,
        event=event,
        user_id=user or anonymous,
        ts=stamp,
        account_id=account,
        props=traits if kind in ("identify", "group") else properties,
        where=where,
    )


def _parse_time(value: Any, name: str, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise IntakeError(f"{where}: field '{name}': must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise IntakeError(f"{where}: field '{name}': '{value}' is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise IntakeError(f"{where}: field '{name}': '{value}' is out of range") from None


def _timestamp(raw: Mapping[str, Any], envelope: Mapping[str, Any], received_at: datetime, where: str) -> datetime:
    """Segment's rule: ``timestamp`` when given; else ``originalTimestamp`` moved by the sender's clock skew
    (``receivedAt - sentAt``); else when it was received."""
    stamp = _parse_time(raw.get("timestamp"), "timestamp", where)
    if stamp is not None:
        return stamp
    original = _parse_time(raw.get("originalTimestamp"), "originalTimestamp", where)
    sent = _parse_time(raw.get("sentAt") or envelope.get("sentAt"), "sentAt", where)
    if original is not None:
        return original + (received_at - sent) if sent is not None else original
    return received_at


def parse_request(
    doc: Any, call: str, received_at: datetime, numbers: TriggerNumbers | None = None
) -> list[Message]:
    """Every message of one request, checked; the first problem raises (nothing is stored then). ``numbers``:
    see :func:`parse_message` (the default event names' without it)."""
    raws, envelope = messages_of(doc, call)
    if not raws:
        raise IntakeError("field 'batch': empty")
    return [
        parse_message(raw, call, envelope, received_at, f"batch[{i}]" if call == "batch" else call, numbers)
        for i, raw in enumerate(raws)
    ]


# ---------------------------------------------------------------------------------------------- storing


@dataclass
class Stored:
    """What one request stored."""

    stored: int = 0
    duplicates: int = 0
    accounts: set[str] = field(default_factory=set)
    unresolved: int = 0


def store_messages(engine: Engine, messages: Sequence[Message], received_at: datetime) -> Stored:
    """Store the messages in ``stored_events`` in one transaction: group calls first (so a track in the same
    batch already reaches its account), events of a user a group call places are given that account, and a
    ``messageId`` seen before is a duplicate. Returns the accounts whose decisions the messages may change."""
    postgres = engine.dialect.name == "postgresql"
    result = Stored()
    with Session(engine) as session, session.begin():
        lock_appends(session, postgres=postgres)
        groups = [m for m in messages if m.account_id and m.user_id and m.type in ("group", "identify")]
        placed = _place_users(session, groups, received_at)
        result.accounts.update(placed.values())
        keys = [m.dedup_key for m in messages if m.dedup_key]
        seen: set[str] = set()
        for chunk in _chunks(sorted(set(keys)), 500):
            seen.update(session.scalars(select(StoredEventRow.dedup_key).where(StoredEventRow.dedup_key.in_(chunk))))
        users_needed = {m.user_id for m in messages if m.type in ENGINE_TYPES and not m.account_id and m.user_id}
        mapping = _user_accounts(session, users_needed - set(placed)) | placed
        rows = []
        for message in messages:
            if message.dedup_key is not None:
                if message.dedup_key in seen:
                    result.duplicates += 1
                    continue
                seen.add(message.dedup_key)
            account = message.account_id
            if account is None and message.type in ENGINE_TYPES and message.user_id:
                account = mapping.get(message.user_id)
            if message.type in ENGINE_TYPES:
                if account:
                    result.accounts.add(account)
                else:
                    result.unresolved += 1
            rows.append({
                "dedup_key": message.dedup_key, "message_id": message.message_id, "type": message.type,
                "event": message.event, "user_id": message.user_id, "ts": message.ts, "account_id": account,
                "props": message.props, "source": "api", "line": None, "received_at": received_at,
            })
        if rows:
            session.execute(insert(StoredEventRow), rows)
        result.stored = len(rows)
    return result


def _place_users(session: Session, groups: Iterable[Message], now: datetime) -> dict[str, str]:
    """Record which account each grouped user belongs to (the latest group call wins) and give that account
    to the user's events still waiting in the inbox without one."""
    placed: dict[str, tuple[datetime, str, dict[str, Any]]] = {}
    for message in groups:
        assert message.user_id and message.account_id
        current = placed.get(message.user_id)
        if current is None or message.ts >= current[0]:
            placed[message.user_id] = (message.ts, message.account_id, message.props)
    for user_id, (stamp, account_id, traits) in placed.items():
        row = session.get(EventUserRow, user_id)
        if row is None:
            session.add(EventUserRow(user_id=user_id, account_id=account_id, traits=traits, grouped_at=stamp,
                                     updated_at=now))
        elif stamp >= row.grouped_at:
            row.account_id, row.traits, row.grouped_at, row.updated_at = account_id, traits, stamp, now
        session.execute(
            update(StoredEventRow)
            .where(StoredEventRow.user_id == user_id, StoredEventRow.account_id.is_(None),
                   StoredEventRow.type.in_(ENGINE_TYPES))
            .values(account_id=account_id)
        )
    session.flush()
    return {user_id: account for user_id, (_, account, _) in placed.items()}


def _user_accounts(session: Session, users: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(users), 500):
        for user_id, account_id in session.execute(
            select(EventUserRow.user_id, EventUserRow.account_id).where(EventUserRow.user_id.in_(chunk))
        ):
            found[str(user_id)] = str(account_id)
    return found


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
