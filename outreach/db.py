"""The database connection: one engine per URL, sessions, and migrations run from inside the package.

SQLite is the default (a file ``outreach.db`` in ``OUTREACH_HOME``) so a rep can start with no server; it runs
in WAL mode so readers (the web app, reports) never wait for a writer, with foreign keys switched on (SQLite
leaves them off by default) and a busy timeout instead of instant "database is locked" errors. A unit of work
(:func:`transaction`) takes SQLite's write lock when it begins (``BEGIN IMMEDIATE``): two writers then queue
for the busy timeout instead of one failing at once when a read it made is overtaken by the other's commit,
and what it read stays true until it commits (the sending scheduler's re-check right before a send relies on
this). Writers keep their transactions short, so the wait is a moment. PostgreSQL is used when
``OUTREACH_DATABASE_URL`` says so (the choice for several workers); plain ``postgresql://`` URLs are pointed
at the psycopg 3 driver.

The schema is only ever changed by the Alembic migrations shipped in :mod:`outreach.migrations`, applied by
:func:`upgrade` (``outreach db upgrade``), so an old database is brought forward in place and never rebuilt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from outreach.errors import ConfigError
from outreach.settings import Settings

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# How long a SQLite writer waits for another one before "database is locked". Transactions are short, so
# this is a safety margin for a busy machine, not a wait anyone should see.
SQLITE_BUSY_TIMEOUT_MS = 15_000


def normalize_url(url: str) -> str:
    """Send ``postgres://`` and ``postgresql://`` URLs to psycopg 3, the only Postgres driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def database_url(settings: Settings) -> str:
    return normalize_url(settings.resolved_database_url())


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine with the pragmas and driver this project relies on. Creates the SQLite file's directory."""
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except Exception as error:  # SQLAlchemy raises ArgumentError with a terse message
        raise ConfigError(
            f"OUTREACH_DATABASE_URL '{url}' is not a database URL",
            hint="use sqlite:///path/outreach.db or postgresql://user:password@host/dbname",
        ) from error
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        with engine.connect() as connection:
            # WAL is a property of the file, so setting it once per engine is enough.
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        return engine
    if backend != "postgresql":
        raise ConfigError(
            f"database backend '{backend}' is not supported", hint="use SQLite (default) or PostgreSQL"
        )
    return create_engine(url, pool_pre_ping=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: views are built after commit and must not trigger lazy reloads.
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error. On SQLite it holds the write lock from
    its first statement (``BEGIN IMMEDIATE``), so keep it short: no network, no model calls inside."""
    with factory() as session, session.begin():
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            # The sqlite3 driver (legacy transaction control) has not begun a transaction yet: it would
            # only do so, deferred, at the first INSERT/UPDATE/DELETE. Begin it now, holding the write lock.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield session


def _alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on '%' in passwords.
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head", *, engine: Engine | None = None) -> None:
    """Apply migrations up to ``revision`` (``outreach db upgrade``). Safe to run again: it is a no-op at head."""
    config = _alembic_config(url)
    own = engine is None
    engine = engine or make_engine(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        logger.info("database %s upgraded to %s", engine.url.render_as_string(hide_password=True), revision)
    finally:
        if own:
            engine.dispose()


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise ConfigError("no migrations found in the outreach package")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_current(engine: Engine) -> None:
    """Refuse to serve a database the migrations have not caught up with, instead of failing on a missing column."""
    current = current_revision(engine)
    if current != head_revision():
        state = "empty" if current is None else f"at revision {current}"
        raise ConfigError(
            f"the database is {state}, not at the latest schema ({head_revision()})",
            hint="run `outreach db upgrade` (it keeps existing data)",
        )
