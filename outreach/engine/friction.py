"""Friction: each fired trigger restated as the specific, quantified problem the customer already feels.

The statement is built only from the signal's figures, so every number in it is true; drafting later checks
that every number in an email appears among these figures. Statements and strengths are computed in DuckDB
over ``signal_rows`` (see :mod:`outreach.engine.triggers`); only the display names of features, integrations,
departments and add-ons are looked up in Python, once per distinct name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

import duckdb
import orjson
from pydantic import BaseModel, ConfigDict, Field

from outreach.engine.catalog import Catalog
from outreach.engine.rules import Rules
from outreach.engine.tables import TEXT, create_table
from outreach.engine.triggers import Figure
from outreach.types import Motion, SignalKind


class Friction(BaseModel):
    """A fired trigger with its plain-language statement, figures, window and evidence."""

    model_config = ConfigDict(frozen=True)

    kind: SignalKind
    motion: Motion
    subject: str | None = None
    statement: str
    figures: dict[str, Figure] = Field(default_factory=dict)
    evidence: list[str] = Field(default_factory=list)
    window_days: int | None = None
    strength: float = 0.0

    @property
    def id(self) -> str:
        """Stable id within an account: kind plus subject (``repeated_limit_hits:reports``)."""
        return f"{self.kind}:{self.subject}" if self.subject else self.kind


class FrictionRecord(TypedDict):
    """:class:`Friction` as the plain dict the engine computes (validated into Friction only when asked)."""

    kind: SignalKind
    motion: Motion
    subject: str | None
    statement: str
    figures: dict[str, Figure]
    window_days: int | None
    strength: float
    evidence: list[str]


def frictions(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, rules: Rules
) -> dict[str, list[FrictionRecord]]:
    """Every account's frictions from ``signal_rows``, strongest first (ties by kind, then subject).

    Strength is a kind weight times how far past its threshold the signal is (capped at 3x); it picks the
    primary friction when several fire.
    """
    rank_frictions(con, catalog, rules)
    result: dict[str, list[FrictionRecord]] = {}
    rows = con.execute(
        "SELECT account_id, kind, motion, subject, statement, figures::VARCHAR, window_days, strength, evidence "
        "FROM friction_rows ORDER BY ord, pos"
    ).fetchall()
    loads = orjson.loads
    for account_id, kind, motion, subject, statement, figures, window_days, strength, evidence in rows:
        record: FrictionRecord = {
            "kind": kind,
            "motion": motion,
            "subject": subject,
            "statement": statement,
            "figures": loads(figures),
            "window_days": window_days,
            "strength": strength,
            "evidence": evidence,
        }
        found = result.get(account_id)
        if found is None:
            result[account_id] = [record]
        else:
            found.append(record)
    return result


def display_name(name: str) -> str:
    """How an integration or department reads in a sentence: ``hubspot`` → HubSpot, ``sales_ops`` → Sales Ops."""
    special = {"hubspot": "HubSpot", "bigquery": "BigQuery", "sso": "SSO", "api": "API"}
    return special.get(name.lower(), name.replace("_", " ").title() if name.islower() else name)


def feature_name(name: str) -> str:
    return {"sso": "SSO", "api_access": "API access", "audit_log": "audit log"}.get(
        name, name.replace("_", " ")
    )


def _register_names(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> None:
    """``subject_name``: the display name of each distinct subject that statements spell out."""
    addons = {addon.id: addon.name for addon in catalog.addons}
    named = con.execute(
        "SELECT DISTINCT kind, subject FROM signal_rows WHERE kind IN "
        "('locked_feature', 'integration_request', 'new_department', 'addon_page_visits') AND subject IS NOT NULL"
    ).fetchall()
    names: dict[str, Callable[[str], str]] = {
        "locked_feature": feature_name,
        "integration_request": display_name,
        "new_department": display_name,
        "addon_page_visits": lambda subject: addons.get(subject, subject),
    }
    create_table(
        con,
        "subject_name",
        {"kind": TEXT, "subject": TEXT, "name": TEXT},
        [(kind, subject, names[kind](subject)) for kind, subject in named],
    )


def _f(key: str) -> str:
    return f"(figures->>'{key}')"


def _i(key: str) -> str:
    return f"(figures->>'{key}')::BIGINT"


def _d(key: str) -> str:
    return f"(figures->>'{key}')::DOUBLE"


def _n(key: str) -> str:
    """Large counts read better grouped (870,000); the figure itself stays a number."""
    kind = f"json_type(figures, '$.{key}')"
    return (
        f"(CASE WHEN {kind} IN ('BIGINT', 'UBIGINT') AND abs({_d(key)}) >= 10000 THEN format('{{:,}}', {_i(key)}) "
        f"WHEN {kind} = 'DOUBLE' AND abs({_d(key)}) >= 10000 THEN format('{{:,}}', {_d(key)}) "
        f"ELSE {_f(key)} END)"
    )


def _times(expr: str) -> str:
    return f"(CASE WHEN {expr} = 1 THEN 'once' WHEN {expr} = 2 THEN 'twice' ELSE {expr} || ' times' END)"


def _label(expr: str) -> str:
    return f"replace({expr}, '_', ' ')"


def _has(key: str) -> str:
    return f"((figures->'{key}') IS NOT NULL)"


_WINDOW = (
    "(CASE WHEN coalesce(window_days, 0) <> 0 THEN 'in the last ' || window_days || ' days' ELSE '' END)"
)
_WHITESPACE = "' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)"

_STATEMENTS = {
    "repeated_limit_hits": (
        f"'hit the ' || {_label(_f('limit'))} || ' limit ' || {_times(_i('hits'))} || ' ' || {_WINDOW} || "
        f"CASE WHEN {_has('cap')} THEN ' (cap ' || {_n('cap')} || ')' ELSE '' END"
    ),
    "usage_near_limit": (
        f"'is using ' || {_n('used')} || ' of ' || {_n('cap')} || ' ' || {_label(_f('metric'))} || "
        f"' allowed by the plan (' || {_f('pct')} || '%)'"
    ),
    "seat_pressure": (
        f"concat_ws(' and ', CASE WHEN {_has('seats_used')} AND {_has('seats')} THEN "
        f"'has ' || {_f('seats_used')} || ' of ' || {_f('seats')} || ' seats in use' END, "
        f"CASE WHEN {_has('swaps')} THEN 'removed users to make room for new invites ' || {_times(_i('swaps'))} "
        f"|| ' ' || {_WINDOW} END)"
    ),
    "locked_feature": f"'clicked the locked ' || name || ' feature ' || {_times(_i('clicks'))} || ' ' || {_WINDOW}",
    "headcount_growth": (
        f"'grew from ' || {_f('employees_at_contract')} || ' to ' || {_f('employees_now')} || "
        f"' employees since the contract started (+' || {_f('growth_pct')} || '%)'"
    ),
    "strong_nps": f"'gave an NPS score of ' || {_f('nps')}",
    "integration_request": (
        f"'asked about a ' || name || ' integration (' || concat_ws(' and ', "
        f"CASE WHEN {_i('requests')} <> 0 THEN 'asked for it in the product ' || {_times(_i('requests'))} END, "
        f"CASE WHEN {_i('tickets')} <> 0 THEN 'in ' || {_i('tickets')} || ' support ticket' || "
        f"CASE WHEN {_i('tickets')} <> 1 THEN 's' ELSE '' END END) || ') ' || {_WINDOW}"
    ),
    "frequent_exports": (
        f"'exported data ' || {_f('exports')} || ' times ' || {_WINDOW} || "
        f"CASE WHEN json_type(figures, '$.rows') IN ('BIGINT', 'UBIGINT') "
        f"THEN ' (' || format('{{:,}}', {_i('rows')}) || ' rows)' ELSE '' END"
    ),
    "ticket_topic_cluster": (
        f"'opened ' || {_f('tickets')} || ' of ' || {_f('total_tickets')} || ' support tickets about ' || "
        f"{_label(_f('topic'))} || ' ' || {_WINDOW} || ' (' || {_f('share_pct')} || '%)'"
    ),
    "addon_page_visits": f"'viewed the ' || name || ' page ' || {_times(_i('visits'))} || ' ' || {_WINDOW}",
    "new_department": (
        f"'invited ' || {_i('invites')} || ' user' || CASE WHEN {_i('invites')} <> 1 THEN 's' ELSE '' END || "
        f"' from ' || name || ', a department new to the account, ' || {_WINDOW}"
    ),
    "workflow_abandoned": (
        f"'abandoned the ' || {_label(_f('workflow'))} || ' workflow' || "
        f"CASE WHEN coalesce({_f('step')}, '') <> '' THEN ' at the ' || {_label(_f('step'))} || ' step' ELSE '' END "
        f"|| ' ' || {_times(_i('abandons'))} || ' ' || {_WINDOW}"
    ),
}

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


def _ratio_sql(rules: Rules) -> dict[SignalKind, str]:
    """How far past its threshold each kind of signal is (1.0 = just at it)."""
    t = rules.triggers

    def per(key: str, threshold: float) -> str:
        return f"{_d(key)} / {float(threshold)!r}::DOUBLE"

    requests = (
        f"(({_d('requests')} + {_d('tickets')}) / {float(t.integration_request.min_requests)!r}::DOUBLE)"
    )
    return {
        "repeated_limit_hits": per("hits", t.repeated_limit_hits.min_hits),
        "usage_near_limit": per("pct", 100 * t.usage_near_limit.pct),
        "seat_pressure": (
            f"greatest(coalesce({_d('pct')}, 0.0) / {100 * t.seat_pressure.pct!r}::DOUBLE, coalesce({_d('swaps')}, 0.0) / 2)"
        ),
        "locked_feature": per("clicks", t.locked_feature.min_clicks),
        "headcount_growth": per("growth_pct", 100 * t.headcount_growth.pct),
        "strong_nps": "1.0::DOUBLE",
        "integration_request": f"(CASE WHEN {requests} > 1 THEN 1 + log2({requests}) ELSE {requests} END)",
        "frequent_exports": per("exports", t.frequent_exports.min_exports),
        "ticket_topic_cluster": per("share_pct", 100 * t.ticket_topic_cluster.share),
        "addon_page_visits": per("visits", t.addon_page_visits.min_visits),
        "new_department": per("invites", t.new_department.min_invites),
        "workflow_abandoned": per("abandons", t.workflow_abandoned.min_abandons),
    }


def rank_frictions(con: duckdb.DuckDBPyConnection, catalog: Catalog, rules: Rules) -> None:
    """``friction_rows``: ``signal_rows`` worded and ranked. Adds ``statement``, ``strength``, ``pos`` (1 = the
    account's strongest friction; ties by kind, then subject) and ``fid`` (the friction id, kind:subject)."""
    _register_names(con, catalog)
    ratios = _ratio_sql(rules)
    statement = " ".join(f"WHEN '{kind}' THEN {sql}" for kind, sql in _STATEMENTS.items())
    strength = " ".join(
        f"WHEN '{kind}' THEN round_even({weight!r}::DOUBLE * least({ratios[kind]}, 3.0::DOUBLE), 4)"
        for kind, weight in _KIND_WEIGHT.items()
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE friction_rows AS
        SELECT *, row_number() OVER (PARTITION BY account_id ORDER BY strength DESC, kind, coalesce(subject, ''))
                  AS pos,
               CASE WHEN coalesce(subject, '') <> '' THEN kind || ':' || subject ELSE kind END AS fid
        FROM (
            SELECT s.ord, s.account_id, s.kind, s.motion, s.subject,
                   trim(CASE s.kind {statement} END, {_WHITESPACE}) AS statement,
                   s.figures, s.window_days, (CASE s.kind {strength} END)::DOUBLE AS strength, s.evidence
            FROM (SELECT r.*, n.name FROM signal_rows r
                  LEFT JOIN subject_name n ON n.kind = r.kind AND n.subject = r.subject) s
        )
        """
    )
