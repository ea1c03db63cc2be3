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


class Focus:
    """Narrowed views of one data set. Its accounts and tickets are copied once; each call replaces the events."""

    def __init__(self, dataset: Dataset, integration_event: str) -> None:
        self.dataset = dataset
        self.integration_event = integration_event
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone='UTC'")
        self.con.execute("SET enable_progress_bar = false")
        source = dataset.events.cursor()
        try:
            accounts = source.sql("SELECT * FROM account_rows ORDER BY ord").to_arrow_table()
            tickets = source.sql("SELECT * EXCLUDE (seq) FROM ticket_rows ORDER BY seq").to_arrow_table()
        finally:
            source.close()
        _table(self.con, "account_rows", accounts)
        _table(self.con, "ticket_table", tickets)
        self.con.execute("CREATE VIEW ticket_rows AS SELECT rowid AS seq, * FROM ticket_table")

    def __call__(self, account_ids: set[str]) -> Dataset:
        """The data set with only ``account_ids``' events (and every integration request)."""
        source = self.dataset.events.cursor()
        try:
            create_table(source, "focus_accounts", {"account_id": TEXT}, [(a,) for a in sorted(account_ids)])
            # the evidence id the data set's view computes (events without messageId are FILE#LINE), in row order
            rows = source.sql(
                "SELECT message_id, event, user_id, ts, account_id, props FROM events "
                "WHERE account_id IN (SELECT account_id FROM focus_accounts) OR event = $event ORDER BY line",
                params={"event": self.integration_event},
            ).to_arrow_table()
        finally:
            source.close()
        self.con.execute("DROP VIEW IF EXISTS events")
        self.con.execute("DROP TABLE IF EXISTS event_rows")
        _table(self.con, "event_rows", rows)
        self.con.execute(
            "CREATE VIEW events AS SELECT rowid + 1 AS line, message_id, event, user_id, ts, account_id, props "
            "FROM event_rows"
        )
        parent = self.dataset
        narrowed = Dataset(
            root=parent.root, catalog=parent.catalog, events=self.con, events_file=parent.events_file,
            event_count=rows.num_rows, accounts=lambda: parent.accounts, tickets=lambda _ids: parent.tickets,
        )
        narrowed.file_last_line = 0  # renumbered rows: no line here is the file's (the whole set was checked)
        return narrowed

    def close(self) -> None:
        self.con.close()


def focused(dataset: Dataset, account_ids: set[str], integration_event: str) -> Dataset:
    """``dataset`` with only ``account_ids``' events (and every ``integration_event``), in a fresh connection."""
    return Focus(dataset, integration_event)(account_ids)


def _table(con: duckdb.DuckDBPyConnection, name: str, arrow_rows: object) -> None:
    """A table from Arrow rows, JSON columns typed again (Arrow carries them as text)."""
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM arrow_rows")
    if name == "event_rows":
        con.execute("ALTER TABLE event_rows ALTER props TYPE JSON")
