"""The schema comes from migrations only, matches the ORM models, upgrades in place and keeps the audit log
append-only — on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from outreach import db
from outreach.errors import ConfigError
from outreach.migrations.models import metadata
from outreach.review.storage import AuditRow, DraftRow
from tests.review_world import ReviewWorld, postgres_url_or_skip, reset_postgres

TABLES = {"accounts", "drafts", "draft_versions", "frictions", "evidence", "review_actions", "audit_log",
          "users", "api_tokens", "alembic_version",
          # 0004: sequences and sending
          "sequence_enrollments", "outbox", "suppressions", "unsubscribe_tokens", "mail_events",
          # 0005: expansion outcomes
          "outcomes",
          # 0008: server-side web sessions
          "web_sessions",
          # 0009_integrations: event store inbox, intake keys, notifications, account states, cursors
          "stored_events", "event_users", "stored_files", "intake_keys", "notifications", "account_states",
          "integration_cursors"}


def test_upgrade_empty_database_creates_the_schema(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        assert db.current_revision(engine) == db.head_revision()
        assert set(inspect(engine).get_table_names()) == TABLES
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []  # models and migrations agree
        db.require_current(engine)
    finally:
        engine.dispose()


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    db.upgrade(db_url)
    engine = db.make_engine(db_url)
    assert db.current_revision(engine) == db.head_revision()
    engine.dispose()


def _old_database(url: str) -> None:
    """A database as revision 0001 left it, with a queued draft in it."""
    db.upgrade(url, "0001")  # the oldest schema: data written then must survive every later migration
    engine = db.make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO accounts (account_id, name, plan, owner_email, snapshot, updated_at) "
                 "VALUES ('acme', 'Acme Corp', 'team', 'maya@ledgerly.example', :snap, '2026-11-20 09:00:00')"),
            {"snap": json.dumps({"account_id": "acme"})},
        )
        connection.execute(
            text("INSERT INTO drafts (id, account_id, motion, trigger, status, owner_email, version, current_version,"
                 " as_of, offer_id, offer, health, gate, decision, subject, quality, created_at, updated_at) VALUES "
                 "(7, 'acme', 'upsell', 'repeated_limit_hits', 'pending_review', 'maya@ledgerly.example', 3, 1, "
                 "'2026-11-20', 'business', NULL, '{}', '{}', '{}', 'Kept subject', 'ok', "
                 "'2026-11-20 09:00:00', '2026-11-20 09:00:00')")
        )
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == "0001"
        assert "users" not in inspect(connection).get_table_names()
    engine.dispose()


def test_upgrade_from_an_old_database_keeps_its_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _old_database(url)
    engine = db.make_engine(url)
    with pytest.raises(ConfigError, match="at revision 0001") as raised:
        db.require_current(engine)
    assert raised.value.hint is not None and "outreach db upgrade" in raised.value.hint
    db.upgrade(url)
    assert db.current_revision(engine) == db.head_revision()
    factory = db.session_factory(engine)
    with factory() as session:
        draft = session.get(DraftRow, 7)
        assert draft is not None and draft.subject == "Kept subject" and draft.version == 3
    assert "users" in inspect(engine).get_table_names()
    engine.dispose()


@pytest.mark.postgres
def test_upgrade_from_an_old_postgres_database_keeps_its_data() -> None:
    url = postgres_url_or_skip()
    reset_postgres(url)
    try:
        _old_database(url)
        db.upgrade(url)
        engine = db.make_engine(url)
        with db.session_factory(engine)() as session:
            draft = session.get(DraftRow, 7)
            assert draft is not None and draft.subject == "Kept subject"
        engine.dispose()
    finally:
        reset_postgres(url)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_sqlite_default_lives_in_outreach_home(isolated_home: Path) -> None:
    from outreach.settings import Settings

    url = db.database_url(Settings())
    assert url == f"sqlite:///{isolated_home.resolve() / 'outreach.db'}"


def test_postgres_urls_use_psycopg3() -> None:
    assert db.normalize_url("postgresql://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert db.normalize_url("postgres://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert db.normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_unsupported_backend_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="not supported"):
        db.make_engine("mysql://u:p@localhost/x")
    with pytest.raises(ConfigError, match="not a database URL"):
        db.make_engine("::nonsense::")


def test_audit_log_is_append_only(world: ReviewWorld) -> None:
    with world.factory() as session:
        rows = session.scalars(select(AuditRow)).all()
        assert {r.action for r in rows} >= {"draft.create", "user.add"}
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), world.factory() as session, session.begin():
            session.execute(text(statement))
    with world.factory() as session:
        assert "mallory" not in {r.actor for r in session.scalars(select(AuditRow))}


def test_one_open_draft_per_account_and_motion_is_enforced_by_the_database(world: ReviewWorld) -> None:
    with world.factory() as session:
        existing = session.get(DraftRow, world.draft_ids["acme"])
        assert existing is not None
        session.rollback()
        with pytest.raises(IntegrityError), session.begin():
            session.execute(
                text("INSERT INTO drafts (account_id, motion, trigger, status, version, current_version, as_of, "
                     "health, gate, decision, subject, quality, created_at, updated_at) VALUES "
                     "(:a, :m, 'x', 'pending_review', 1, 1, '2026-11-20', '{}', '{}', '{}', 's', 'ok', "
                     "'2026-11-20 09:00:00', '2026-11-20 09:00:00')"),
                {"a": existing.account_id, "m": existing.motion},
            )
