"""Detection: every enabled trigger, for every account at once, in one DuckDB statement.

Each trigger's spec (:mod:`outreach.engine.triggers.registry`, and the custom ones in the rules) gives a
grouped query; they run as one statement that fills the temporary table ``signal_rows`` (one row per fired
trigger: account, kind, motion, subject, figures as a JSON object, evidence ids, window). The accounts and
tickets come from the dataset's ``account_rows`` and ``ticket_rows``; Python only adds the catalog's limits
and what a spec prepares (TF-IDF topics of untagged tickets, integration asks in non-ASCII text). Deciding
100k accounts row by row in Python cost more than reading their 10M events (docs/BENCHMARKS.md);
:mod:`outreach.engine.friction` words the rows, again in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb
import orjson

from outreach.engine.catalog import Catalog
from outreach.engine.data import Account, Dataset
from outreach.engine.health import UsageFacts
from outreach.engine.rules import Rules
from outreach.engine.tables import INT, TEXT, create_table, drop_temporary, engine_session
from outreach.engine.triggers import sql
from outreach.engine.triggers.spec import Detection, Figure, TriggerSettings, TriggerSpec
from outreach.types import Motion

__all__ = ["AccountSignals", "Figure", "Signal", "detect", "detect_signals"]


@dataclass(frozen=True, slots=True)
class Signal:
    """One fired trigger. ``subject`` is what it is about (a limit, feature, integration, topic, …)."""

    kind: str
    motion: Motion
    subject: str | None = None
    figures: dict[str, Figure] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    window_days: int | None = None


@dataclass
class AccountSignals:
    signals: list[Signal] = field(default_factory=list)
    usage: UsageFacts = field(default_factory=UsageFacts)


def detect_signals(
    dataset: Dataset,
    rules: Rules,
    as_of: date,
    *,
    accounts: list[Account] | None = None,
) -> dict[str, AccountSignals]:
    """All fired triggers and the usage facts for every account (or the given subset)."""
    account_ids = None if accounts is None else {account.account_id for account in accounts}
    with engine_session(dataset.events) as con:
        detect(con, dataset, rules, as_of, account_ids=account_ids)
        analysed = con.execute("SELECT account_id FROM account_dim ORDER BY ord").fetchall()
        facts = con.execute(
            "SELECT account_id, active_recent, active_prior, champion_seen, last_event, features FROM usage_facts"
        ).fetchall()
        rows = con.execute(
            "SELECT account_id, kind, motion, subject, figures, evidence, window_days FROM signal_rows "
            "ORDER BY ord, kind, subject, figures::VARCHAR"
        ).fetchall()
    result = {str(row[0]): AccountSignals() for row in analysed}
    for account_id, active, prior, champion_seen, last_event, features in facts:
        result[account_id].usage = UsageFacts(
            active_users_30d=int(active),
            active_users_prior_30d=int(prior),
            champion_last_seen=champion_seen,
            features_used_30d=int(features),
            last_event=last_event,
        )
    for account_id, kind, motion, subject, figures, evidence, window_days in rows:
        result[account_id].signals.append(
            Signal(kind, motion, subject, orjson.loads(figures), evidence, window_days)
        )
    return result


def detect(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    rules: Rules,
    as_of: date,
    *,
    account_ids: set[str] | None = None,
) -> None:
    """Fill the temporary tables the later stages read on ``con`` (an :func:`~outreach.engine.tables.engine_session`
    of ``dataset.events``), replacing the previous call's:

    ``account_dim`` (the analysed accounts - all, or those in ``account_ids`` - in file order, with ``ord``),
    ``plan_limit``, ``usage_facts`` (what health needs from the events) and ``signal_rows`` (one row per fired
    trigger). The tables the triggers prepare for their queries (``ticket_mention``, ``ticket_topic``) are
    dropped once ``signal_rows`` is built.
    :func:`outreach.engine.friction.frictions` words the signals.
    """
    context, enabled = prepare_triggers(con, dataset, rules, as_of, account_ids=account_ids)
    con.execute(signal_sql(context, enabled))
    for spec, _ in enabled:
        for table in spec.prepares:  # read by the queries alone: signal_rows holds what they found
            drop_temporary(con, table)


def prepare_triggers(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    rules: Rules,
    as_of: date,
    *,
    account_ids: set[str] | None = None,
) -> tuple[Detection, list[tuple[TriggerSpec[Any], TriggerSettings]]]:
    """Everything :func:`detect` does before the one statement that fires the triggers: the tables their queries
    read, including those the specs prepare (still there after this call); the context and the enabled triggers."""
    catalog = dataset.catalog
    context = Detection(con, catalog, rules.events, as_of, rules.evidence_cap)
    _register_accounts(con, account_ids, catalog, as_of)
    _usage_facts(con, rules, context.end)
    enabled = rules.enabled_triggers()
    for spec, settings in enabled:
        if spec.prepare is not None:
            spec.prepare(context, settings)
    return context, enabled


def _register_accounts(
    con: duckdb.DuckDBPyConnection, account_ids: set[str] | None, catalog: Catalog, as_of: date
) -> None:
    """``account_dim`` (the analysed accounts from the dataset's ``account_rows``, ``ord`` their position among
    them; ``champion`` is champion_user_id) and ``plan_limit`` (NULL cap = unlimited)."""
    columns = (
        "account_id, plan, seats_purchased, employees_at_contract, employees_now, nps, "
        "champion_user_id AS champion, name, owner_email, activated_at, contract_start, champion_name, cs_veto, "
        f"cs_veto_reason, last_contacted_at, coalesce(activated_at <= DATE '{as_of.isoformat()}', false) AS activated, "
        "addons"
    )
    drop_temporary(con, "account_dim")  # a view for every account, a table for a subset: either may be there
    if account_ids is None:
        # account_rows numbers the accounts in file order (``ord``, 0, 1, …) and holds them in that order, so
        # all of them are a view over it: a copy was 18 columns of a million accounts held to the end.
        con.execute(f"CREATE TEMP VIEW account_dim AS SELECT ord, {columns} FROM account_rows")
    else:
        # A subset is numbered again (a window over a million accounts cost 0.3-0.7 s).
        create_table(
            con, "analysed", {"account_id": TEXT}, [(account_id,) for account_id in sorted(account_ids)]
        )
        con.execute(
            f"""
            CREATE TEMP TABLE account_dim AS
            SELECT row_number() OVER (ORDER BY ord) - 1 AS ord, {columns}
            FROM account_rows SEMI JOIN analysed USING (account_id) ORDER BY ord
            """
        )
    create_table(
        con,
        "plan_limit",
        {"plan": TEXT, "metric": TEXT, "cap": INT},
        [(plan.id, metric, cap) for plan in catalog.plans for metric, cap in plan.limits.items()],
    )


def _usage_facts(con: duckdb.DuckDBPyConnection, rules: Rules, end: datetime) -> None:
    """``user_activity`` (per account and user: last event, active in the activity window / the same span
    before) and ``usage_facts`` (per analysed account with events: active users in both windows, the
    champion's and the account's last event, features used in the window): what health needs from the events."""
    names = rules.events
    days = rules.health.activity_window_days
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE user_activity AS
        SELECT account_id, user_id, max(ts) AS last_ts,
               bool_or(ts >= {sql.since(end, days)} AND event <> $usage) AS in_recent,
               bool_or(ts >= {sql.since(end, 2 * days)} AND ts < {sql.since(end, days)} AND event <> $usage)
                   AS in_prior
        FROM events WHERE ts < $end GROUP BY ALL
        """,
        {"usage": names.usage_reported, "end": end},
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE usage_facts AS
        WITH activity AS (
            SELECT account_id, count(*) FILTER (WHERE in_recent) AS active_recent,
                   count(*) FILTER (WHERE in_prior) AS active_prior, max(last_ts)::DATE AS last_event
            FROM user_activity GROUP BY account_id
        ), features AS (
            SELECT account_id, count(DISTINCT props->>'feature') AS features FROM events
            WHERE event = $feature AND ts >= {sql.since(end, days)} AND ts < $end GROUP BY account_id
        )
        SELECT d.account_id, a.active_recent, a.active_prior, u.last_ts::DATE AS champion_seen, a.last_event,
               coalesce(f.features, 0) AS features
        FROM account_dim d JOIN activity a USING (account_id)
        LEFT JOIN user_activity u ON u.account_id = d.account_id AND u.user_id = d.champion
        LEFT JOIN features f ON f.account_id = d.account_id
        """,
        {"feature": names.feature_used, "end": end},
    )
    con.execute("DROP TABLE user_activity")  # one row per user and account: 2.6M at a million accounts




def _usage_snapshot(context: Detection, enabled: list[tuple[TriggerSpec[Any], TriggerSettings]]) -> str | None:
    """The ``usage_snapshot`` CTE the triggers that read usage share: per account and metric the latest
    ``Usage Reported`` value in the longest window any of them reads, its ``cap`` (the purchased seats for
    seats, else the plan's limit) and whether a trigger ``claimed`` it (reports it alone)."""
    days = [spec.snapshot_days(settings) for spec, settings in enabled if spec.snapshot_days is not None]
    if not days:
        return None
    claims = [f"({spec.snapshot_claim(s)})" for spec, s in enabled if spec.snapshot_claim is not None]
    claimed = f"coalesce({' OR '.join(claims)}, false)" if claims else "false"
    return f"""
    usage_snapshot AS (
        SELECT *, {claimed} AS claimed FROM (
            SELECT s.account_id, s.metric, s.used, s.message_id, s.stamp,
                   CASE WHEN s.metric = 'seats' AND coalesce(d.seats_purchased, 0) <> 0 THEN d.seats_purchased
                        ELSE l.cap END AS cap
            FROM (
                SELECT account_id, props->>'metric' AS metric,
                       arg_max(TRY_CAST(props->>'used' AS DOUBLE), (ts, line)) AS used,
                       arg_max(message_id, (ts, line)) AS message_id, max(ts) AS stamp
                FROM events
                WHERE event = {sql.text(context.events.usage_reported)} AND ts >= {context.since(max(days))}
                  AND ts < {context.end_sql} AND props->>'metric' IS NOT NULL
                GROUP BY ALL
            ) s JOIN account_dim d USING (account_id)
            LEFT JOIN plan_limit l ON l.plan = d.plan AND l.metric = s.metric
            WHERE s.used IS NOT NULL
        )
    )"""


def signal_sql(context: Detection, enabled: list[tuple[TriggerSpec[Any], TriggerSettings]]) -> str:
    """One statement: every enabled trigger's query, unioned into ``signal_rows``."""
    fired = [
        f"""SELECT account_id, {sql.text(spec.kind)} AS kind, {sql.text(spec.motion)} AS motion,
               subject::VARCHAR AS subject, figures::JSON AS figures, evidence::VARCHAR[] AS evidence,
               window_days::INTEGER AS window_days
        FROM ({spec.query(context, settings)})"""
        for spec, settings in enabled
    ]
    if not fired:
        fired = [
            "SELECT NULL::VARCHAR AS account_id, NULL::VARCHAR AS kind, NULL::VARCHAR AS motion, "
            "NULL::VARCHAR AS subject, NULL::JSON AS figures, NULL::VARCHAR[] AS evidence, "
            "NULL::INTEGER AS window_days WHERE false"
        ]
    snapshot = _usage_snapshot(context, enabled)
    union = "\n        UNION ALL\n        ".join(fired)
    return f"""
    CREATE OR REPLACE TEMP TABLE signal_rows AS
    WITH {snapshot + "," if snapshot else ""}
    fired AS (
        {union}
    )
    SELECT d.ord, f.account_id, f.kind, f.motion, f.subject, f.figures, f.evidence, f.window_days
    FROM fired f JOIN account_dim d USING (account_id)
    """
