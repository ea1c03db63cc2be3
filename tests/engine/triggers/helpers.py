"""What every trigger's tests share: the signals a written data directory fires, and a friction worded from figures."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import orjson

from outreach import bundled
from outreach.engine.catalog import load_catalog
from outreach.engine.data import Ticket, load_dataset
from outreach.engine.decisions import rules_for
from outreach.engine.friction import FrictionRecord, frictions
from outreach.engine.rules import Rules, load_rules
from outreach.engine.tables import engine_session
from outreach.engine.triggers.detection import Signal, detect_signals, prepare_triggers
from outreach.engine.triggers.registry import builtin
from outreach.engine.triggers.spec import Figure
from tests.datadir import AS_OF, DataDir

CATALOG = load_catalog(bundled.DEMO_DATA / "catalog.yaml")

# (kind, subject, figures, window_days, statement, strength): a signal and what the friction stage says of it.
StatementCase = tuple[str, str | None, dict[str, Figure], int | None, str, float]


def signals_of(data: DataDir, tmp_path: Path, account_id: str = "acme") -> list[Signal]:
    dataset = load_dataset(data.write(tmp_path / "data"))
    return detect_signals(dataset, rules_for(dataset), AS_OF)[account_id].signals


def kinds(signals: list[Signal]) -> list[str]:
    return sorted(s.kind for s in signals)


def motion_of(kind: str) -> str:
    spec = builtin(kind)
    assert spec is not None, kind
    return spec.motion


def signal_table(
    rows: list[tuple[str, str, str | None, dict[str, Figure], int | None]],
) -> duckdb.DuckDBPyConnection:
    """A connection holding ``signal_rows`` as detection leaves it (``ord`` per account)."""
    con = duckdb.connect()
    con.execute(
        "CREATE TEMP TABLE signal_rows (ord BIGINT, account_id VARCHAR, kind VARCHAR, motion VARCHAR, "
        "subject VARCHAR, figures JSON, evidence VARCHAR[], window_days INTEGER)"
    )
    order: dict[str, int] = {}
    for account_id, kind, subject, figures, window_days in rows:
        con.execute(
            "INSERT INTO signal_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                order.setdefault(account_id, len(order)),
                account_id,
                kind,
                motion_of(kind),
                subject,
                orjson.dumps(figures).decode(),
                ["e1"],
                window_days,
            ],
        )
    return con


def worded(
    kind: str, subject: str | None, figures: dict[str, Figure], window_days: int | None, rules: Rules | None = None
) -> FrictionRecord:
    """The friction the friction stage makes of one signal."""
    con = signal_table([("acme", kind, subject, figures, window_days)])
    [friction] = frictions(con, CATALOG, rules or load_rules())["acme"]
    return friction


def check_statement(case: StatementCase) -> None:
    kind, subject, figures, window_days, statement, strength = case
    friction = worded(kind, subject, figures, window_days)
    assert friction["statement"] == statement
    assert friction["strength"] == strength
    assert friction["figures"] == figures and friction["kind"] == kind and friction["subject"] == subject
    assert friction["motion"] == motion_of(kind) and friction["evidence"] == ["e1"]


def ticket_tables(data: DataDir, tmp_path: Path) -> tuple[list[Ticket], dict[str, set[str]], list[tuple[str, ...]]]:
    """The tickets of the topic window, the topics DuckDB and Python gave them, and the integration asks."""
    dataset = load_dataset(data.write(tmp_path / "data"))
    rules = rules_for(dataset)
    with engine_session(dataset.events) as con:
        prepare_triggers(con, dataset, rules, AS_OF)  # detect drops the prepared tables once it has read them
        topics: dict[str, set[str]] = {}
        for ticket_id, topic in con.execute("SELECT ticket_id, topic FROM ticket_topic").fetchall():
            topics.setdefault(ticket_id, set()).add(topic)
        mentions = con.execute(
            "SELECT account_id, integration, ticket_id FROM ticket_mention ORDER BY seq"
        ).fetchall()
    window = getattr(rules.triggers, "ticket_topic_cluster").window_days  # noqa: B009 - kind as data
    recent = [t for t in dataset.tickets if AS_OF - timedelta(days=window) <= t.created_at.date() < AS_OF]
    return recent, topics, mentions
