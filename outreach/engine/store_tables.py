"""The event store's tables in the workspace database (migration 0009_integrations creates them).

``stored_events`` holds events that came in through the database: everything sent to the Segment-compatible
API (``/v1/*``), and - when the workspace database is PostgreSQL - every stored event, files included. On
SQLite it is the store's inbox: :mod:`outreach.engine.store` moves its rows into the DuckDB file and deletes
them. ``dedup_key`` is the sender's ``messageId`` (unique, so a retried batch is stored once); ``message_id``
is the id evidence quotes. ``event_users`` is what Segment ``group`` calls say: which account a user belongs
to, so ``track`` calls without ``context.groupId`` still reach their account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from outreach.schema import Base

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
EVENT_ID = BigInteger().with_variant(Integer(), "sqlite")


class StoredEventRow(Base):
    """One Segment message (track, page, screen, identify, group, alias) or one line of a loaded file."""

    __tablename__ = "stored_events"
    # AUTOINCREMENT on SQLite: ids are never reused after the inbox is emptied, so "rows after id N" holds.
    __table_args__ = (Index("ix_stored_events_user", "user_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(EVENT_ID, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str | None] = mapped_column(String(400), unique=True)
    message_id: Mapped[str] = mapped_column(String(400))
    type: Mapped[str] = mapped_column(String(20))
    event: Mapped[str | None] = mapped_column(String(400))
    user_id: Mapped[str | None] = mapped_column(String(400))
    ts: Mapped[datetime]
    account_id: Mapped[str | None] = mapped_column(String(200), index=True)
    props: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(Text)
    line: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime]


class EventUserRow(Base):
    """The account a user was last grouped into (Segment ``group``; identify with ``context.groupId``)."""

    __tablename__ = "event_users"

    user_id: Mapped[str] = mapped_column(String(400), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200))
    traits: Mapped[dict[str, Any]] = mapped_column(JSON)
    grouped_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class StoredFileRow(Base):
    """A file stored with ``outreach events load`` when the store is PostgreSQL (a DuckDB store keeps this list
    in its own file): how runs tell a data directory's events file is already stored."""

    __tablename__ = "stored_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[int] = mapped_column(BigInteger)
    loaded_at: Mapped[datetime]
