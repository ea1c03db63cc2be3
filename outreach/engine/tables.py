"""The engine's working tables in DuckDB, and the few helpers every stage uses to build its SQL.

Each stage reads the temporary tables of the stages before it on the dataset's DuckDB connection
(``account_dim``, ``signal_rows``, …; docs/engine.md lists them). Python hands DuckDB the tables it
prepares with :func:`create_table` and writes literals with these helpers, so values from rules and the catalog
are always quoted and typed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    import pyarrow as pa


@contextmanager
def engine_session(events: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private connection to the dataset's database for one engine run.

    Temporary tables belong to the connection that made them, so two runs at once (the web app re-checks
    gates from several request threads on one loaded dataset) never see each other's working tables; the
    events themselves are shared.
    """
    con = events.cursor()
    try:
        con.execute("SET TimeZone='UTC'")
        yield con
    finally:
        con.close()


# Column types, as DuckDB names them.
TEXT = "VARCHAR"
INT = "BIGINT"
FLOAT = "DOUBLE"
BOOL = "BOOLEAN"
DATE = "DATE"
TEXTS = "VARCHAR[]"
TIME = "TIMESTAMP"  # naive UTC, as the engine keeps every timestamp
UTC_TIME = "TIMESTAMPTZ"

# Up to this many rows a table goes to DuckDB as one list per column; more go as Arrow, which is faster for
# big tables but costs 50-80 ms to import: more than a demo's whole decide (docs/BENCHMARKS.md, "Start-up").
SMALL_TABLE_ROWS = 1000


def create_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    columns: Mapping[str, str],
    rows: Iterable[Sequence[object]],
    *,
    temporary: bool = True,
) -> None:
    """(Re)create the table ``name`` (temporary: private to ``con``, unless ``temporary`` is False) with typed
    ``columns`` (:data:`TEXT`, :data:`INT`, …) from Python rows, in their order: a small table as one list
    parameter per column, a big one as Arrow (the cheap way to give DuckDB many rows)."""
    values = list(zip(*rows, strict=True)) or [()] * len(columns)
    table = "TEMP TABLE" if temporary else "TABLE"
    if len(values[0]) > SMALL_TABLE_ROWS:
        _create_from_arrow(con, name, _arrow_table(columns, values), table)
        return
    unnested = ", ".join(f"unnest(?::{kind}[]) AS {_identifier(column)}" for column, kind in columns.items())
    con.execute(
        f"CREATE OR REPLACE {table} {name} AS SELECT {unnested}",
        [_column_values(kind, data) for kind, data in zip(columns.values(), values, strict=True)],
    )


def drop_temporary(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop the temporary table or view ``name`` of ``con``, whichever it is (DuckDB's ``DROP VIEW IF EXISTS``
    refuses a table of that name, and the reverse), or nothing when there is none."""
    row = con.execute(
        "SELECT (SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = $name), "
        "(SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = $name)",
        {"name": name},
    ).fetchone()
    if row and row[0]:
        con.execute(f"DROP VIEW temp.{_identifier(name)}")
    if row and row[1]:
        con.execute(f"DROP TABLE temp.{_identifier(name)}")


def _identifier(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _column_values(kind: str, data: Sequence[object]) -> list[object]:
    """A column as DuckDB reads a list parameter the way Arrow would hand it over: inner sequences (add-on tuples)
    as lists, aware timestamps as naive UTC."""
    if kind.endswith("[]"):
        return [None if value is None else list(value) for value in data]  # type: ignore[call-overload]
    if kind == TIME:
        return [
            value.astimezone(UTC).replace(tzinfo=None)
            if isinstance(value, datetime) and value.tzinfo is not None
            else value
            for value in data
        ]
    return list(data)


def _arrow_table(columns: Mapping[str, str], values: Sequence[Sequence[object]]) -> pa.Table:
    import pyarrow as pa

    types = {TEXT: pa.string(), INT: pa.int64(), FLOAT: pa.float64(), BOOL: pa.bool_(), DATE: pa.date32(),
             TEXTS: pa.list_(pa.string()), TIME: pa.timestamp("us"), UTC_TIME: pa.timestamp("us", tz="UTC")}  # fmt: skip
    return pa.table(
        {
            column: pa.array(list(data), types[kind])
            for (column, kind), data in zip(columns.items(), values, strict=True)
        }
    )


def _create_from_arrow(con: duckdb.DuckDBPyConnection, name: str, arrow_rows: pa.Table, kind: str) -> None:
    # DuckDB finds ``arrow_rows`` by its Python name (a replacement scan); ``register`` would refuse while an
    # earlier ``fetchone()`` on the connection left a result open.
    con.execute(f"CREATE OR REPLACE {kind} {name} AS SELECT * FROM arrow_rows")


def sql_text(value: str) -> str:
    """A quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def sql_texts(values: Iterable[object]) -> str:
    """A ``VARCHAR[]`` literal (empty lists typed too)."""
    return "[" + ", ".join(sql_text(str(v)) for v in values) + "]::VARCHAR[]"


def sql_float(value: float) -> str:
    """A DOUBLE literal holding exactly ``value`` (a bare ``0.8`` would be a DECIMAL in DuckDB)."""
    return f"{float(value)!r}::DOUBLE"


def sql_ordered_list(value: str, key: str) -> str:
    """``list(value ORDER BY key)`` for a ``key`` unique within each group, as an unordered ``list`` sorted
    afterwards: DuckDB buffers and sorts every group of an ordered aggregate (at a million accounts the
    frictions' lists cost twice as much that way)."""
    return f"list_transform(list_sort(list({{'k': {key}, 'v': {value}}})), lambda x: x.v)"

