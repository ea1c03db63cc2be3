"""Expansion triggers: which behaviours show the current package has become the constraint.

Events are aggregated in DuckDB, one grouped query per trigger over all accounts at once, so the engine
stays close to the cost of a bare scan of the events table (docs/BENCHMARKS.md). Tickets and account
columns are small and handled in Python. Each fired trigger becomes a :class:`Signal` with the exact
figures and the ids of the events or tickets behind it; :mod:`outreach.friction` words it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from outreach.catalog import Catalog
from outreach.data import Account, Dataset, Ticket
from outreach.health import UsageFacts
from outreach.rules import Rules
from outreach.topics import integration_mentions, ticket_topics
from outreach.types import Motion, SignalKind, motion_of

Figure = int | float | str


@dataclass(frozen=True, slots=True)
class Signal:
    """One fired trigger. ``subject`` is what it is about (a limit, feature, integration, topic, …).

    A plain dataclass, not a validated model: the engine builds one per fired trigger from its own
    queries (hundreds of thousands on a large account base), and nothing outside it constructs them.
    """

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


def _signal(
    kind: SignalKind,
    subject: str | None,
    figures: dict[str, Figure],
    evidence: Iterable[str],
    window_days: int | None,
    cap: int,
) -> Signal:
    return Signal(kind, motion_of(kind), subject, figures, list(evidence)[:cap], window_days)


def _number(value: Any) -> int | float:
    """Event properties arrive as JSON text; keep integers integral so statements read '50', not '50.0'."""
    number = float(value)
    return int(number) if number.is_integer() else round(number, 2)


class _Query:
    """Runs the grouped trigger queries against the ``events`` table for one analysis date."""

    def __init__(self, dataset: Dataset, rules: Rules, as_of: date) -> None:
        self.con = dataset.events
        self.names = rules.events
        self.cap = rules.evidence_cap
        self.end = datetime(as_of.year, as_of.month, as_of.day)

    def since(self, days: int) -> datetime:
        return self.end - timedelta(days=days)

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()

    def grouped(self, event: str, prop: str, days: int, minimum: int) -> list[tuple[Any, ...]]:
        """Per (account, property value): count and the newest evidence ids, for groups reaching ``minimum``."""
        return self.rows(
            f"""
            SELECT account_id, props->>'{prop}' AS subject, count(*) AS n,
                   list(message_id ORDER BY ts DESC)[1:{self.cap}] AS evidence
            FROM events
            WHERE event = ? AND ts >= ? AND ts < ? AND props->>'{prop}' IS NOT NULL
            GROUP BY ALL HAVING count(*) >= ? ORDER BY account_id, n DESC, subject
            """,
            event,
            self.since(days),
            self.end,
            minimum,
        )


def detect_signals(
    dataset: Dataset,
    rules: Rules,
    as_of: date,
    *,
    accounts: list[Account] | None = None,
) -> dict[str, AccountSignals]:
    """All fired triggers and the usage facts for every account (or the given subset)."""
    accounts = accounts if accounts is not None else dataset.accounts
    by_id = {account.account_id: account for account in accounts}
    result: dict[str, AccountSignals] = {account_id: AccountSignals() for account_id in by_id}
    found: dict[str, list[Signal]] = defaultdict(list)
    query = _Query(dataset, rules, as_of)
    triggers = rules.triggers
    names = rules.events
    catalog = dataset.catalog
    cap = rules.evidence_cap

    def add(account_id: str, signal: Signal) -> None:
        if account_id in by_id and signal.kind not in triggers.disabled:
            found[account_id].append(signal)

    # --- usage facts for health (one pass) ----------------------------------------------------------
    con = dataset.events
    con.execute(
        "CREATE OR REPLACE TEMP TABLE account_dim AS "
        "SELECT unnest(?::VARCHAR[]) AS account_id, unnest(?::VARCHAR[]) AS champion",
        [[a.account_id for a in accounts], [a.champion_user_id for a in accounts]],
    )
    # One pass over (account, user): last activity in each window, and when the champion was last seen.
    facts = query.rows(
        """
        WITH per_user AS (
            SELECT e.account_id, e.user_id, max(e.ts) AS last_ts,
                   bool_or(e.ts >= ? AND e.event <> ?) AS in_30,
                   bool_or(e.ts >= ? AND e.ts < ? AND e.event <> ?) AS in_prior
            FROM events e WHERE e.ts < ? GROUP BY ALL
        )
        SELECT p.account_id,
               count(*) FILTER (WHERE p.in_30) AS active_30,
               count(*) FILTER (WHERE p.in_prior) AS active_prior,
               max(p.last_ts) FILTER (WHERE p.user_id = d.champion) AS champion_seen,
               max(p.last_ts) AS last_event
        FROM per_user p JOIN account_dim d USING (account_id)
        GROUP BY p.account_id
        """,
        query.since(30),
        names.usage_reported,
        query.since(60),
        query.since(30),
        names.usage_reported,
        query.end,
    )
    features = dict(
        query.rows(
            "SELECT account_id, count(DISTINCT props->>'feature') FROM events "
            "WHERE event = ? AND ts >= ? AND ts < ? GROUP BY account_id",
            names.feature_used,
            query.since(30),
            query.end,
        )
    )
    for account_id, active, prior, champion_seen, last_event in facts:
        result[account_id].usage = UsageFacts(
            active_users_30d=int(active),
            active_users_prior_30d=int(prior),
            champion_last_seen=champion_seen.date() if champion_seen else None,
            features_used_30d=int(features.get(account_id, 0)),
            last_event=last_event.date() if last_event else None,
        )
    con.execute("DROP TABLE account_dim")

    # --- repeated limit hits ------------------------------------------------------------------------
    rule = triggers.repeated_limit_hits
    for account_id, limit, hits, evidence, max_used, max_cap in query.rows(
        f"""
        SELECT account_id, props->>'limit', count(*), list(message_id ORDER BY ts DESC)[1:{cap}],
               max(TRY_CAST(props->>'used' AS DOUBLE)), max(TRY_CAST(props->>'cap' AS DOUBLE))
        FROM events WHERE event = ? AND ts >= ? AND ts < ? AND props->>'limit' IS NOT NULL
        GROUP BY ALL HAVING count(*) >= ? ORDER BY 1, 3 DESC, 2
        """,
        names.limit_reached,
        query.since(rule.window_days),
        query.end,
        rule.min_hits,
    ):
        stats = (max_used, max_cap)
        figures: dict[str, Figure] = {"limit": limit, "hits": int(hits), "window_days": rule.window_days}
        plan_cap = _plan_cap(by_id.get(account_id), catalog, limit)
        if stats[1] is not None:
            figures["cap"] = _number(stats[1])
        elif plan_cap is not None:
            figures["cap"] = plan_cap
        if stats[0] is not None:
            figures["max_used"] = _number(stats[0])
        add(account_id, _signal("repeated_limit_hits", limit, figures, evidence, rule.window_days, cap))

    # --- usage snapshots: near a limit, seat pressure ----------------------------------------------
    near = triggers.usage_near_limit
    pressure = triggers.seat_pressure
    snapshot_days = max(near.window_days, pressure.window_days)
    snapshots: dict[str, dict[str, tuple[float, str, datetime]]] = defaultdict(dict)
    for account_id, metric, used, message_id, stamp in query.rows(
        """
        SELECT account_id, props->>'metric' AS metric, arg_max(TRY_CAST(props->>'used' AS DOUBLE), ts),
               arg_max(message_id, ts), max(ts)
        FROM events WHERE event = ? AND ts >= ? AND ts < ? AND props->>'metric' IS NOT NULL
        GROUP BY ALL
        """,
        names.usage_reported,
        query.since(snapshot_days),
        query.end,
    ):
        if used is not None:
            snapshots[account_id][metric] = (float(used), message_id, stamp)

    swaps = _seat_swaps(query, pressure.window_days)
    near_since, pressure_since = query.since(near.window_days), query.since(pressure.window_days)
    for account in accounts:
        account_id = account.account_id
        for metric, (used, message_id, stamp) in sorted(snapshots.get(account_id, {}).items()):
            if stamp < near_since:
                continue
            limit_value = _capacity(account, catalog, metric)
            if not limit_value:
                continue
            share = used / limit_value
            if metric == "seats" and share >= pressure.pct:
                continue  # reported as seat pressure below
            if share >= near.pct:
                add(
                    account_id,
                    _signal(
                        "usage_near_limit",
                        metric,
                        {
                            "metric": metric,
                            "used": _number(used),
                            "cap": limit_value,
                            "pct": round(100 * share),
                        },
                        [message_id],
                        near.window_days,
                        cap,
                    ),
                )
        seat_cap = _capacity(account, catalog, "seats")
        seat_snapshot = snapshots.get(account_id, {}).get("seats")
        seats_used = (
            seat_snapshot[0]
            if seat_snapshot and seat_snapshot[2] >= pressure_since
            else None
        )
        account_swaps = swaps.get(account_id, [])
        if seat_cap and seats_used is not None and seats_used / seat_cap >= pressure.pct:
            figures = {
                "seats_used": _number(seats_used),
                "seats": seat_cap,
                "pct": round(100 * seats_used / seat_cap),
            }
            if len(account_swaps) >= 2:
                figures["swaps"] = len(account_swaps)
            evidence = [seat_snapshot[1]] if seat_snapshot else []
            add(
                account_id,
                _signal(
                    "seat_pressure", "seats", figures, evidence + account_swaps, pressure.window_days, cap
                ),
            )
        elif len(account_swaps) >= 2:
            figures = {"swaps": len(account_swaps), "window_days": pressure.window_days}
            if seat_cap:
                figures["seats"] = seat_cap
            if seats_used is not None:
                figures["seats_used"] = _number(seats_used)
            add(
                account_id,
                _signal("seat_pressure", "seats", figures, account_swaps, pressure.window_days, cap),
            )

        # --- account columns: headcount, NPS --------------------------------------------------------
        growth = triggers.headcount_growth
        if account.employees_at_contract and account.employees_now:
            ratio = account.employees_now / account.employees_at_contract - 1
            if ratio >= growth.pct - 1e-9:
                add(
                    account_id,
                    _signal(
                        "headcount_growth",
                        "employees",
                        {
                            "employees_at_contract": account.employees_at_contract,
                            "employees_now": account.employees_now,
                            "growth_pct": round(100 * ratio),
                        },
                        ["accounts.csv:employees_now"],
                        None,
                        cap,
                    ),
                )
        nps_rule = triggers.strong_nps
        activated = account.activated_at is not None and account.activated_at <= as_of
        if account.nps is not None and account.nps >= nps_rule.min_nps and activated:
            add(
                account_id,
                _signal("strong_nps", "nps", {"nps": account.nps}, ["accounts.csv:nps"], None, cap),
            )

    # --- locked features ----------------------------------------------------------------------------
    rule_locked = triggers.locked_feature
    for account_id, feature, clicks, evidence in query.grouped(
        names.locked_feature_clicked, "feature", rule_locked.window_days, rule_locked.min_clicks
    ):
        add(
            account_id,
            _signal(
                "locked_feature",
                feature,
                {"feature": feature, "clicks": int(clicks), "window_days": rule_locked.window_days},
                evidence,
                rule_locked.window_days,
                cap,
            ),
        )

    # --- exports ------------------------------------------------------------------------------------
    rule_exports = triggers.frequent_exports
    for account_id, exports, rows, evidence in query.rows(
        f"""
        SELECT account_id, count(*), sum(TRY_CAST(props->>'rows' AS BIGINT)),
               list(message_id ORDER BY ts DESC)[1:{cap}]
        FROM events WHERE event = ? AND ts >= ? AND ts < ? GROUP BY account_id HAVING count(*) >= ?
        """,
        names.export_created,
        query.since(rule_exports.window_days),
        query.end,
        rule_exports.min_exports,
    ):
        figures = {"exports": int(exports), "window_days": rule_exports.window_days}
        if rows is not None:
            figures["rows"] = int(rows)
        add(account_id, _signal("frequent_exports", None, figures, evidence, rule_exports.window_days, cap))

    # --- add-on page visits -------------------------------------------------------------------------
    rule_pages = triggers.addon_page_visits
    addon_ids = {addon.id for addon in catalog.addons}
    for account_id, addon_id, visits, evidence in query.grouped(
        names.page_viewed, "addon", rule_pages.window_days, rule_pages.min_visits
    ):
        owner = by_id.get(account_id)
        if addon_id not in addon_ids or (owner is not None and addon_id in owner.addons):
            continue
        add(
            account_id,
            _signal(
                "addon_page_visits",
                addon_id,
                {"addon": addon_id, "visits": int(visits), "window_days": rule_pages.window_days},
                evidence,
                rule_pages.window_days,
                cap,
            ),
        )

    # --- abandoned workflows ------------------------------------------------------------------------
    rule_wf = triggers.workflow_abandoned
    for account_id, workflow, step, abandons, evidence in query.rows(
        f"""
        SELECT account_id, props->>'workflow', coalesce(props->>'step', ''), count(*),
               list(message_id ORDER BY ts DESC)[1:{cap}]
        FROM events WHERE event = ? AND ts >= ? AND ts < ? AND props->>'workflow' IS NOT NULL
        GROUP BY ALL HAVING count(*) >= ? ORDER BY 1, 4 DESC, 2, 3
        """,
        names.workflow_abandoned,
        query.since(rule_wf.window_days),
        query.end,
        rule_wf.min_abandons,
    ):
        figures = {"workflow": workflow, "abandons": int(abandons), "window_days": rule_wf.window_days}
        if step:
            figures["step"] = step
        add(account_id, _signal("workflow_abandoned", workflow, figures, evidence, rule_wf.window_days, cap))

    # --- new departments ----------------------------------------------------------------------------
    rule_dept = triggers.new_department
    for account_id, department, invites, evidence in query.rows(
        f"""
        WITH invites AS (
            SELECT account_id, props->>'department' AS department, ts, message_id FROM events
            WHERE event = ? AND ts < ? AND props->>'department' IS NOT NULL AND props->>'department' <> ''
        ),
        firsts AS (SELECT account_id, department, min(ts) AS first_ts FROM invites GROUP BY ALL)
        SELECT i.account_id, i.department, count(*), list(i.message_id ORDER BY i.ts DESC)[1:{cap}]
        FROM invites i JOIN firsts f USING (account_id, department)
        WHERE f.first_ts >= ? AND i.ts >= ?
          AND EXISTS (SELECT 1 FROM invites o WHERE o.account_id = i.account_id AND o.ts < ?)
        GROUP BY ALL HAVING count(*) >= ? ORDER BY 1, 3 DESC, 2
        """,
        names.user_invited,
        query.end,
        query.since(rule_dept.window_days),
        query.since(rule_dept.window_days),
        query.since(rule_dept.window_days),
        rule_dept.min_invites,
    ):
        add(
            account_id,
            _signal(
                "new_department",
                department,
                {"department": department, "invites": int(invites), "window_days": rule_dept.window_days},
                evidence,
                rule_dept.window_days,
                cap,
            ),
        )

    # --- integration requests: events and tickets --------------------------------------------------
    rule_int = triggers.integration_request
    integration_events: dict[tuple[str, str], tuple[int, list[str]]] = {}
    for account_id, integration, requests, evidence in query.grouped(
        names.integration_requested, "integration", rule_int.window_days, 1
    ):
        integration_events[(account_id, str(integration).lower())] = (int(requests), list(evidence))
    known_integrations = {key[1] for key in integration_events} | _catalog_integrations(catalog)
    ticket_start = as_of - timedelta(days=rule_int.window_days)
    integration_tickets: dict[tuple[str, str], list[str]] = defaultdict(list)
    for account_id in by_id:
        for ticket in dataset.tickets_by_account.get(account_id, []):
            if ticket_start <= ticket.created_at.date() < as_of:
                for name in integration_mentions(ticket, known_integrations):
                    integration_tickets[(account_id, name)].append(ticket.id)
    for key in sorted(set(integration_events) | set(integration_tickets)):
        account_id, integration = key
        requests, evidence = integration_events.get(key, (0, []))
        tickets = integration_tickets.get(key, [])
        if requests + len(tickets) < rule_int.min_requests:
            continue
        add(
            account_id,
            _signal(
                "integration_request",
                integration,
                {
                    "integration": integration,
                    "requests": requests,
                    "tickets": len(tickets),
                    "window_days": rule_int.window_days,
                },
                evidence + tickets,
                rule_int.window_days,
                cap,
            ),
        )

    # --- ticket topic clusters ----------------------------------------------------------------------
    rule_topic = triggers.ticket_topic_cluster
    topic_start = as_of - timedelta(days=rule_topic.window_days)
    recent: dict[str, list[Ticket]] = {
        account_id: [
            t
            for t in dataset.tickets_by_account.get(account_id, [])
            if topic_start <= t.created_at.date() < as_of
        ]
        for account_id in by_id
    }
    topics = ticket_topics([t for tickets in recent.values() for t in tickets])
    for account_id, account_tickets in recent.items():
        if not account_tickets:
            continue
        counts = Counter(topics[t.id] for t in account_tickets)
        topic, count = min(counts.items(), key=lambda item: (-item[1], item[0]))
        share = count / len(account_tickets)
        if count >= rule_topic.min_tickets and share >= rule_topic.share:
            ids = [
                t.id
                for t in sorted(account_tickets, key=lambda t: t.created_at, reverse=True)
                if topics[t.id] == topic
            ]
            add(
                account_id,
                _signal(
                    "ticket_topic_cluster",
                    topic,
                    {
                        "topic": topic,
                        "tickets": count,
                        "total_tickets": len(account_tickets),
                        "share_pct": round(100 * share),
                        "window_days": rule_topic.window_days,
                    },
                    ids,
                    rule_topic.window_days,
                    cap,
                ),
            )

    for account_id, signals in found.items():
        result[account_id].signals = signals
    return result


def _plan_cap(account: Account | None, catalog: Catalog, metric: str) -> int | None:
    if account is None:
        return None
    return catalog.plan(account.plan).limit(metric)


def _capacity(account: Account, catalog: Catalog, metric: str) -> int | None:
    """What the account may use of ``metric``: purchased seats win over the plan's seat limit."""
    if metric == "seats" and account.seats_purchased:
        return account.seats_purchased
    return catalog.plan(account.plan).limit(metric)


def _catalog_integrations(catalog: Catalog) -> set[str]:
    names: set[str] = set()
    for addon in catalog.addons:
        for solved in addon.solves:
            if solved.startswith("integration:"):
                names.add(solved.split(":", 1)[1].lower())
    return names


def _seat_swaps(query: _Query, days: int) -> dict[str, list[str]]:
    """`User Removed` events followed within 48 hours by a `User Invited`: an admin making room at the cap."""
    rows = query.rows(
        """
        SELECT r.account_id, r.message_id
        FROM events r
        WHERE r.event = ? AND r.ts >= ? AND r.ts < ?
          AND EXISTS (SELECT 1 FROM events i WHERE i.account_id = r.account_id AND i.event = ?
                      AND i.ts >= r.ts AND i.ts <= r.ts + INTERVAL 48 HOUR AND i.ts < ?)
        ORDER BY r.account_id, r.ts DESC
        """,
        query.names.user_removed,
        query.since(days),
        query.end,
        query.names.user_invited,
        query.end,
    )
    swaps: dict[str, list[str]] = defaultdict(list)
    for account_id, message_id in rows:
        swaps[account_id].append(message_id)
    return swaps


def signal_strength(signal: Signal, rules: Rules) -> float:
    """How strongly a signal says the package is the constraint: a kind weight times how far past its
    threshold it is (capped at 3x). Used to pick the primary friction when several fire."""
    weight = _KIND_WEIGHT[signal.kind]
    figures = signal.figures
    triggers = rules.triggers
    ratio = 1.0
    if signal.kind == "repeated_limit_hits":
        ratio = float(figures["hits"]) / triggers.repeated_limit_hits.min_hits
    elif signal.kind == "usage_near_limit":
        ratio = float(figures["pct"]) / (100 * triggers.usage_near_limit.pct)
    elif signal.kind == "seat_pressure":
        pct = float(figures.get("pct", 0)) / (100 * triggers.seat_pressure.pct)
        ratio = max(pct, float(figures.get("swaps", 0)) / 2)
    elif signal.kind == "locked_feature":
        ratio = float(figures["clicks"]) / triggers.locked_feature.min_clicks
    elif signal.kind == "headcount_growth":
        ratio = float(figures["growth_pct"]) / (100 * triggers.headcount_growth.pct)
    elif signal.kind == "integration_request":
        ratio = (
            float(figures["requests"]) + float(figures["tickets"])
        ) / triggers.integration_request.min_requests
        ratio = 1 + math.log2(ratio) if ratio > 1 else ratio
    elif signal.kind == "frequent_exports":
        ratio = float(figures["exports"]) / triggers.frequent_exports.min_exports
    elif signal.kind == "ticket_topic_cluster":
        ratio = float(figures["share_pct"]) / (100 * triggers.ticket_topic_cluster.share)
    elif signal.kind == "addon_page_visits":
        ratio = float(figures["visits"]) / triggers.addon_page_visits.min_visits
    elif signal.kind == "new_department":
        ratio = float(figures["invites"]) / triggers.new_department.min_invites
    elif signal.kind == "workflow_abandoned":
        ratio = float(figures["abandons"]) / triggers.workflow_abandoned.min_abandons
    return round(weight * min(ratio, 3.0), 4)


_KIND_WEIGHT: dict[SignalKind, float] = {
    "repeated_limit_hits": 1.0,
    "seat_pressure": 1.0,
    "usage_near_limit": 0.9,
    "locked_feature": 0.8,
    "integration_request": 0.8,
    "ticket_topic_cluster": 0.75,
    "frequent_exports": 0.7,
    "workflow_abandoned": 0.65,
    "addon_page_visits": 0.6,
    "new_department": 0.5,
    "headcount_growth": 0.5,
    "strong_nps": 0.3,
}
