"""create_table hands a small table to DuckDB as list parameters and a big one as Arrow (docs/BENCHMARKS.md,
"Start-up"): both must give the same table, whatever the values."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.engine import tables
from outreach.engine.tables import BOOL, DATE, FLOAT, INT, TEXT, TEXTS, TIME, create_table

COLUMNS = {"name": TEXT, "count": INT, "price": FLOAT, "on": BOOL, "day": DATE, "tags": TEXTS, "at": TIME}

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1))
aware = st.builds(lambda moment, hours: moment.replace(tzinfo=timezone(timedelta(hours=hours))), moments,
                  st.integers(-12, 12))
rows = st.lists(
    st.tuples(
        st.none() | texts,
        st.none() | st.integers(-(2**63), 2**63 - 1),
        st.none() | st.floats(allow_nan=False) | st.integers(-(10**6), 10**6),
        st.none() | st.booleans(),
        st.none() | st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
        st.none() | st.lists(st.none() | texts, max_size=3) | st.tuples(texts, texts),
        st.none() | moments | aware,
    ),
    max_size=12,
)


def _table(con: duckdb.DuckDBPyConnection, name: str) -> tuple[list[tuple[object, ...]], list[str]]:
    types = [row[1] for row in con.execute(f"DESCRIBE {name}").fetchall()]
    return con.execute(f"SELECT * FROM {name}").fetchall(), types


@settings(max_examples=60)
@given(rows)
def test_lists_and_arrow_give_the_same_table(values: list[tuple[object, ...]]) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    create_table(con, "small", COLUMNS, values)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tables, "SMALL_TABLE_ROWS", -1)
        create_table(con, "big", COLUMNS, values)
    assert _table(con, "small") == _table(con, "big")
    assert _table(con, "small")[1] == ["VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN", "DATE", "VARCHAR[]", "TIMESTAMP"]


def test_an_aware_timestamp_is_kept_as_naive_utc() -> None:
    con = duckdb.connect()
    moment = datetime(2026, 11, 20, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    create_table(con, "t", {"stamp": TIME}, [(moment,)])
    assert con.execute("SELECT stamp FROM t").fetchall() == [(moment.astimezone(UTC).replace(tzinfo=None),)]


def test_rows_keep_their_order_past_the_small_table_size() -> None:
    con = duckdb.connect()
    count = tables.SMALL_TABLE_ROWS + 5
    create_table(con, "t", {"n": INT}, [(n,) for n in range(count)])
    assert [n for (n,) in con.execute("SELECT n FROM t").fetchall()] == list(range(count))


def test_drop_temporary_drops_a_view_or_a_table_of_that_name() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE kept AS SELECT 1 AS x")  # not temporary: left alone
    tables.drop_temporary(con, "kept")
    tables.drop_temporary(con, "nothing")
    con.execute("CREATE TEMP VIEW dim AS SELECT 1 AS x")
    tables.drop_temporary(con, "dim")
    con.execute("CREATE TEMP TABLE dim AS SELECT 2 AS x")  # a view was there: DROP TABLE IF EXISTS would refuse
    tables.drop_temporary(con, "dim")
    temporary = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()
    views = con.execute("SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = 'dim'").fetchone()
    assert temporary == (0,) and views == (0,)
    assert con.execute("SELECT x FROM kept").fetchall() == [(1,)]
