"""SQL sources: any input of a data directory can be a query on a SQLAlchemy URL instead of a file.

A data directory with ``sources.yaml`` reads the inputs it names from a database - the warehouse the team's
Segment or RudderStack already loads, the CRM's replica - and the rest from its files as usual::

    accounts:
      url: ${WAREHOUSE_URL}          # ${VAR} comes from the environment: secrets never sit in the file
      query: SELECT account_id, name, plan, seats_purchased, ... FROM crm.accounts ORDER BY account_id
    events:
      url: ${WAREHOUSE_URL}
      query: >
        SELECT id AS "messageId", event, user_id AS "userId", timestamp, context_group_id AS "groupId",
               properties FROM segment.tracks ORDER BY timestamp, id

Rows stream out of the database in batches (``stream_results``: a server-side cursor on PostgreSQL), each batch
becomes an Arrow table appended to a disk-backed DuckDB table, so memory stays bounded whatever the table size;
DuckDB then writes the file the data directory would have held (accounts.csv, events.parquet, tickets.jsonl) and
the usual loader reads it: the same column contract (docs/data-formats.md), the same checks, and errors that
name the source and row, e.g. ``sources.yaml[accounts]:17: field 'plan': unknown plan id 'gold'`` (row 17 of the
query). Any SQLAlchemy dialect works: ``postgresql://`` (tested), ``snowflake://`` (snowflake-sqlalchemy),
``bigquery://`` (sqlalchemy-bigquery), ``redshift+psycopg2://`` (sqlalchemy-redshift) - docs/integrations.md.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import orjson
from pydantic import BaseModel, ConfigDict, Field

from outreach.errors import ConfigError, DataError
from outreach.yamlfile import parse_yaml, validate_yaml

if TYPE_CHECKING:  # imported where a query's rows are handed over: a data directory without sources.yaml
    import pyarrow as pa  # never pays for it

SOURCES_FILE = "sources.yaml"
Input = Literal["accounts", "events", "tickets"]
# The file each input becomes, and how its rows are numbered in that file (a CSV header is line 1).
OUTPUT: dict[str, tuple[str, int]] = {"accounts": ("accounts.csv", 1), "events": ("events.parquet", 0),
                                      "tickets": ("tickets.jsonl", 0)}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="SQLAlchemy URL; ${VAR} is read from the environment.")
    query: str = Field(description="The query; its columns are the input's columns (docs/data-formats.md).")
    batch_rows: int = Field(default=10_000, ge=100, le=1_000_000, description="Rows fetched per batch.")


class Sources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: Source | None = None
    events: Source | None = None
    tickets: Source | None = None


def read_sources(path: Path) -> Sources:
    """sources.yaml, checked, with ``${VAR}`` filled from the environment (a missing one names its line)."""
    text = path.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        for name in _VARIABLE.findall(line):
            if name not in os.environ:
                raise DataError(path, f"environment variable {name} is not set", line=number,
                                hint=f"export {name}=… (URLs with passwords belong in the environment)")
    parse_yaml(text, path)  # syntax errors with their line before the variables are filled
    filled = _VARIABLE.sub(lambda m: os.environ[m.group(1)].replace("\\", "\\\\").replace('"', '\\"'), text)
    return validate_yaml(Sources, filled, path)


def has_sources(root: Path) -> bool:
    return (root / SOURCES_FILE).is_file()


@dataclass
class Materialized:
    """Where each input was written for the loader, and how to name the source in its errors."""

    root: Path
    folder: Path
    paths: dict[str, Path] = field(default_factory=dict)

    def path(self, name: str, default: Path) -> Path:
        return self.paths.get(name, default)

    def translate(self, error: DataError) -> DataError:
        """An error about a written file, said about the query and row it came from."""
        for name, path in self.paths.items():
            if error.path == path:
                first = OUTPUT[name][1]
                row = error.line - first if error.line is not None else None
                where = f" (row {row} of the query)" if row is not None else ""
                return DataError(f"{self.root / SOURCES_FILE}[{name}]", error.problem + where, line=row,
                                 field=error.field, hint=error.hint)
        return error


def _value(value: Any) -> Any:
    """A database value as the file formats write it: UTC ISO timestamps, numbers, JSON text for objects."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value
        return value.replace(tzinfo=None).isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return value


def _batch(keys: Sequence[str], rows: Sequence[Any], name: str) -> pa.Table:
    import pyarrow as pa

    columns: dict[str, list[Any]] = {key: [] for key in keys}
    for row in rows:
        for key, value in zip(keys, row, strict=True):
            if isinstance(value, list | tuple):
                # accounts keep add-ons as "a;b"; tickets and events keep lists as JSON arrays
                value = ";".join(str(v) for v in value) if name == "accounts" else orjson.dumps(list(value)).decode()
            columns[key].append(_value(value))
    arrays = {}
    for key, values in columns.items():
        try:
            arrays[key] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in one column: keep them as text
            arrays[key] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(arrays)


def _engine(url: str, path: Path, name: str) -> Any:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from outreach.db import normalize_url

    try:
        return create_engine(normalize_url(url))
    except NoSuchModuleError as error:
        raise ConfigError(f"{path}: {name}: no SQLAlchemy dialect for this URL ({error})",
                          hint="install the dialect: snowflake-sqlalchemy, sqlalchemy-bigquery or "
                          "sqlalchemy-redshift (docs/integrations.md)") from None
    except (ArgumentError, ValueError) as error:
        raise ConfigError(f"{path}: {name}: '{_redacted(url)}' is not a database URL ({error})") from None


def _redacted(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _stream(source: Source, name: str, path: Path, con: duckdb.DuckDBPyConnection) -> int:
    """Run the query and append its rows, batch by batch, to the DuckDB table ``name``; the row count."""
    import pyarrow as pa
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    engine = _engine(source.url, path, name)
    count = 0
    try:
        with engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=source.batch_rows).execute(
                text(source.query))
            keys = list(result.keys())
            for rows in result.partitions(source.batch_rows):
                _append(con, name, _batch(keys, rows, name), first=count == 0)
                count += len(rows)
            if count == 0:
                _append(con, name, pa.table({key: pa.array([], pa.string()) for key in keys}), first=True)
    except SQLAlchemyError as error:
        message = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise DataError(f"{path}[{name}]", f"the query failed: {message}",
                        hint=f"check the {name} query and URL ({_redacted(source.url)})") from None
    except duckdb.Error as error:
        raise DataError(f"{path}[{name}]", f"a batch of rows could not be stored: {error}",
                        hint="give each column one type (cast in the query)") from None
    finally:
        engine.dispose()
    return count


def _append(con: duckdb.DuckDBPyConnection, name: str, arrow_rows: pa.Table, *, first: bool) -> None:
    """Add one Arrow batch to the table ``name`` (DuckDB reads ``arrow_rows`` by its Python name)."""
    if first:
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM arrow_rows")
    else:
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM arrow_rows")


def _write(con: duckdb.DuckDBPyConnection, name: str, target: Path) -> None:
    quoted = "'" + str(target).replace("'", "''") + "'"
    if name == "accounts":
        con.execute(f"COPY {name} TO {quoted} (FORMAT csv, HEADER true)")
    elif name == "events":
        con.execute(f"COPY {name} TO {quoted} (FORMAT parquet)")
    else:
        # JSON text columns (tags, properties) go out as JSON values, not as strings holding JSON
        columns = [str(row[0]) for row in con.execute(f"DESCRIBE {name}").fetchall()]
        select = ", ".join(f"TRY_CAST(\"{c}\" AS JSON) AS \"{c}\"" if c == "tags" else f'"{c}"' for c in columns)
        con.execute(f"COPY (SELECT {select} FROM {name}) TO {quoted} (FORMAT json)")


@contextmanager
def materialized(root: Path) -> Iterator[Materialized]:
    """Run the data directory's queries into files the loader reads (in a temporary folder, removed after)."""
    path = root / SOURCES_FILE
    sources = read_sources(path)
    with tempfile.TemporaryDirectory(prefix="outreach-sources-") as folder:
        result = Materialized(root, Path(folder))
        con = duckdb.connect(str(Path(folder) / "sources.duckdb"))  # disk-backed: bounded memory
        try:
            con.execute("SET TimeZone='UTC'")
            con.execute("SET memory_limit='1GB'")
            for name in ("accounts", "events", "tickets"):
                source: Source | None = getattr(sources, name)
                if source is None:
                    continue
                _stream(source, name, path, con)
                target = Path(folder) / OUTPUT[name][0]
                _write(con, name, target)
                con.execute(f"DROP TABLE {name}")
                result.paths[name] = target
        finally:
            con.close()
        yield result
