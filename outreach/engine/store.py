"""The event store: every event stored once, so no run parses its history again.

Events reach the store two ways: ``outreach events load FILE…`` (the same JSON Lines, Parquet and CSV files a data
directory holds, checked by the same reader, with the same ``FILE:LINE`` errors) and the Segment-compatible API
(:mod:`outreach.web.intake`). Where they live:

- **DuckDB file** (default, ``OUTREACH_HOME/events.duckdb``): columnar, compressed, read back into a run's
  in-memory tables in a fraction of the time parsing JSON takes. API events land first in the workspace
  database's ``stored_events`` table (an inbox many processes can write at once, where DuckDB allows one
  writer) and move into the file at the next read or compaction.
- **PostgreSQL** (when ``OUTREACH_DATABASE_URL`` is PostgreSQL): ``stored_events`` is the store, shared by every
  machine; each machine keeps the DuckDB file as its columnar copy, brought up to date (only the new rows) before
  each read.

Each row keeps where it came from (``source``: the file's path or ``api``, and ``line``: its line or row there)
for evidence, and its ``messageId`` as ``dedup_key``, so a retried batch or a file loaded twice is stored once.
``group`` calls say which account a user belongs to (``event_users``); ``track`` calls without
``context.groupId`` are resolved through it, also after the fact.

A run (:func:`outreach.engine.data.load_dataset` with ``events=store``) copies the stored ``track``/``page``/
``screen`` events into its ``event_rows`` table exactly as the file reader would have made them: same columns,
same order, same evidence ids, so decisions are byte-for-byte the ones the file gives.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import pyarrow as pa

from outreach.engine.tables import sql_text
from outreach.errors import DataError, OutreachError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from outreach.settings import Settings

log = logging.getLogger(__name__)

STORE_FILE = "events.duckdb"
# Segment message types that are product events; identify, group and alias only map users to accounts.
ENGINE_TYPES = ("track", "page", "screen")
LOCK_TIMEOUT_SECONDS = 30.0
# API messages are deduplicated by messageId against the API messages stored in this window (Segment keeps "at
# least 24 hours" of messageIds); files against everything, API messages included, when they are loaded.
# PostgreSQL's unique index covers everything either way.
API_DEDUP_WINDOW = timedelta(days=7)
_BATCH_ROWS = 50_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    inbox_id BIGINT, dedup_key VARCHAR, message_id VARCHAR NOT NULL, type VARCHAR NOT NULL, event VARCHAR,
    user_id VARCHAR, ts TIMESTAMP NOT NULL, account_id VARCHAR, props JSON, source VARCHAR NOT NULL, line BIGINT,
    received_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path VARCHAR NOT NULL, size BIGINT NOT NULL, mtime_ns BIGINT NOT NULL, sha256 VARCHAR NOT NULL,
    rows BIGINT NOT NULL, lines BIGINT NOT NULL, loaded_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
"""
_COLUMNS = ("inbox_id", "dedup_key", "message_id", "type", "event", "user_id", "ts", "account_id", "props",
            "source", "line", "received_at")  # fmt: skip
_ARROW = pa.schema(
    [("inbox_id", pa.int64()), ("dedup_key", pa.string()), ("message_id", pa.string()), ("type", pa.string()),
     ("event", pa.string()), ("user_id", pa.string()), ("ts", pa.timestamp("us")), ("account_id", pa.string()),
     ("props", pa.string()), ("source", pa.string()), ("line", pa.int64()), ("received_at", pa.timestamp("us")),
     ("ord", pa.int64())]
)  # fmt: skip
# What a run copies: the file reader's event_rows columns, in stored order.
_ENGINE_ROWS = (
    "SELECT message_id, event, user_id, ts, account_id, props FROM {alias}.events "
    f"WHERE type IN ({', '.join(sql_text(t) for t in ENGINE_TYPES)}) AND account_id IS NOT NULL "
    "AND event IS NOT NULL"
)
_IN_PROCESS: dict[Path, threading.RLock] = {}
_IN_PROCESS_GUARD = threading.Lock()


def store_path(settings: Settings) -> Path:
    """Where the workspace keeps its DuckDB event file."""
    return (settings.event_store_path or settings.resolved_home() / STORE_FILE).expanduser().resolve()


def naive_utc(value: datetime) -> datetime:
    """The engine keeps every timestamp as naive UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    sha256: str
    rows: int
    lines: int
    loaded_at: datetime


@dataclass
class FileLoad:
    """What ``outreach events load`` did with one file."""

    path: Path
    stored: int = 0
    duplicates: int = 0
    already_stored: bool = False
    appended_from_line: int | None = None
    replaced: int = 0

    def line(self) -> str:
        if self.already_stored:
            return f"{self.path}: already stored, unchanged"
        where = f" (new lines from line {self.appended_from_line})" if self.appended_from_line else ""
        replaced = f", {self.replaced:,} earlier rows of it replaced" if self.replaced else ""
        return f"{self.path}: {self.stored:,} events stored{where}, {self.duplicates:,} duplicates skipped{replaced}"


@dataclass
class StoreStatus:
    path: Path
    backend: str
    events: int
    engine_events: int
    unresolved: int
    pending: int
    accounts: int
    first: datetime | None
    last: datetime | None
    files: list[FileRecord] = field(default_factory=list)


@dataclass
class Refresh:
    """New events a loaded data set took in (:meth:`EventStore.refresh`)."""

    rows: int
    accounts: set[str]
    reload: bool  # rows stored earlier changed account (a late ``group`` call): reload to see them


def _file_fingerprint(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


class EventStore:
    """One workspace's stored events. Cheap to create; every method opens what it needs and closes it again,
    because DuckDB lets one process at a time open the file (others wait, up to :data:`LOCK_TIMEOUT_SECONDS`)."""

    def __init__(self, path: Path, database: Engine | None = None, *, postgres: bool = False,
                 in_place: bool = False) -> None:
        self.path = path
        self.database = database
        self.postgres = postgres
        # in_place: runs read the file where it is (attached read-only for as long as the run's data set lives)
        # instead of copying the events into memory. For one-shot commands (explain, draft): it saves the copy
        # and, reading compressed columns, some of the queries' time; a process that keeps data sets (the server,
        # the worker) copies, so it never holds the file other processes write.
        self.in_place = in_place
        self._inbox: bool | None = None
        with _IN_PROCESS_GUARD:
            self._lock = _IN_PROCESS.setdefault(path, threading.RLock())

    # ------------------------------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls, settings: Settings, database: Callable[[], Engine] | None = None, *, create: bool = False,
        in_place: bool = False,
    ) -> EventStore | None:
        """The workspace's store, or None when it has none (and ``create`` is False).

        A DuckDB store exists once its file does; a PostgreSQL store once ``stored_events`` holds a row. The
        workspace database is only touched when it already exists (``outreach explain`` never creates one).
        """
        from sqlalchemy.engine import make_url

        from outreach import db

        path = store_path(settings)
        url = make_url(db.database_url(settings))
        postgres = url.get_backend_name() == "postgresql"
        engine: Engine | None = None
        exists = postgres or bool(url.database and url.database != ":memory:"
                                  and Path(url.database).expanduser().exists())
        if database is not None and exists:
            engine = database()
        store = cls(path, engine, postgres=postgres, in_place=in_place)
        if create:
            store.create()
            return store
        if path.exists() or (postgres and store.has_inbox() and store._database_rows() > 0):
            return store
        return None

    def create(self) -> None:
        """Create the DuckDB file (and its tables) if it is not there yet."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connection():
            pass

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The store file, opened for writing (this process alone until closed)."""
        with self._lock:
            con = _retry_locked(lambda: duckdb.connect(str(self.path)), self.path)
            try:
                con.execute("SET TimeZone='UTC'")
                con.execute(_SCHEMA)
                yield con
            finally:
                con.close()

    @contextmanager
    def _attached(self, con: duckdb.DuckDBPyConnection) -> Iterator[str]:
        """The store file attached to ``con`` (a run's in-memory database) as ``store``, detached afterwards."""
        with self._lock:
            if not self.path.exists():
                self.create()
            _retry_locked(lambda: con.execute(f"ATTACH {sql_text(str(self.path))} AS outreach_store"), self.path)
            try:
                con.execute("USE outreach_store")
                con.execute(_SCHEMA)
                con.execute("USE memory")
                yield "outreach_store"
            finally:
                con.execute("USE memory")
                con.execute("DETACH outreach_store")

    # ------------------------------------------------------------------------------------------ the database side

    def has_inbox(self) -> bool:
        """Whether the workspace database has the ``stored_events`` table (it is migrated)."""
        if self.database is None:
            return False
        if self._inbox is None:
            from sqlalchemy import inspect

            self._inbox = inspect(self.database).has_table("stored_events")
        return self._inbox

    def _database_rows(self, after: int = 0) -> int:
        from sqlalchemy import func, select

        from outreach.engine.store_tables import StoredEventRow

        assert self.database is not None
        with self.database.connect() as connection:
            return int(
                connection.scalar(select(func.count()).select_from(StoredEventRow).where(StoredEventRow.id > after))
                or 0
            )

    # ------------------------------------------------------------------------------------------ reading (runs)

    def holds(self, path: Path) -> bool:
        """Whether ``path`` (a data directory's events file) is stored as it is now: a run then reads the store
        instead of parsing the file again."""
        try:
            name, size, mtime = _file_fingerprint(path)
        except OSError:
            return False
        return any(r.path == name and r.size == size and r.mtime_ns == mtime for r in self.files())

    def add_to(self, con: duckdb.DuckDBPyConnection, *, skip_known: bool = False) -> None:
        """Append the stored product events to ``con``'s ``event_rows`` (the seam
        :func:`~outreach.engine.data.load_dataset` calls), after moving new database rows into the file.
        ``skip_known``: leave out events whose evidence id ``event_rows`` already has (the data directory's
        file was read because it is not stored as it is now)."""
        if self.in_place and not skip_known:
            with self._attached(con) as alias:
                self._compact(con, alias)
            self._read_in_place(con)
            return
        with self._attached(con) as alias:
            self._compact(con, alias)
            rows = _ENGINE_ROWS.format(alias=alias)
            if skip_known:
                rows += " AND message_id NOT IN (SELECT message_id FROM event_rows WHERE message_id IS NOT NULL)"
            con.execute(f"INSERT INTO event_rows {rows}")
            self._remember(con, alias, file_read=skip_known)

    def _read_in_place(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make ``event_rows`` and ``events`` views over the store file, attached read-only to ``con`` until it
        closes. Lines are the file's row ids: the stored order, as the copy would number it."""
        with self._lock:
            _retry_locked(
                lambda: con.execute(f"ATTACH {sql_text(str(self.path))} AS outreach_events (READ_ONLY)"), self.path)
        engine_rows = _ENGINE_ROWS.format(alias="outreach_events")
        con.execute("DROP VIEW IF EXISTS events")
        con.execute("DROP TABLE IF EXISTS event_rows")
        con.execute(f"CREATE VIEW event_rows AS {engine_rows}")
        con.execute(
            "CREATE VIEW events AS SELECT rowid + 1 AS line, message_id, event, user_id, ts, account_id, props "
            + engine_rows[engine_rows.index("FROM "):]
        )

    def refresh(self, con: duckdb.DuckDBPyConnection) -> Refresh:
        """Append to a loaded data set (``con``, filled by :meth:`add_to`) the events stored since: what
        re-deciding the accounts they concern needs, without reading the history again."""
        with self._attached(con) as alias:
            self._compact(con, alias)
            now_epoch = self._meta(con, alias, "resolved_epoch") or "0"
            try:
                seen, epoch, file_read = con.execute(
                    "SELECT inbox_id, epoch, file_read FROM outreach_store_seen").fetchone() or (0, "0", True)
            except duckdb.CatalogException:  # loaded before the workspace had a store: every API row is new
                seen, epoch, file_read = 0, now_epoch, True
            rows = _ENGINE_ROWS.format(alias=alias) + f" AND inbox_id > {int(seen)}"
            if file_read:  # the data set read an events file the store does not hold: it may have these events
                rows += " AND message_id NOT IN (SELECT message_id FROM event_rows WHERE message_id IS NOT NULL)"
            con.execute(f"CREATE OR REPLACE TEMP TABLE outreach_store_new AS {rows}")
            count, accounts = con.execute(
                "SELECT count(*), list(DISTINCT account_id) FROM outreach_store_new"
            ).fetchone() or (0, [])
            con.execute("INSERT INTO event_rows SELECT * FROM outreach_store_new")
            con.execute("DROP TABLE outreach_store_new")
            self._remember(con, alias, file_read=bool(file_read))
        return Refresh(int(count), set(accounts or []), reload=str(epoch) != str(now_epoch))

    def _remember(self, con: duckdb.DuckDBPyConnection, alias: str, *, file_read: bool) -> None:
        """What a data set took in: rows up to this database id, and whether it also read an events file."""
        con.execute(
            f"CREATE OR REPLACE TABLE outreach_store_seen AS SELECT coalesce(max(inbox_id), 0) AS inbox_id, "
            f"coalesce((SELECT value FROM {alias}.meta WHERE key = 'resolved_epoch'), '0') AS epoch, "
            f"{'true' if file_read else 'false'} AS file_read FROM {alias}.events"
        )

    @staticmethod
    def _meta(con: duckdb.DuckDBPyConnection, alias: str, key: str) -> str | None:
        row = con.execute(f"SELECT value FROM {alias}.meta WHERE key = ?", [key]).fetchone()
        return str(row[0]) if row else None

    @staticmethod
    def _set_meta(con: duckdb.DuckDBPyConnection, alias: str, key: str, value: str) -> None:
        con.execute(f"INSERT OR REPLACE INTO {alias}.meta VALUES (?, ?)", [key, value])

    # ------------------------------------------------------------------------------------------ compaction

    def compact(self) -> int:
        """Move the database's new rows into the file now (``outreach events compact``); the count moved."""
        con = _memory()
        try:
            with self._attached(con) as alias:
                return self._compact(con, alias)
        finally:
            con.close()

    def _compact(self, con: duckdb.DuckDBPyConnection, alias: str) -> int:
        """Bring the file up to date with the database: on SQLite move the inbox's rows in (then delete them
        there); on PostgreSQL copy the rows added since the last time (a changed row count means rows were
        replaced: the copy is rebuilt). Then resolve rows whose user a later ``group`` call placed."""
        if not self.has_inbox():
            return 0
        from sqlalchemy import delete, func, select

        from outreach.engine.store_tables import StoredEventRow

        assert self.database is not None
        row = con.execute(f"SELECT coalesce(max(inbox_id), 0), count(inbox_id) FROM {alias}.events").fetchone()
        watermark, copied = (int(row[0]), int(row[1])) if row else (0, 0)
        if self.postgres:
            with self.database.connect() as connection:
                upto = connection.scalar(
                    select(func.count()).select_from(StoredEventRow).where(StoredEventRow.id <= watermark)
                )
            if int(upto or 0) != copied:
                log.info("stored events were replaced in the database: rebuilding %s", self.path)
                con.execute(f"DELETE FROM {alias}.events WHERE inbox_id IS NOT NULL")
                watermark = 0
        moved = 0
        query = (
            select(*(getattr(StoredEventRow, c) for c in ("id", *_COLUMNS[1:])))
            .where(StoredEventRow.id > watermark)
            .order_by(StoredEventRow.id)
        )
        newest = watermark
        with self.database.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=_BATCH_ROWS).execute(query)
            for batch in result.partitions(_BATCH_ROWS):
                newest = max(newest, int(batch[-1][0]))
                _temp_table(con, "outreach_incoming", _arrow_rows(batch), "* REPLACE (props::JSON AS props)")
                moved += self._insert(con, alias, "outreach_incoming", dedupe=not self.postgres,
                                      window=API_DEDUP_WINDOW)
                con.execute("DROP TABLE outreach_incoming")
        if not self.postgres:
            # The rows are in the file (committed) or were duplicates of rows there: the inbox lets them go. A
            # crash in between leaves rows the next compaction skips (ids at or below the file's) and deletes.
            with self.database.begin() as connection:
                connection.execute(delete(StoredEventRow).where(StoredEventRow.id <= newest))
        self._resolve(con, alias)
        return moved

    def _insert(self, con: duckdb.DuckDBPyConnection, alias: str, relation: str, *, dedupe: bool,
                window: timedelta | None = None) -> int:
        """Insert the rows of ``relation`` (store columns plus ``ord``, their order) that are not stored yet: a
        ``dedup_key`` stored before (within ``window`` of now, when given), or repeated earlier in ``relation``,
        is a duplicate."""
        columns = ", ".join(_COLUMNS)
        if not dedupe:
            before = self._count(con, alias)
            con.execute(f"INSERT INTO {alias}.events SELECT {columns} FROM {relation} ORDER BY ord")
            return self._count(con, alias) - before
        repeated = con.execute(
            f"SELECT count(dedup_key) <> count(DISTINCT dedup_key) FROM {relation}"
        ).fetchone()
        recent = ""
        if window is not None:
            # API messages against API messages of the window: a file stored later is checked against
            # everything when it is loaded. Both conditions let DuckDB skip row groups of file rows (no inbox id)
            # and of older API rows (received_at grows with the rows) by their statistics.
            since = (datetime.now(UTC) - window).replace(tzinfo=None).isoformat(sep=" ")
            recent = f" AND inbox_id IS NOT NULL AND received_at >= TIMESTAMP '{since}'"
        stored = con.execute(f"SELECT count(*) > 0 FROM {alias}.events WHERE dedup_key IS NOT NULL{recent}").fetchone()
        conditions = []
        if repeated and repeated[0]:
            conditions.append(
                f"(dedup_key IS NULL OR ord IN (SELECT min(ord) FROM {relation} WHERE dedup_key IS NOT NULL "
                "GROUP BY dedup_key))"
            )
        if stored and stored[0]:
            conditions.append(
                f"(dedup_key IS NULL OR dedup_key NOT IN (SELECT dedup_key FROM {alias}.events "
                f"WHERE dedup_key IS NOT NULL{recent}))"
            )
        where = f"WHERE {' AND '.join(conditions)} ORDER BY ord" if conditions else ""
        before = self._count(con, alias)
        con.execute(f"INSERT INTO {alias}.events SELECT {columns} FROM {relation} {where}")
        return self._count(con, alias) - before

    @staticmethod
    def _count(con: duckdb.DuckDBPyConnection, alias: str) -> int:
        row = con.execute(f"SELECT count(*) FROM {alias}.events").fetchone()
        return int(row[0]) if row else 0

    def _resolve(self, con: duckdb.DuckDBPyConnection, alias: str) -> int:
        """Give rows stored without an account the account a ``group`` call has since placed their user in."""
        if not self.has_inbox():
            return 0
        users = [
            str(r[0])
            for r in con.execute(
                f"SELECT DISTINCT user_id FROM {alias}.events WHERE account_id IS NULL AND user_id IS NOT NULL "
                f"AND type IN ({', '.join(sql_text(t) for t in ENGINE_TYPES)})"
            ).fetchall()
        ]
        if not users:
            return 0
        from sqlalchemy import select

        from outreach.engine.store_tables import EventUserRow

        assert self.database is not None
        found: list[tuple[str, str]] = []
        with self.database.connect() as connection:
            for start in range(0, len(users), 1000):
                chunk = users[start : start + 1000]
                found.extend(
                    (str(u), str(a))
                    for u, a in connection.execute(
                        select(EventUserRow.user_id, EventUserRow.account_id).where(EventUserRow.user_id.in_(chunk))
                    )
                )
        if not found:
            return 0
        _temp_table(con, "outreach_user_accounts",
                    pa.table({"user_id": [u for u, _ in found], "account_id": [a for _, a in found]}))
        con.execute(
            f"UPDATE {alias}.events SET account_id = m.account_id FROM outreach_user_accounts m "
            f"WHERE {alias}.events.account_id IS NULL AND {alias}.events.user_id = m.user_id"
        )
        con.execute("DROP TABLE outreach_user_accounts")
        epoch = int(self._meta(con, alias, "resolved_epoch") or "0") + 1
        self._set_meta(con, alias, "resolved_epoch", str(epoch))
        return len(found)

    # ------------------------------------------------------------------------------------------ files

    def files(self) -> list[FileRecord]:
        """The files stored so far, oldest first."""
        if self.postgres:
            if not self.has_inbox():
                return []
            from sqlalchemy import select

            from outreach.engine.store_tables import StoredFileRow

            assert self.database is not None
            with self.database.connect() as connection:
                rows = connection.execute(select(StoredFileRow).order_by(StoredFileRow.id)).all()
            return [
                FileRecord(r.path, r.size, r.mtime_ns, r.sha256, r.rows, r.lines, r.loaded_at) for r in rows
            ]
        if not self.path.exists():
            return []
        with self._connection() as con:
            return [
                FileRecord(str(p), int(s), int(m), str(h), int(r), int(n), t)
                for p, s, m, h, r, n, t in con.execute(
                    "SELECT path, size, mtime_ns, sha256, rows, lines, loaded_at FROM files ORDER BY loaded_at"
                ).fetchall()
            ]

    def load_file(self, path: Path, *, replace: bool = False, now: datetime | None = None) -> FileLoad:
        """Store one events file (JSON Lines, Parquet or CSV, the data directory's formats).

        A file stored before is skipped when unchanged; a JSON Lines file that only grew has its new lines
        stored; any other change needs ``replace`` (its earlier rows are replaced), since events without a
        ``messageId`` could not be told apart. Errors name the file, line and field; nothing is stored then.
        """
        from outreach.engine.data import read_events

        path = Path(path)
        if not path.is_file():
            raise DataError(path, "file not found" if not path.exists() else "not a file",
                            hint="pass JSON Lines, Parquet or CSV events files")
        if path.suffix not in (".jsonl", ".parquet", ".csv"):
            raise DataError(path, "not an events file", hint="use .jsonl, .parquet or .csv (docs/data-formats.md)")
        stamp = naive_utc(now or datetime.now(UTC))
        name, size, mtime = _file_fingerprint(path)
        earlier = [r for r in self.files() if r.path == name]
        previous = earlier[-1] if earlier else None
        digest, prefix_digest, prefix_lines, total_lines = _digests(path, previous.size if previous else None)
        report = FileLoad(path)
        offset_rows = offset_lines = 0
        tail: Path | None = None
        if previous is not None and previous.sha256 == digest:
            report.already_stored = True
            if (previous.size, previous.mtime_ns) != (size, mtime):
                self._record_file(FileRecord(name, size, mtime, digest, previous.rows, previous.lines, stamp), name)
            return report
        if previous is not None and not replace:
            if path.suffix == ".jsonl" and size > previous.size and prefix_digest == previous.sha256:
                offset_rows, offset_lines = previous.rows, prefix_lines
                report.appended_from_line = prefix_lines + 1
            else:
                raise OutreachError(
                    f"{path} changed since it was stored on {previous.loaded_at:%Y-%m-%d %H:%M} UTC, not only by "
                    "new lines at the end",
                    hint="pass --replace to replace the events stored from it",
                )
        con = _memory()
        try:
            with tempfile.TemporaryDirectory(prefix="outreach-load-") as folder:
                source = path
                if offset_rows or offset_lines:
                    tail = Path(folder) / path.name
                    with path.open("rb") as handle:
                        handle.seek(previous.size if previous else 0)
                        tail.write_bytes(handle.read())
                    source = tail
                try:
                    read_events(con, source)
                except DataError as error:
                    if tail is None:
                        raise
                    raise DataError(path, error.problem, line=(error.line or 0) + offset_lines or None,
                                    field=error.field, hint=error.hint) from None
            count_row = con.execute("SELECT count(*) FROM event_rows").fetchone()
            rows = int(count_row[0]) if count_row else 0
            label = sql_text(path.name)
            first = 2 if path.suffix == ".csv" else 1
            con.execute(
                f"""
                CREATE OR REPLACE TEMP VIEW outreach_incoming AS
                SELECT NULL::BIGINT AS inbox_id, message_id AS dedup_key,
                       coalesce(message_id, {label} || '#' || (rowid + {first} + {offset_rows})) AS message_id,
                       'track' AS type, event, user_id, ts, account_id, props,
                       {sql_text(name)} AS source, rowid + {first} + {offset_rows} AS line,
                       TIMESTAMP '{stamp.isoformat(sep=" ")}' AS received_at, rowid AS ord
                FROM event_rows
                """
            )
            record = FileRecord(name, size, mtime, digest, offset_rows + rows,
                                total_lines, stamp)
            if self.postgres:
                stored, replaced = self._load_into_database(con, record, replace=previous is not None and replace)
            else:
                with self._attached(con) as alias:
                    replaced = 0
                    if previous is not None and replace:
                        replaced_row = con.execute(
                            f"SELECT count(*) FROM {alias}.events WHERE source = ?", [name]
                        ).fetchone()
                        replaced = int(replaced_row[0]) if replaced_row else 0
                        con.execute(f"DELETE FROM {alias}.events WHERE source = ?", [name])
                        con.execute(f"DELETE FROM {alias}.files WHERE path = ?", [name])
                    stored = self._insert(con, alias, "outreach_incoming", dedupe=True)
                    con.execute(
                        f"INSERT INTO {alias}.files VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [record.path, record.size, record.mtime_ns, record.sha256, record.rows, record.lines,
                         record.loaded_at],
                    )
            report.stored, report.duplicates, report.replaced = stored, rows - stored, replaced
            return report
        finally:
            con.close()

    def _record_file(self, record: FileRecord, name: str) -> None:
        """Note that a stored file was touched without changing (new mtime, same bytes)."""
        if self.postgres:
            from sqlalchemy import update

            from outreach.engine.store_tables import StoredFileRow

            assert self.database is not None
            with self.database.begin() as connection:
                connection.execute(
                    update(StoredFileRow).where(StoredFileRow.path == name)
                    .values(size=record.size, mtime_ns=record.mtime_ns)
                )
            return
        with self._connection() as con:
            con.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?", [record.size, record.mtime_ns, name])

    def _load_into_database(
        self, con: duckdb.DuckDBPyConnection, record: FileRecord, *, replace: bool
    ) -> tuple[int, int]:
        """PostgreSQL store: COPY the checked rows (``outreach_incoming`` on ``con``) into ``stored_events``,
        through a CSV DuckDB writes; a ``messageId`` stored before, or repeated, is skipped."""
        from sqlalchemy import delete, func, insert, select, text

        from outreach.engine.store_tables import StoredEventRow, StoredFileRow

        if not self.has_inbox():
            raise OutreachError("the workspace database has no event store tables",
                                hint="run `outreach db upgrade` (it keeps existing data)")
        assert self.database is not None
        columns = [c for c in _COLUMNS if c != "inbox_id"]
        with tempfile.TemporaryDirectory(prefix="outreach-copy-") as folder:
            csv_path = Path(folder) / "events.csv"
            con.execute(
                f"COPY (SELECT {', '.join(columns)}, ord FROM outreach_incoming) TO {sql_text(str(csv_path))} "
                "(FORMAT csv, HEADER false)"
            )
            with self.database.begin() as connection:
                lock_appends(connection, postgres=True)
                replaced = 0
                if replace:
                    replaced = int(connection.scalar(select(func.count()).select_from(StoredEventRow)
                                                     .where(StoredEventRow.source == record.path)) or 0)
                    connection.execute(delete(StoredEventRow).where(StoredEventRow.source == record.path))
                    connection.execute(delete(StoredFileRow).where(StoredFileRow.path == record.path))
                connection.execute(text(
                    "CREATE TEMP TABLE outreach_load (dedup_key text, message_id text, type text, event text, "
                    "user_id text, ts timestamp, account_id text, props text, source text, line bigint, "
                    "received_at timestamp, ord bigint) ON COMMIT DROP"
                ))
                raw = connection.connection.driver_connection
                assert raw is not None
                with raw.cursor() as cursor, cursor.copy("COPY outreach_load FROM STDIN (FORMAT csv)") as copy, \
                        csv_path.open("rb") as handle:
                    while chunk := handle.read(1 << 20):
                        copy.write(chunk)
                result = connection.execute(text(
                    "INSERT INTO stored_events (dedup_key, message_id, type, event, user_id, ts, account_id, "
                    "props, source, line, received_at) "
                    "SELECT dedup_key, message_id, type, event, user_id, ts AT TIME ZONE 'UTC', account_id, "
                    "props::json, source, line, received_at AT TIME ZONE 'UTC' FROM outreach_load "
                    "WHERE dedup_key IS NULL OR ord IN (SELECT min(ord) FROM outreach_load "
                    "WHERE dedup_key IS NOT NULL GROUP BY dedup_key) ORDER BY ord ON CONFLICT (dedup_key) DO NOTHING"
                ))
                stored = int(result.rowcount or 0)
                connection.execute(insert(StoredFileRow).values(
                    path=record.path, size=record.size, mtime_ns=record.mtime_ns, sha256=record.sha256,
                    rows=record.rows, lines=record.lines, loaded_at=record.loaded_at.replace(tzinfo=UTC),
                ))
        return stored, replaced

    # ------------------------------------------------------------------------------------------ status

    def status(self) -> StoreStatus:
        con = _memory()
        try:
            with self._attached(con) as alias:
                self._compact(con, alias)
                row = con.execute(
                    f"""SELECT count(*), count(*) FILTER (WHERE type IN ({', '.join(sql_text(t) for t in ENGINE_TYPES)})
                               AND account_id IS NOT NULL AND event IS NOT NULL),
                           count(*) FILTER (WHERE account_id IS NULL AND type IN ('track', 'page', 'screen')),
                           count(DISTINCT account_id), min(ts), max(ts)
                        FROM {alias}.events"""
                ).fetchone()
        finally:
            con.close()
        assert row is not None
        pending = self._database_rows() if self.has_inbox() and not self.postgres else 0
        return StoreStatus(
            path=self.path, backend="postgresql" if self.postgres else "duckdb", events=int(row[0]),
            engine_events=int(row[1]), unresolved=int(row[2]), pending=pending, accounts=int(row[3]),
            first=row[4], last=row[5], files=self.files(),
        )


# ---------------------------------------------------------------------------------------------- appending


def lock_appends(connection: Any, *, postgres: bool) -> None:
    """Serialise writers on PostgreSQL (a transaction-scoped advisory lock), so ids commit in order and a
    reader that copies "rows after id N" never skips one still being written. SQLite has one writer anyway."""
    if postgres:
        from sqlalchemy import text

        connection.execute(text("SELECT pg_advisory_xact_lock(4711042)"))


def _memory() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar = false")
    return con


_LOCKED = re.compile(r"lock|already attached|conflict", re.IGNORECASE)


def _retry_locked(action: Callable[[], Any], path: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Any:
    """``action``, retried while another process holds the DuckDB file (DuckDB allows one writer process)."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            return action()
        except duckdb.IOException as error:
            if not _LOCKED.search(str(error)) or time.monotonic() > deadline:
                holder = re.search(r"PID (\d+)", str(error))
                raise OutreachError(
                    f"the event store {path} is busy"
                    + (f" (process {holder.group(1)} holds it)" if holder else f": {error}"),
                    hint="another outreach command is using it; try again when it has finished",
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _temp_table(con: duckdb.DuckDBPyConnection, name: str, arrow_rows: pa.Table, columns: str = "*") -> None:
    """A temporary table from Arrow rows (DuckDB finds ``arrow_rows`` by its Python name; ``register`` would
    refuse while a streamed result is open on the connection)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {columns} FROM arrow_rows")


def _arrow_rows(rows: Sequence[Any]) -> pa.Table:
    """Database rows (id, dedup_key, …, received_at) as the store file's Arrow columns."""
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    columns["ord"] = list(range(len(rows)))
    for row in rows:
        for name, value in zip(_COLUMNS, row, strict=True):
            if name == "props":
                value = orjson.dumps(value if value is not None else {}).decode()
            elif isinstance(value, datetime):
                value = naive_utc(value)
            columns[name].append(value)
    return pa.table(columns, schema=_ARROW)


def _digests(path: Path, prefix: int | None) -> tuple[str, str | None, int, int]:
    """SHA-256 of the file and of its first ``prefix`` bytes; the lines in those bytes and in the whole file."""
    whole = hashlib.sha256()
    head: str | None = None
    head_lines = lines = read = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            if prefix is not None and head is None and read + len(chunk) >= prefix:
                cut = prefix - read
                whole.update(chunk[:cut])
                head_lines = lines + chunk[:cut].count(b"\n")
                head = whole.hexdigest()
                whole.update(chunk[cut:])
            else:
                whole.update(chunk)
            lines += chunk.count(b"\n")
            read += len(chunk)
    if prefix is not None and head is None and read == prefix:
        head, head_lines = whole.hexdigest(), lines
    return whole.hexdigest(), head, head_lines, lines

