"""Alembic environment: runs migrations on the connection :func:`outreach.db.upgrade` hands over.

Run programmatically only (no alembic.ini): the caller passes an open connection in
``config.attributes["connection"]`` so migrations share its transaction; otherwise the URL from the config is
used. SQLite gets batch mode because it cannot ALTER most things in place.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from outreach.db import make_engine
from outreach.migrations.models import metadata

config = context.config
target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:  # pragma: no cover - outreach.db always sets it
        raise RuntimeError("no database URL configured for migrations")
    engine = make_engine(url)
    try:
        with engine.begin() as own:
            _run(own)
    finally:
        engine.dispose()


if context.is_offline_mode():  # pragma: no cover - offline SQL generation is not offered
    raise RuntimeError("offline migrations are not supported; run `outreach db upgrade`")
run_migrations_online()
