"""The same plan limit hit again and again: the plan's cap is in the way of real work."""

from __future__ import annotations

from pydantic import Field

from outreach.engine.catalog import Catalog
from outreach.engine.triggers import sql
from outreach.engine.triggers.spec import (
    Detection,
    Example,
    SignalView,
    TriggerSpec,
    WindowSettings,
    Wording,
    figure_text,
)


class RepeatedLimitHits(WindowSettings):
    min_hits: int = Field(default=3, gt=0)
    weight: float = Field(default=1.0, ge=0)


def query(ctx: Detection, s: RepeatedLimitHits) -> str:
    return f"""
        SELECT account_id, subject,
               json_merge_patch(
                   json_object('limit', subject, 'hits', n, 'window_days', {s.window_days}),
                   json_object('cap', coalesce({sql.num("max_cap")}, to_json(l.cap)), 'max_used', {sql.num("max_used")})
               ) AS figures,
               evidence, {s.window_days} AS window_days
        FROM (
            SELECT account_id, props->>'limit' AS subject, count(*) AS n,
                   {ctx.newest("message_id", "(ts, line)")} AS evidence,
                   max(TRY_CAST(props->>'used' AS DOUBLE)) AS max_used, max(TRY_CAST(props->>'cap' AS DOUBLE)) AS max_cap
            FROM events
            WHERE event = {sql.text(ctx.events.limit_reached)} AND ts >= {ctx.since(s.window_days)} AND ts < {ctx.end_sql}
              AND props->>'limit' IS NOT NULL
            GROUP BY ALL HAVING count(*) >= {s.min_hits}
        ) limit_hits JOIN account_dim d USING (account_id)
        LEFT JOIN plan_limit l ON l.plan = d.plan AND l.metric = limit_hits.subject"""


def _metric(signal: SignalView, catalog: Catalog) -> str:
    return catalog.metric_label(str(signal.figures["limit"]))


def headline(signal: SignalView, catalog: Catalog) -> str:
    f = signal.figures
    return f"Room beyond {figure_text(f['cap'])} {_metric(signal, catalog)}" if "cap" in f \
        else f"More room for {_metric(signal, catalog)}"


def opening(signal: SignalView, catalog: Catalog, plan: str) -> str:
    f = signal.figures
    metric = _metric(signal, catalog)
    cap = f"cap of {figure_text(f['cap'])} {metric}" if "cap" in f else f"{metric} limit"
    return (f"Your team's work keeps running into the {plan} plan's {cap}. Each time, the work waits until someone "
            "makes room or the limit resets.")


SPEC = TriggerSpec(
    kind="repeated_limit_hits",
    motion="upsell",
    settings=RepeatedLimitHits,
    summary="`{events.limit_reached}` for the same `limit` ≥ {min_hits} times in {window_days} days",
    figures=("limit", "hits", "window_days", "cap", "max_used"),
    query=query,
    statement=(
        f"'hit the ' || {sql.label(sql.fig('limit'))} || ' limit ' || {sql.times(sql.fig_int('hits'))} || ' ' "
        f"|| {sql.WINDOW} || CASE WHEN {sql.has('cap')} THEN ' (cap ' || {sql.grouped('cap')} || ')' ELSE '' END"
    ),
    strength=lambda s: sql.ratio("hits", s.min_hits),
    limit_figure="limit",
    usage_figures=("max_used",),
    wording=Wording(
        headline=headline, opening=opening, terms=lambda s, c: (_metric(s, c),), bridge=lambda s, c: f"For more {_metric(s, c)}", consequence="Each time, work waits until someone clears space or the limit resets."),
    example=Example(
        subject="reports",
        figures={"limit": "reports", "hits": 3, "window_days": 30, "cap": 50, "max_used": 50},
        window_days=30,
        statement="hit the reports limit 3 times in the last 30 days (cap 50)",
        strength=1.0,
    ),
)
