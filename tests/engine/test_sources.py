"""SQL sources: accounts and events read from PostgreSQL tables give the demo's decisions, byte for byte; errors
name the source and row; secrets come from the environment."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from outreach import bundled, db
from outreach.engine.data import load_dataset
from outreach.engine.decisions import explain_json, rules_for
from outreach.errors import ConfigError, DataError
from tests.datadir import AS_OF
from tests.review_world import postgres_url_or_skip, reset_postgres

ACCOUNTS_TABLE = """
CREATE TABLE crm_accounts (
    account_id text PRIMARY KEY, name text NOT NULL, plan text NOT NULL, domain text, seats_purchased integer,
    mrr numeric(12, 2), currency text, contract_start date, renewal_date date, activated_at date,
    employees_at_contract integer, employees_now integer, owner_email text, champion_name text, champion_email text,
    champion_user_id text, timezone text, nps integer, cs_veto boolean, cs_veto_reason text, addons text,
    last_contacted_at date, position integer NOT NULL)
"""
EVENTS_TABLE = """
CREATE TABLE tracks (
    seq bigserial PRIMARY KEY, message_id text, event text NOT NULL, user_id text, sent_at timestamptz NOT NULL,
    group_id text NOT NULL, properties jsonb NOT NULL)
"""
SOURCES = """
accounts:
  url: ${WAREHOUSE_URL}
  query: SELECT * EXCLUDE_POSITION FROM crm_accounts ORDER BY position
events:
  url: ${WAREHOUSE_URL}
  batch_rows: 1000   # several batches: the demo has ~8,000 events
  query: >
    SELECT message_id AS "messageId", event, user_id AS "userId", sent_at AS "timestamp", group_id AS "groupId",
           properties FROM tracks ORDER BY seq
"""
ACCOUNT_COLUMNS = ("account_id, name, plan, domain, seats_purchased, mrr, currency, contract_start, renewal_date, "
                   "activated_at, employees_at_contract, employees_now, owner_email, champion_name, champion_email, "
                   "champion_user_id, timezone, nps, cs_veto, cs_veto_reason, addons, last_contacted_at")


@pytest.fixture
def warehouse(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test PostgreSQL database holding the demo's accounts and events as typed tables."""
    url = postgres_url_or_skip()
    reset_postgres(url)
    engine = create_engine(db.normalize_url(url))
    demo = bundled.DEMO_DATA
    with engine.begin() as connection:
        connection.execute(text(ACCOUNTS_TABLE))
        connection.execute(text(EVENTS_TABLE))
        with (demo / "accounts.csv").open(newline="") as handle:
            for position, row in enumerate(csv.DictReader(handle)):
                values = {key: (value if value != "" else None) for key, value in row.items()}
                connection.execute(text(
                    f"INSERT INTO crm_accounts ({ACCOUNT_COLUMNS}, position) VALUES "
                    "(:account_id, :name, :plan, :domain, :seats_purchased, :mrr, :currency, :contract_start, "
                    ":renewal_date, :activated_at, :employees_at_contract, :employees_now, :owner_email, "
                    ":champion_name, :champion_email, :champion_user_id, :timezone, :nps, :cs_veto, "
                    ":cs_veto_reason, :addons, :last_contacted_at, :position)"),
                    {**values, "position": position, "seats_purchased": _int(values["seats_purchased"]),
                     "employees_at_contract": _int(values["employees_at_contract"]),
                     "employees_now": _int(values["employees_now"]), "nps": _int(values["nps"]),
                     "cs_veto": values["cs_veto"] == "true"})
        events = [json.loads(line) for line in (demo / "events.jsonl").read_text().splitlines() if line.strip()]
        connection.execute(text(
            "INSERT INTO tracks (message_id, event, user_id, sent_at, group_id, properties) "
            "VALUES (:m, :e, :u, CAST(:t AS timestamptz), :g, CAST(:p AS jsonb))"),
            [{"m": e.get("messageId"), "e": e["event"], "u": e.get("userId") or e.get("anonymousId"),
              "t": e["timestamp"], "g": e["context"]["groupId"], "p": json.dumps(e.get("properties") or {})}
             for e in events])
    engine.dispose()
    monkeypatch.setenv("WAREHOUSE_URL", url)
    yield url
    reset_postgres(url)


def _int(value: str | None) -> int | None:
    return int(value) if value is not None else None


def _sql_data_dir(tmp_path: Path) -> Path:
    """The demo data directory with accounts and events read from the warehouse, tickets and catalog from files."""
    root = tmp_path / "sql-demo"
    root.mkdir()
    for name in ("catalog.yaml", "tickets.jsonl"):
        shutil.copy(bundled.DEMO_DATA / name, root / name)
    (root / "sources.yaml").write_text(
        SOURCES.replace("SELECT * EXCLUDE_POSITION FROM crm_accounts", f"SELECT {ACCOUNT_COLUMNS} FROM crm_accounts"))
    return root


def _explain(root: Path) -> bytes:
    dataset = load_dataset(root)
    return explain_json(dataset, rules_for(dataset), AS_OF)


def test_accounts_and_events_from_postgresql_give_the_demo_decisions(warehouse: str, tmp_path: Path) -> None:
    root = _sql_data_dir(tmp_path)
    assert _explain(root) == _explain(bundled.DEMO_DATA)
    dataset = load_dataset(root)
    assert dataset.event_count == 7918 and len(dataset.accounts) == 40


def test_a_bad_row_names_the_source_and_row(warehouse: str, tmp_path: Path) -> None:
    engine = create_engine(db.normalize_url(warehouse))
    with engine.begin() as connection:
        connection.execute(text("UPDATE crm_accounts SET plan = 'gold' WHERE position = 2"))
    engine.dispose()
    with pytest.raises(DataError) as caught:
        load_dataset(_sql_data_dir(tmp_path))
    assert caught.value.message.startswith(
        f"{tmp_path / 'sql-demo' / 'sources.yaml'}[accounts]:3: field 'plan': unknown plan id 'gold'")
    assert caught.value.message.endswith("(row 3 of the query)")


def test_a_failing_query_says_which_source(warehouse: str, tmp_path: Path) -> None:
    root = _sql_data_dir(tmp_path)
    (root / "sources.yaml").write_text(SOURCES.replace("FROM tracks", "FROM no_such_table"))
    with pytest.raises(DataError) as caught:
        load_dataset(root)
    assert caught.value.message.startswith(f"{root / 'sources.yaml'}[accounts]: the query failed") or \
        caught.value.message.startswith(f"{root / 'sources.yaml'}[events]: the query failed")


def test_sources_file_is_checked_before_any_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    shutil.copytree(bundled.DEMO_DATA, root)
    monkeypatch.delenv("WAREHOUSE_URL", raising=False)
    (root / "sources.yaml").write_text(SOURCES)
    with pytest.raises(DataError, match=r"sources.yaml:3: environment variable WAREHOUSE_URL is not set"):
        load_dataset(root)
    (root / "sources.yaml").write_text("accounts:\n  url: sqlite://\n  query: SELECT 1\n  qeury: SELECT 1\n")
    with pytest.raises(DataError, match=r"sources.yaml:4: field .accounts.qeury.: unknown field"):
        load_dataset(root)
    (root / "sources.yaml").write_text("events:\n  url: nosuchdialect://x\n  query: SELECT 1\n")
    with pytest.raises(ConfigError, match="no SQLAlchemy dialect"):
        load_dataset(root)


def test_sqlite_source_streams_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any SQLAlchemy URL works the same way; here a SQLite file holds the demo's events."""
    root = tmp_path / "data"
    shutil.copytree(bundled.DEMO_DATA, root)
    events = [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines() if line.strip()]
    warehouse = tmp_path / "warehouse.db"
    engine = create_engine(f"sqlite:///{warehouse}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE tracks (seq INTEGER PRIMARY KEY, message_id TEXT, event TEXT, "
                                "user_id TEXT, ts TEXT, group_id TEXT, properties TEXT)"))
        connection.execute(text("INSERT INTO tracks (message_id, event, user_id, ts, group_id, properties) "
                                "VALUES (:m, :e, :u, :t, :g, :p)"),
                           [{"m": e.get("messageId"), "e": e["event"], "u": e.get("userId"), "t": e["timestamp"],
                             "g": e["context"]["groupId"], "p": json.dumps(e.get("properties") or {})}
                            for e in events])
    engine.dispose()
    (root / "events.jsonl").unlink()
    monkeypatch.setenv("EVENTS_URL", f"sqlite:///{warehouse}")
    (root / "sources.yaml").write_text(
        "events:\n  url: ${EVENTS_URL}\n  batch_rows: 500\n  query: >\n"
        '    SELECT message_id AS "messageId", event, user_id AS "userId", ts AS "timestamp", '
        'group_id AS "groupId", properties FROM tracks ORDER BY seq\n')
    assert _explain(root) == _explain(bundled.DEMO_DATA)
