"""A data set narrowed to a few accounts' events, for re-deciding just those accounts in milliseconds.

``decide(dataset, account_ids=…)`` already decides a subset, but the trigger queries still aggregate every event
before joining the analysed accounts: at 10M events that is seconds per call, whatever the subset. The intake's
reactor re-decides the handful of accounts a request touched, so it decides them on :func:`focused`, a data set
whose ``event_rows`` hold only those accounts' events - plus every ``Integration Requested`` event, the one
input that reaches across accounts (the integrations anyone asked for are what ticket text is searched for).
Accounts and tickets are shared as they are. Rows keep their order and evidence ids, so ties break the same way
and the decisions are the ones the whole data set gives (tests/engine/test_focus.py pins the two together).
"""

from __future__ import annotations

import duckdb

from outreach.engine.data import Dataset
from outreach.engine.tables import TEXT, create_table


def focused(dataset: Dataset, account_ids: set[str], integration_event: str) -> Dataset:
    """``dataset`` with only ``account_ids``' events (and every ``integration_event``), in a fresh connection."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar = false")
    source = dataset.events.cursor()
    try:
        create_table(source, "focus_accounts", {"account_id": TEXT}, [(a,) for a in sorted(account_ids)])
        # the evidence id the data set's view computes (events without messageId are FILE#LINE), in row order
        rows = source.sql(
            "SELECT message_id, event, user_id, ts, account_id, props FROM events "
            "WHERE account_id IN (SELECT account_id FROM focus_accounts) OR event = $event ORDER BY line",
            params={"event": integration_event},
        ).to_arrow_table()
        accounts = source.sql("SELECT * FROM account_rows").to_arrow_table()
        tickets = source.sql("SELECT * EXCLUDE (seq) FROM ticket_rows ORDER BY seq").to_arrow_table()
    finally:
        source.close()
    _table(con, "event_rows", rows)
    _table(con, "account_rows", accounts)
    _table(con, "ticket_table", tickets)
    con.execute("CREATE VIEW ticket_rows AS SELECT rowid AS seq, * FROM ticket_table")
    con.execute(
        "CREATE VIEW events AS SELECT rowid + 1 AS line, message_id, event, user_id, ts, account_id, props "
        "FROM event_rows"
    )
    return Dataset(
        root=dataset.root,
        catalog=dataset.catalog,
        events=con,
        events_file=dataset.events_file,
        event_count=rows.num_rows,
        accounts=lambda: dataset.accounts,
        tickets=lambda _ids: dataset.tickets,
    )


def _table(con: duckdb.DuckDBPyConnection, name: str, arrow_rows: object) -> None:
    """A table from Arrow rows, JSON columns typed again (Arrow carries them as text)."""
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM arrow_rows")
    if name == "event_rows":
        con.execute("ALTER TABLE event_rows ALTER props TYPE JSON")
