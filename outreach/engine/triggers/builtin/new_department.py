"""Invites from a department the account has not had before: a new team, maybe a new budget line."""

from __future__ import annotations

from pydantic import Field

from outreach.engine.catalog import Catalog
from outreach.engine.names import proper_name
from outreach.engine.triggers import sql
from outreach.engine.triggers.spec import (
    Detection,
    Example,
    SignalView,
    TriggerSpec,
    WindowSettings,
    Wording,
    product_name,
)


class NewDepartment(WindowSettings):
    min_invites: int = Field(default=1, gt=0)
    weight: float = Field(default=0.5, ge=0)


def query(ctx: Detection, s: NewDepartment) -> str:
    start = ctx.since(s.window_days)
    return f"""
        WITH dept_invites AS (
            SELECT account_id, props->>'department' AS department, ts, line, message_id FROM events
            WHERE event = {sql.text(ctx.events.user_invited)} AND ts < {ctx.end_sql}
              AND props->>'department' IS NOT NULL AND props->>'department' <> ''
        ),
        dept_firsts AS (SELECT account_id, department, min(ts) AS first_ts FROM dept_invites GROUP BY ALL),
        dept_before AS (SELECT DISTINCT account_id FROM dept_invites WHERE ts < {start})
        SELECT account_id, department AS subject,
               json_object('department', department, 'invites', n, 'window_days', {s.window_days}) AS figures,
               evidence, {s.window_days} AS window_days
        FROM (
            SELECT i.account_id, i.department, count(*) AS n,
                   {ctx.newest("i.message_id", "(i.ts, i.line)")} AS evidence
            FROM dept_invites i JOIN dept_firsts f USING (account_id, department)
            SEMI JOIN dept_before b USING (account_id)
            WHERE f.first_ts >= {start} AND i.ts >= {start}
            GROUP BY ALL HAVING count(*) >= {s.min_invites}
        )"""


def _department(signal: SignalView) -> str:
    return proper_name(str(signal.figures["department"]))


def headline(signal: SignalView, _catalog: Catalog) -> str:
    return f"Welcome to {_department(signal)}"


def opening(signal: SignalView, catalog: Catalog, _plan: str) -> str:
    return (f"{_department(signal)} has started working in {product_name(catalog)} alongside your team, which usually "
            "brings new reports and new people to set up.")


SPEC = TriggerSpec(
    kind="new_department",
    motion="cross_sell",
    settings=NewDepartment,
    summary=(
        "≥ {min_invites} `{events.user_invited}` in {window_days} days from a department never seen in earlier "
        "invites"
    ),
    figures=("department", "invites", "window_days"),
    query=query,
    subject_name=lambda subject, _catalog: proper_name(subject),
    statement=(
        f"'invited ' || {sql.fig_int('invites')} || ' user' || CASE WHEN {sql.fig_int('invites')} <> 1 "
        f"THEN 's' ELSE '' END || ' from ' || name || ', a department new to the account, ' || {sql.WINDOW}"
    ),
    strength=lambda s: sql.ratio("invites", s.min_invites),
    offer_keys=("department:{department}", "new_department"),
    wording=Wording(
        headline=headline, opening=opening, terms=lambda s, c: (_department(s),), bridge=lambda s, c: f"For {_department(s)}", consequence="Welcome to the new team."),
    example=Example(
        subject="Finance",
        figures={"department": "Finance", "invites": 3, "window_days": 30},
        window_days=30,
        statement="invited 3 users from Finance, a department new to the account, in the last 30 days",
        strength=1.5,
    ),
)
