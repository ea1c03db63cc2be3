"""Health score and the gate: whether an account may be pitched at all, with a reason for every rule that fired.

The score (0–100) is a weighted sum of six components, each scored 0..1 (docs/engine.md):
activation, usage trend (active users last 30 days vs the 30 before), champion recency, open support load,
NPS and feature adoption. The gate is separate from the score: a single rule (no activation, onboarding,
usage decline, silent champion, an open high/urgent ticket, red health, a CS veto, a recent contact, a
held-out control account) blocks the pitch whatever the score says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TypedDict

import duckdb
from pydantic import BaseModel, ConfigDict

from outreach.engine.catalog import Catalog
from outreach.engine.data import OPEN_TICKET_STATUSES
from outreach.engine.rules import Rules
from outreach.engine.tables import TEXT, create_table
from outreach.engine.tables import sql_float as _d
from outreach.engine.tables import sql_text as _text
from outreach.types import Band, GateRule


@dataclass(frozen=True, slots=True)
class UsageFacts:
    """Per-account figures the health score needs, computed in DuckDB by :mod:`outreach.engine.triggers.detection`."""

    active_users_30d: int = 0
    active_users_prior_30d: int = 0
    champion_last_seen: date | None = None
    features_used_30d: int = 0
    last_event: date | None = None


class Health(BaseModel):
    model_config = ConfigDict(frozen=True)

    score: int
    band: Band
    components: dict[str, float]
    active_users_30d: int
    active_users_prior_30d: int
    usage_change_pct: float | None
    champion_silent_days: int | None
    open_tickets: int
    open_priority_tickets: int
    nps: int | None
    feature_adoption: float | None


class GateReason(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: GateRule
    message: str


class Gate(BaseModel):
    model_config = ConfigDict(frozen=True)

    allowed: bool
    reasons: list[GateReason]


class HealthRecord(TypedDict):
    """:class:`Health` as the plain dict the engine computes (validated into Health only when asked)."""

    score: int
    band: Band
    components: dict[str, float]
    active_users_30d: int
    active_users_prior_30d: int
    usage_change_pct: float | None
    champion_silent_days: int | None
    open_tickets: int
    open_priority_tickets: int
    nps: int | None
    feature_adoption: float | None


class GateReasonRecord(TypedDict):
    rule: GateRule
    message: str


class GateRecord(TypedDict):
    allowed: bool
    reasons: list[GateReasonRecord]


def register_open_tickets(con: duckdb.DuckDBPyConnection, rules: Rules, as_of: date) -> None:
    """``open_ticket_facts``: per analysed account (``account_dim``), tickets still open that were opened
    before the analysis date, how many of them have a blocking priority, and the gate's message for the oldest
    such ticket.

    Python writes the message (it quotes the subject with ``repr``), once per account with a blocking ticket.
    """
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE open_ticket_facts AS
        SELECT account_id, count(*) AS open_count, count(*) FILTER (WHERE list_contains($blocking, priority))
                   AS priority_count,
               arg_min([id, priority, subject], (created_at, seq)) FILTER (WHERE list_contains($blocking, priority))
                   AS oldest, NULL::VARCHAR AS priority_message
        FROM ticket_rows SEMI JOIN account_dim USING (account_id)
        WHERE list_contains($open, status) AND created_at::DATE < $as_of
        GROUP BY account_id
        """,
        {"blocking": list(rules.gate.block_on_open_priorities), "as_of": as_of, "open": list(OPEN_TICKET_STATUSES)},
    )
    rows = con.execute(
        "SELECT account_id, priority_count, oldest FROM open_ticket_facts WHERE priority_count > 0"
    ).fetchall()
    create_table(
        con,
        "blocking_message",
        {"account_id": TEXT, "message": TEXT},
        [
            (
                account_id,
                f"open {priority} ticket {ticket_id}: {subject[:80]!r}"
                + (f" (+{count - 1} more)" if count > 1 else ""),
            )
            for account_id, count, (ticket_id, priority, subject) in rows
        ],
    )
    con.execute(
        "UPDATE open_ticket_facts SET priority_message = m.message FROM blocking_message m "
        "WHERE open_ticket_facts.account_id = m.account_id"
    )


def _clamp(expr: str) -> str:
    return f"greatest(0.0::DOUBLE, least(1.0::DOUBLE, {expr}))"


def health_sql(rules: Rules, catalog: Catalog, as_of: date) -> str:
    """One row per analysed account: ``ord``, ``account_id``, ``health`` and ``gate`` (STRUCTs shaped like
    :class:`HealthRecord` and :class:`GateRecord`).

    Reads ``account_dim`` and ``usage_facts`` (:func:`outreach.engine.triggers.detection.detect`), ``open_ticket_facts``
    (:func:`register_open_tickets`) and ``contact`` (account_id, last_contacted, held_out).
    """
    h = rules.health
    w = h.weights
    g = rules.gate
    day = f"DATE '{as_of.isoformat()}'"
    champion = "coalesce(champion, '') <> ''"
    feature_counts = ", ".join(f"({_text(plan.id)}, {len(plan.features)})" for plan in catalog.plans)

    def reason(rule: str, message: str) -> str:
        return f"{{'rule': '{rule}', 'message': {message}}}"

    percent = "CASE WHEN abs(change_pct) = trunc(abs(change_pct)) THEN abs(change_pct)::BIGINT::VARCHAR ELSE abs(change_pct)::VARCHAR END"
    return f"""
    WITH inputs AS (
        SELECT d.*, coalesce(u.active_recent, 0) AS active, coalesce(u.active_prior, 0) AS prior, u.champion_seen,
               coalesce(u.features, 0) AS features_used, coalesce(o.open_count, 0) AS open_count,
               coalesce(o.priority_count, 0) AS priority_count, o.priority_message, pf.feature_count,
               greatest(c.last_contacted, d.last_contacted_at) AS contacted, coalesce(c.held_out, false) AS held_out,
               {day} - d.contract_start AS contract_days,
               CASE WHEN {champion} AND u.champion_seen IS NOT NULL THEN {
        day
    } - u.champion_seen END AS silent_days
        FROM account_dim d
        LEFT JOIN usage_facts u USING (account_id)
        LEFT JOIN open_ticket_facts o USING (account_id)
        LEFT JOIN contact c USING (account_id)
        LEFT JOIN (VALUES {feature_counts}) pf(plan, feature_count) ON pf.plan = d.plan
    ),
    parts AS (
        SELECT *,
            CASE WHEN prior > 0 THEN (active - prior)::DOUBLE / prior END AS change,
            {_d(w.activation)} * CASE WHEN activated THEN 1.0::DOUBLE ELSE 0.0::DOUBLE END AS c_activation,
            {_d(w.usage_trend)} * CASE WHEN prior > 0 THEN {
        _clamp(f"(active::DOUBLE / prior - {_d(h.usage_floor)}) / {_d(1 - h.usage_floor)}")
    }
                                       WHEN active > 0 THEN 0.5::DOUBLE ELSE 0.0::DOUBLE END AS c_usage_trend,
            {_d(w.champion)} * CASE WHEN NOT {champion} THEN 0.5::DOUBLE
                                    WHEN champion_seen IS NULL THEN 0.0::DOUBLE
                                    ELSE {
        _clamp(
            f"1 - (silent_days - {h.champion_recent_days})::DOUBLE "
            f"/ {h.champion_stale_days - h.champion_recent_days}"
        )
    } END AS c_champion,
            {_d(w.support)} * {
        _clamp(
            f"1 - {_d(h.open_ticket_penalty)} * (open_count - priority_count) "
            f"- {_d(h.priority_ticket_penalty)} * priority_count"
        )
    }
                AS c_support,
            {_d(w.nps)} * CASE WHEN nps IS NOT NULL THEN {
        _clamp("nps::DOUBLE / 10")
    } ELSE 0.5::DOUBLE END AS c_nps,
            CASE WHEN feature_count > 0 THEN least(1.0::DOUBLE, features_used::DOUBLE / feature_count) END
                AS adoption_ratio
        FROM inputs
    ),
    scored AS (
        SELECT *,
            {_d(w.adoption)} * coalesce(adoption_ratio, 0.5::DOUBLE) AS c_adoption,
            round_even(change * 100, 1) AS change_pct
        FROM parts
    ),
    banded AS (
        SELECT *,
            round_even(100 * (c_activation + c_usage_trend + c_champion + c_support + c_nps + c_adoption)
                       / {_d(w.total)}, 0)::BIGINT AS score
        FROM scored
    ),
    health AS (
        SELECT *,
            CASE WHEN score >= {rules.health.green_min} THEN 'green'
                 WHEN score >= {rules.health.yellow_min} THEN 'yellow' ELSE 'red' END AS band
        FROM banded
    )
    SELECT ord, account_id,
        {{'score': score, 'band': band,
          'components': {{'activation': round_even(c_activation, 2), 'usage_trend': round_even(c_usage_trend, 2),
                          'champion': round_even(c_champion, 2), 'support': round_even(c_support, 2),
                          'nps': round_even(c_nps, 2), 'adoption': round_even(c_adoption, 2)}},
          'active_users_30d': active, 'active_users_prior_30d': prior, 'usage_change_pct': change_pct,
          'champion_silent_days': silent_days, 'open_tickets': open_count, 'open_priority_tickets': priority_count,
          'nps': nps, 'feature_adoption': round_even(adoption_ratio, 2)}} AS health,
        list_filter([
            CASE WHEN activated_at IS NULL OR activated_at > {day} THEN {
        reason("not_activated", "'has not reached its first promised outcome yet (no activation date)'")
    } END,
            CASE WHEN contract_days >= 0 AND contract_days < {g.onboarding_days} THEN {
        reason(
            "onboarding",
            "'in onboarding: contract started ' || strftime(contract_start, '%Y-%m-%d') || ', ' || contract_days"
            f" || ' days ago (no pitch in the first {g.onboarding_days} days)'",
        )
    } END,
            CASE WHEN change_pct IS NOT NULL AND change_pct <= {_d(-g.usage_drop_pct * 100)} THEN {
        reason(
            "usage_declining",
            f"'active users fell ' || ({percent}) || '% (' || prior || ' → ' || active"
            " || ', last 30 days vs the 30 before)'",
        )
    } END,
            CASE WHEN {champion} AND champion_seen IS NULL THEN {
        reason(
            "champion_silent",
            "'champion ' || coalesce(nullif(champion_name, ''), champion) || ' has no activity'",
        )
    }
                 WHEN {champion} AND silent_days >= {g.champion_silent_days} THEN {
        reason(
            "champion_silent",
            "'champion ' || coalesce(nullif(champion_name, ''), champion) || ' silent for ' || silent_days"
            f" || ' days (limit {g.champion_silent_days})'",
        )
    } END,
            CASE WHEN priority_message IS NOT NULL THEN {
        reason("open_priority_ticket", "priority_message")
    } END,
            CASE WHEN band = 'red' THEN {reason("red_health", "'health is red (' || score || '/100)'")} END,
            CASE WHEN cs_veto THEN {
        reason(
            "cs_veto", "'customer success veto: ' || coalesce(nullif(cs_veto_reason, ''), 'no reason given')"
        )
    } END,
            CASE WHEN {g.contact_cooldown_days} > 0 AND contacted > {day} - {g.contact_cooldown_days}
                      AND contacted <= {day} THEN {
        reason(
            "recently_contacted",
            "'last expansion email ' || strftime(contacted, '%Y-%m-%d')"
            f" || ', within the {g.contact_cooldown_days}-day cooldown'",
        )
    } END,
            CASE WHEN held_out THEN {
        reason("held_out", "'in the no-outreach control group (held out to measure lift)'")
    } END
        ], lambda r: r IS NOT NULL) AS reasons
    FROM health
    """
