"""Expansion triggers: which behaviours show the current package has become the constraint.

Every trigger is a grouped DuckDB query over all accounts at once, and all of them run as one statement
that fills the temporary table ``signal_rows`` (one row per fired trigger: account, kind, subject,
figures as a JSON object, evidence ids, window). The accounts and tickets come from the dataset's
``account_rows`` and ``ticket_rows``; Python only adds the catalog's limits and what needs
:mod:`outreach.engine.topics` (TF-IDF topics of untagged tickets, integration asks in non-ASCII text). Deciding 100k
accounts row by row in Python cost more than reading their 10M events (docs/BENCHMARKS.md);
:mod:`outreach.engine.friction` words the rows, again in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb
import orjson

from outreach.engine.catalog import Catalog
from outreach.engine.data import Account, Dataset
from outreach.engine.health import UsageFacts
from outreach.engine.rules import Rules
from outreach.engine.tables import INT, TEXT, TIME, create_table, engine_session
from outreach.engine.tables import sql_float as _float
from outreach.engine.tables import sql_text as _text
from outreach.engine.tables import sql_texts as _texts
from outreach.engine.topics import (
    GENERIC_TAGS,
    INTEGRATION_WORDS,
    TicketText,
    integration_mentions,
    ticket_topics,
)
from outreach.types import UPSELL_KINDS, Motion, SignalKind

Figure = int | float | str


@dataclass(frozen=True, slots=True)
class Signal:
    """One fired trigger. ``subject`` is what it is about (a limit, feature, integration, topic, …)."""

    kind: SignalKind
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
            "SELECT account_id, active_30, active_prior, champion_seen, last_event, features FROM usage_facts"
        ).fetchall()
        rows = con.execute(
            "SELECT account_id, kind, motion, subject, figures, evidence, window_days FROM signal_rows "
            "ORDER BY ord, kind, subject"
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
    ``plan_limit``, ``usage_facts`` (what health needs from the events), ``ticket_mention``, ``ticket_topic``
    and ``signal_rows`` (one row per fired trigger). :func:`outreach.engine.friction.frictions` words the signals.
    """
    catalog = dataset.catalog
    end = datetime(as_of.year, as_of.month, as_of.day)
    _register_accounts(con, account_ids, catalog, as_of)
    _usage_facts(con, rules, end)
    known = _event_integrations(con, rules, end) | _catalog_integrations(catalog)
    _register_tickets(con, rules, as_of, known)
    con.execute(_signal_sql(rules, catalog, end))


def _since(end: datetime, days: int) -> str:
    return f"TIMESTAMP '{(end - timedelta(days=days)).isoformat(sep=' ')}'"


def _register_accounts(
    con: duckdb.DuckDBPyConnection, account_ids: set[str] | None, catalog: Catalog, as_of: date
) -> None:
    """``account_dim`` (the analysed accounts from the dataset's ``account_rows``, ``ord`` their position among
    them; ``champion`` is champion_user_id) and ``plan_limit`` (NULL cap = unlimited)."""
    source = "account_rows"
    if account_ids is not None:
        create_table(
            con, "analysed", {"account_id": TEXT}, [(account_id,) for account_id in sorted(account_ids)]
        )
        source = "account_rows SEMI JOIN analysed USING (account_id)"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE account_dim AS
        SELECT row_number() OVER (ORDER BY ord) - 1 AS ord, account_id, plan, seats_purchased, employees_at_contract,
               employees_now, nps, champion_user_id AS champion, name, owner_email, activated_at, contract_start,
               champion_name, cs_veto, cs_veto_reason, last_contacted_at,
               coalesce(activated_at <= $as_of, false) AS activated, addons
        FROM {source} ORDER BY ord
        """,
        {"as_of": as_of},
    )
    create_table(
        con,
        "plan_limit",
        {"plan": TEXT, "metric": TEXT, "cap": INT},
        [(plan.id, metric, cap) for plan in catalog.plans for metric, cap in plan.limits.items()],
    )


def _usage_facts(con: duckdb.DuckDBPyConnection, rules: Rules, end: datetime) -> None:
    """``user_activity`` (per account and user: last event, active in the last 30 days / the 30 before) and
    ``usage_facts`` (per analysed account with events: active users in both windows, the champion's and the
    account's last event, features used in the last 30 days): what health needs from the events."""
    names = rules.events
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE user_activity AS
        SELECT account_id, user_id, max(ts) AS last_ts,
               bool_or(ts >= {_since(end, 30)} AND event <> $usage) AS in_30,
               bool_or(ts >= {_since(end, 60)} AND ts < {_since(end, 30)} AND event <> $usage) AS in_prior
        FROM events WHERE ts < $end GROUP BY ALL
        """,
        {"usage": names.usage_reported, "end": end},
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE usage_facts AS
        WITH activity AS (
            SELECT account_id, count(*) FILTER (WHERE in_30) AS active_30,
                   count(*) FILTER (WHERE in_prior) AS active_prior, max(last_ts)::DATE AS last_event
            FROM user_activity GROUP BY account_id
        ), features AS (
            SELECT account_id, count(DISTINCT props->>'feature') AS features FROM events
            WHERE event = $feature AND ts >= {_since(end, 30)} AND ts < $end GROUP BY account_id
        )
        SELECT d.account_id, a.active_30, a.active_prior, u.last_ts::DATE AS champion_seen, a.last_event,
               coalesce(f.features, 0) AS features
        FROM account_dim d JOIN activity a USING (account_id)
        LEFT JOIN user_activity u ON u.account_id = d.account_id AND u.user_id = d.champion
        LEFT JOIN features f ON f.account_id = d.account_id
        """,
        {"feature": names.feature_used, "end": end},
    )


def _event_integrations(con: duckdb.DuckDBPyConnection, rules: Rules, end: datetime) -> set[str]:
    """Integrations named in ``Integration Requested`` events in the window (lower-case)."""
    window = rules.triggers.integration_request.window_days
    rows = con.execute(
        f"SELECT DISTINCT lower(props->>'integration') FROM events WHERE event = ? "
        f"AND ts >= {_since(end, window)} AND ts < ? AND props->>'integration' IS NOT NULL",
        [rules.events.integration_requested, end],
    ).fetchall()
    return {str(row[0]) for row in rows}


_ASCII = "'[\\x00-\\x7F]*'"
_WORD_START, _WORD_END = "\\b\\Q", "\\E\\b"


def _register_tickets(con: duckdb.DuckDBPyConnection, rules: Rules, as_of: date, known: set[str]) -> None:
    """``ticket_mention`` (integration asks in ticket text) and ``ticket_topic`` (each recent ticket's topic),
    from the analysed accounts' tickets in ``ticket_rows``.

    DuckDB does the usual cases: a topical tag, and the integration regexes on ASCII text (where RE2 and
    Python's ``re`` match alike). Python (:mod:`outreach.engine.topics`) does the rest: TF-IDF topics for untagged
    tickets and integration asks in non-ASCII text.
    """
    triggers = rules.triggers
    mention_start = as_of - timedelta(days=triggers.integration_request.window_days)
    topic_start = as_of - timedelta(days=triggers.ticket_topic_cluster.window_days)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE ticket_recent AS
        SELECT t.seq, t.id, t.account_id, t.created_at, t.subject, t.description, t.tags,
               t.created_at::DATE >= $mention_start AS for_mentions, t.created_at::DATE >= $topic_start AS for_topics,
               regexp_full_match(t.subject, {_ASCII}) AND regexp_full_match(t.description, {_ASCII}) AS ascii
        FROM ticket_rows t SEMI JOIN account_dim USING (account_id)
        WHERE t.created_at::DATE < $as_of AND t.created_at::DATE >= least($mention_start, $topic_start)
        """,
        {"as_of": as_of, "mention_start": mention_start, "topic_start": topic_start},
    )
    _register_mentions(con, known)
    _register_topics(con)


def _register_mentions(con: duckdb.DuckDBPyConnection, known: set[str]) -> None:
    names = sorted(known)
    asks = (
        "list_contains(tags, 'integration') OR list_contains(tags, 'integrations') "
        f"OR regexp_matches(lower(subject || chr(10) || description), {_text(INTEGRATION_WORDS.pattern)})"
    )
    in_sql = len(names) <= 200 and all(name.isascii() and "\\" not in name for name in names)
    text = "lower(subject || chr(10) || description)"
    # \Q...\E quotes the name for RE2 as re.escape does for Python; \b is the same on ASCII text.
    found = [
        f"CASE WHEN regexp_matches({text}, {_text(_WORD_START + name + _WORD_END)}) THEN {_text(name)} END"
        for name in names
    ]
    matched = (
        f"list_filter([{', '.join(found)}]::VARCHAR[], lambda n: n IS NOT NULL)" if found else "[]::VARCHAR[]"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE ticket_mention AS
        SELECT account_id, unnest({matched}) AS integration, id AS ticket_id, seq
        FROM ticket_recent WHERE for_mentions AND ascii AND ({asks})
        """
        if in_sql
        else "CREATE OR REPLACE TEMP TABLE ticket_mention (account_id VARCHAR, integration VARCHAR, ticket_id VARCHAR, seq BIGINT)"
    )
    rest = con.execute(
        f"SELECT account_id, id, seq, subject, description, tags FROM ticket_recent WHERE for_mentions "
        f"{'AND NOT ascii' if in_sql else ''} ORDER BY seq"
    ).fetchall()
    mentions = [
        (account_id, name, ticket_id, seq)
        for account_id, ticket_id, seq, subject, description, tags in rest
        for name in integration_mentions(subject, description, tags, known)
    ]
    if mentions:
        create_table(
            con,
            "python_mention",
            {"account_id": TEXT, "integration": TEXT, "ticket_id": TEXT, "seq": INT},
            mentions,
        )
        con.execute("INSERT INTO ticket_mention SELECT * FROM python_mention")


def _register_topics(con: duckdb.DuckDBPyConnection) -> None:
    """Topics as :func:`outreach.engine.topics.ticket_topics` gives them: the first topical tag, else TF-IDF over the
    untagged tickets (Python). Repeated ticket ids share one topic there, so then Python does them all."""
    tagged = (
        f"list_filter(tags, lambda t: t <> '' AND NOT list_contains({_texts(sorted(GENERIC_TAGS))}, t))[1]"
    )
    unique = con.execute(
        "SELECT count(DISTINCT id) = count(*) FROM ticket_recent WHERE for_topics"
    ).fetchone()
    all_in_python = not (unique and unique[0])
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE ticket_topic AS
        SELECT account_id, id AS ticket_id, {tagged} AS topic, created_at, seq FROM ticket_recent
        WHERE for_topics AND {tagged} IS NOT NULL AND NOT $all_in_python
        """,
        {"all_in_python": all_in_python},
    )
    rows = con.execute(
        "SELECT seq, id, account_id, subject, description, tags, created_at FROM ticket_recent "
        f"WHERE for_topics AND ({tagged} IS NULL OR $all_in_python) ORDER BY seq",
        {"all_in_python": all_in_python},
    ).fetchall()
    if not rows:
        return
    topics = ticket_topics(TicketText(row[1], row[2], row[3], row[4], tuple(row[5])) for row in rows)
    create_table(
        con,
        "python_topic",
        {"account_id": TEXT, "ticket_id": TEXT, "topic": TEXT, "created_at": TIME, "seq": INT},
        [
            (account_id, ticket_id, topics[ticket_id], created_at, seq)
            for seq, ticket_id, account_id, *_, created_at in rows
        ],
    )
    con.execute("INSERT INTO ticket_topic SELECT * FROM python_topic")


def _catalog_integrations(catalog: Catalog) -> set[str]:
    names: set[str] = set()
    for addon in catalog.addons:
        for solved in addon.solves:
            if solved.startswith("integration:"):
                names.add(solved.split(":", 1)[1].lower())
    return names


def _num(expr: str) -> str:
    """A figure as JSON the way Python's statements print it: integral values as integers, others to 2 places."""
    return (
        f"(CASE WHEN ({expr}) IS NULL THEN NULL::JSON WHEN ({expr}) = trunc({expr}) THEN to_json(({expr})::BIGINT) "
        f"ELSE to_json(round_even(({expr})::DOUBLE, 2)) END)"
    )


def _signal_sql(rules: Rules, catalog: Catalog, end: datetime) -> str:
    """One statement: every trigger's grouped query, unioned into ``signal_rows``."""
    t = rules.triggers
    n = rules.events
    cap = rules.evidence_cap
    hits, near, pressure = t.repeated_limit_hits, t.usage_near_limit, t.seat_pressure
    locked, exports, pages, workflow = (
        t.locked_feature,
        t.frequent_exports,
        t.addon_page_visits,
        t.workflow_abandoned,
    )
    dept, integration, topic = t.new_department, t.integration_request, t.ticket_topic_cluster
    snapshot_days = max(near.window_days, pressure.window_days)
    end_sql = f"TIMESTAMP '{end.isoformat(sep=' ')}'"
    upsell = _texts(UPSELL_KINDS)
    disabled = _texts(t.disabled)
    addon_ids = _texts(a.id for a in catalog.addons)

    def newest(ids: str, order: str) -> str:
        """The ``cap`` ids that come first by ``order``, descending: a top-n aggregate, no full sorted list."""
        return f"arg_max({ids}, {order}, {cap})"

    def grouped(event: str, prop: str, days: int, minimum: int) -> str:
        return f"""
            SELECT account_id, props->>'{prop}' AS subject, count(*) AS n,
                   {newest("message_id", "(ts, line)")} AS evidence
            FROM events
            WHERE event = {_text(event)} AND ts >= {_since(end, days)} AND ts < {end_sql}
              AND props->>'{prop}' IS NOT NULL
            GROUP BY ALL HAVING count(*) >= {minimum}"""

    return f"""
    CREATE OR REPLACE TEMP TABLE signal_rows AS
    WITH
    limit_hits AS (
        SELECT account_id, props->>'limit' AS subject, count(*) AS n,
               {newest("message_id", "(ts, line)")} AS evidence,
               max(TRY_CAST(props->>'used' AS DOUBLE)) AS max_used, max(TRY_CAST(props->>'cap' AS DOUBLE)) AS max_cap
        FROM events
        WHERE event = {_text(n.limit_reached)} AND ts >= {_since(end, hits.window_days)} AND ts < {end_sql}
          AND props->>'limit' IS NOT NULL
        GROUP BY ALL HAVING count(*) >= {hits.min_hits}
    ),
    snapshot AS (
        SELECT * FROM (
            SELECT account_id, props->>'metric' AS metric, arg_max(TRY_CAST(props->>'used' AS DOUBLE), (ts, line)) AS used,
                   arg_max(message_id, (ts, line)) AS message_id, max(ts) AS stamp
            FROM events
            WHERE event = {_text(n.usage_reported)} AND ts >= {_since(end, snapshot_days)} AND ts < {end_sql}
              AND props->>'metric' IS NOT NULL
            GROUP BY ALL
        ) WHERE used IS NOT NULL
    ),
    capacity AS (
        SELECT s.account_id, s.metric, s.used, s.message_id, s.stamp,
               CASE WHEN s.metric = 'seats' AND coalesce(d.seats_purchased, 0) <> 0 THEN d.seats_purchased
                    ELSE l.cap END AS cap
        FROM snapshot s JOIN account_dim d USING (account_id)
        LEFT JOIN plan_limit l ON l.plan = d.plan AND l.metric = s.metric
    ),
    swaps AS (
        SELECT r.account_id, list(r.message_id ORDER BY r.ts DESC, r.line DESC) AS ids
        FROM events r
        WHERE r.event = {_text(n.user_removed)} AND r.ts >= {_since(end, pressure.window_days)} AND r.ts < {end_sql}
          AND EXISTS (SELECT 1 FROM events i WHERE i.account_id = r.account_id AND i.event = {_text(n.user_invited)}
                      AND i.ts >= r.ts AND i.ts <= r.ts + INTERVAL 48 HOUR AND i.ts < {end_sql})
        GROUP BY r.account_id
    ),
    seats AS (
        SELECT d.account_id,
               CASE WHEN coalesce(d.seats_purchased, 0) <> 0 THEN d.seats_purchased ELSE l.cap END AS seat_cap,
               s.message_id AS snapshot_id,
               CASE WHEN s.stamp >= {_since(end, pressure.window_days)} THEN s.used END AS seats_used,
               coalesce(w.ids, []::VARCHAR[]) AS swaps
        FROM account_dim d
        LEFT JOIN plan_limit l ON l.plan = d.plan AND l.metric = 'seats'
        LEFT JOIN snapshot s ON s.account_id = d.account_id AND s.metric = 'seats'
        LEFT JOIN swaps w ON w.account_id = d.account_id
    ),
    dept_invites AS (
        SELECT account_id, props->>'department' AS department, ts, line, message_id FROM events
        WHERE event = {_text(n.user_invited)} AND ts < {end_sql}
          AND props->>'department' IS NOT NULL AND props->>'department' <> ''
    ),
    dept_firsts AS (SELECT account_id, department, min(ts) AS first_ts FROM dept_invites GROUP BY ALL),
    dept_before AS (
        SELECT DISTINCT account_id FROM dept_invites WHERE ts < {_since(end, dept.window_days)}
    ),
    integration_events AS (
        SELECT account_id, lower(props->>'integration') AS subject, count(*) AS n,
               {newest("message_id", "(ts, line)")} AS evidence
        FROM events
        WHERE event = {_text(n.integration_requested)} AND ts >= {_since(end, integration.window_days)}
          AND ts < {end_sql} AND props->>'integration' IS NOT NULL
        GROUP BY ALL
    ),
    integration_tickets AS (
        SELECT account_id, integration AS subject, list(ticket_id ORDER BY seq) AS ids
        FROM ticket_mention GROUP BY ALL
    ),
    topic_counts AS (SELECT account_id, topic, count(*) AS n FROM ticket_topic GROUP BY ALL),
    topic_best AS (
        SELECT account_id, first(topic ORDER BY n DESC, topic) AS topic, max(n) AS n, sum(n) AS total
        FROM topic_counts GROUP BY account_id
    ),
    fired AS (
        SELECT account_id, 'repeated_limit_hits' AS kind, subject,
               json_merge_patch(
                   json_object('limit', subject, 'hits', n, 'window_days', {hits.window_days}),
                   json_object('cap', coalesce({_num("max_cap")}, to_json(l.cap)), 'max_used', {_num("max_used")})
               ) AS figures,
               evidence, {hits.window_days} AS window_days
        FROM limit_hits JOIN account_dim d USING (account_id)
        LEFT JOIN plan_limit l ON l.plan = d.plan AND l.metric = limit_hits.subject
        UNION ALL
        SELECT account_id, 'usage_near_limit', metric,
               json_object('metric', metric, 'used', {_num("used")}, 'cap', cap,
                           'pct', round_even(100 * (used / cap), 0)::BIGINT),
               [message_id], {near.window_days}
        FROM capacity
        WHERE stamp >= {_since(end, near.window_days)} AND coalesce(cap, 0) <> 0
          AND NOT (metric = 'seats' AND used / cap >= {_float(pressure.pct)})
          AND used / cap >= {_float(near.pct)}
        UNION ALL
        SELECT account_id, 'seat_pressure', 'seats',
               CASE WHEN coalesce(seat_cap, 0) <> 0 AND seats_used IS NOT NULL
                         AND seats_used / seat_cap >= {_float(pressure.pct)}
                    THEN json_merge_patch(
                        json_object('seats_used', {_num("seats_used")}, 'seats', seat_cap,
                                    'pct', round_even(100 * seats_used / seat_cap, 0)::BIGINT),
                        json_object('swaps', CASE WHEN len(swaps) >= 2 THEN len(swaps) END))
                    ELSE json_merge_patch(
                        json_object('swaps', len(swaps), 'window_days', {pressure.window_days}),
                        json_object('seats', CASE WHEN coalesce(seat_cap, 0) <> 0 THEN seat_cap END,
                                    'seats_used', {_num("seats_used")}))
               END,
               CASE WHEN coalesce(seat_cap, 0) <> 0 AND seats_used IS NOT NULL
                         AND seats_used / seat_cap >= {_float(pressure.pct)}
                    THEN list_concat([snapshot_id], swaps)[1:{cap}]
                    ELSE swaps[1:{cap}] END,
               {pressure.window_days}
        FROM seats
        WHERE (coalesce(seat_cap, 0) <> 0 AND seats_used IS NOT NULL AND seats_used / seat_cap >= {_float(pressure.pct)})
           OR len(swaps) >= 2
        UNION ALL
        SELECT account_id, 'headcount_growth', 'employees',
               json_object('employees_at_contract', employees_at_contract, 'employees_now', employees_now,
                           'growth_pct', round_even(100 * (employees_now / employees_at_contract - 1), 0)::BIGINT),
               ['accounts.csv:employees_now'], NULL
        FROM account_dim
        WHERE coalesce(employees_at_contract, 0) <> 0 AND coalesce(employees_now, 0) <> 0
          AND employees_now / employees_at_contract - 1 >= {_float(t.headcount_growth.pct - 1e-9)}
        UNION ALL
        SELECT account_id, 'strong_nps', 'nps', json_object('nps', nps), ['accounts.csv:nps'], NULL
        FROM account_dim WHERE nps IS NOT NULL AND nps >= {t.strong_nps.min_nps} AND activated
        UNION ALL
        SELECT account_id, 'locked_feature', subject,
               json_object('feature', subject, 'clicks', n, 'window_days', {locked.window_days}),
               evidence, {locked.window_days}
        FROM ({grouped(n.locked_feature_clicked, "feature", locked.window_days, locked.min_clicks)})
        UNION ALL
        SELECT account_id, 'frequent_exports', NULL,
               json_merge_patch(json_object('exports', n, 'window_days', {exports.window_days}),
                                json_object('rows', rows)),
               evidence, {exports.window_days}
        FROM (
            SELECT account_id, count(*) AS n, sum(TRY_CAST(props->>'rows' AS BIGINT)) AS rows,
                   {newest("message_id", "(ts, line)")} AS evidence
            FROM events
            WHERE event = {_text(n.export_created)} AND ts >= {_since(end, exports.window_days)} AND ts < {end_sql}
            GROUP BY account_id HAVING count(*) >= {exports.min_exports}
        )
        UNION ALL
        SELECT g.account_id, 'addon_page_visits', g.subject,
               json_object('addon', g.subject, 'visits', g.n, 'window_days', {pages.window_days}),
               g.evidence, {pages.window_days}
        FROM ({grouped(n.page_viewed, "addon", pages.window_days, pages.min_visits)}) g
        JOIN account_dim d USING (account_id)
        WHERE list_contains({addon_ids}, g.subject) AND NOT list_contains(d.addons, g.subject)
        UNION ALL
        SELECT account_id, 'workflow_abandoned', workflow,
               json_merge_patch(json_object('workflow', workflow, 'abandons', n, 'window_days', {workflow.window_days}),
                                json_object('step', nullif(step, ''))),
               evidence, {workflow.window_days}
        FROM (
            SELECT account_id, props->>'workflow' AS workflow, coalesce(props->>'step', '') AS step, count(*) AS n,
                   {newest("message_id", "(ts, line)")} AS evidence
            FROM events
            WHERE event = {_text(n.workflow_abandoned)} AND ts >= {_since(end, workflow.window_days)}
              AND ts < {end_sql} AND props->>'workflow' IS NOT NULL
            GROUP BY ALL HAVING count(*) >= {workflow.min_abandons}
        )
        UNION ALL
        SELECT account_id, 'new_department', department,
               json_object('department', department, 'invites', n, 'window_days', {dept.window_days}),
               evidence, {dept.window_days}
        FROM (
            SELECT i.account_id, i.department, count(*) AS n, {newest("i.message_id", "(i.ts, i.line)")} AS evidence
            FROM dept_invites i JOIN dept_firsts f USING (account_id, department)
            SEMI JOIN dept_before b USING (account_id)
            WHERE f.first_ts >= {_since(end, dept.window_days)} AND i.ts >= {_since(end, dept.window_days)}
            GROUP BY ALL HAVING count(*) >= {dept.min_invites}
        )
        UNION ALL
        SELECT account_id, 'integration_request', subject,
               json_object('integration', subject, 'requests', coalesce(e.n, 0), 'tickets', coalesce(len(k.ids), 0),
                           'window_days', {integration.window_days}),
               list_concat(coalesce(e.evidence, []::VARCHAR[]), coalesce(k.ids, []::VARCHAR[]))[1:{cap}],
               {integration.window_days}
        FROM integration_events e FULL OUTER JOIN integration_tickets k USING (account_id, subject)
        WHERE coalesce(e.n, 0) + coalesce(len(k.ids), 0) >= {integration.min_requests}
        UNION ALL
        SELECT account_id, 'ticket_topic_cluster', topic,
               json_object('topic', topic, 'tickets', n, 'total_tickets', total,
                           'share_pct', round_even(100 * (n / total), 0)::BIGINT,
                           'window_days', {topic.window_days}),
               evidence, {topic.window_days}
        FROM (
            SELECT b.account_id, b.topic, b.n, b.total, {newest("t.ticket_id", "(t.created_at, -t.seq)")} AS evidence
            FROM topic_best b JOIN ticket_topic t ON t.account_id = b.account_id AND t.topic = b.topic
            WHERE b.n >= {topic.min_tickets} AND b.n / b.total >= {_float(topic.share)}
            GROUP BY ALL
        )
    )
    SELECT d.ord, f.account_id, f.kind,
           CASE WHEN list_contains({upsell}, f.kind) THEN 'upsell' ELSE 'cross_sell' END AS motion,
           f.subject, f.figures, f.evidence, f.window_days::INTEGER AS window_days
    FROM fired f JOIN account_dim d USING (account_id)
    WHERE NOT list_contains({disabled}, f.kind)
    """
