"""The engine's working tables in DuckDB, and the few helpers every stage uses to build its SQL.

Each stage reads the temporary tables of the stages before it on the dataset's DuckDB connection
(``account_dim``, ``signal_rows``, …; docs/engine.md lists them). Python hands DuckDB small tables as Arrow
and writes literals with these helpers, so values from rules and the catalog are always quoted and typed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import duckdb
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


TEXT = pa.string()
INT = pa.int64()
FLOAT = pa.float64()
BOOL = pa.bool_()
DATE = pa.date32()
TEXTS = pa.list_(pa.string())
TIME = pa.timestamp("us")  # naive UTC, as the engine keeps every timestamp
UTC_TIME = pa.timestamp("us", tz="UTC")


def create_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    columns: Mapping[str, pa.DataType],
    rows: Iterable[Sequence[object]],
    *,
    temporary: bool = True,
) -> None:
    """(Re)create the table ``name`` (temporary: private to ``con``, unless ``temporary`` is False) with typed
    ``columns`` from Python rows, handed to DuckDB as Arrow: the cheap way to give it many rows."""
    values = list(zip(*rows, strict=True)) or [()] * len(columns)
    _create_from_arrow(
        con,
        name,
        pa.table(
            {
                column: pa.array(list(data), kind)
                for (column, kind), data in zip(columns.items(), values, strict=True)
            }
        ),
        "TEMP TABLE" if temporary else "TABLE",
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

