"""The latest usage snapshot of a metric is close to the plan's limit: the cap is about to get in the way."""

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


class UsageNearLimit(WindowSettings):
    pct: float = Field(default=0.8, gt=0, le=1)
    window_days: int = Field(default=30, gt=0, description="A usage snapshot older than this is ignored.")
    weight: float = Field(default=0.9, ge=0)


def query(ctx: Detection, s: UsageNearLimit) -> str:
    return f"""
        SELECT account_id, metric AS subject,
               json_object('metric', metric, 'used', {sql.num("used")}, 'cap', cap,
                           'pct', round_even(100 * (used / cap), 0)::BIGINT) AS figures,
               [message_id] AS evidence, {s.window_days} AS window_days
        FROM usage_snapshot
        WHERE stamp >= {ctx.since(s.window_days)} AND coalesce(cap, 0) <> 0 AND NOT claimed
          AND used / cap >= {sql.double(s.pct)}"""


def _metric(signal: SignalView, catalog: Catalog) -> str:
    return catalog.metric_label(str(signal.figures["metric"]))


def headline(signal: SignalView, catalog: Catalog) -> str:
    f = signal.figures
    return f"{figure_text(f['used'])} of your {figure_text(f['cap'])} {_metric(signal, catalog)}"


def opening(signal: SignalView, catalog: Catalog, plan: str) -> str:
    f = signal.figures
    return (f"You are using {figure_text(f['used'])} of the {figure_text(f['cap'])} {_metric(signal, catalog)} your "
            f"{plan} plan includes. One busy week could stop the work at the cap.")


SPEC = TriggerSpec(
    kind="usage_near_limit",
    motion="upsell",
    settings=UsageNearLimit,
    summary=(
        "the latest `{events.usage_reported}` snapshot of a metric (≤ {window_days} days old) is ≥ {pct:.0%} of "
        "the plan limit"
    ),
    figures=("metric", "used", "cap", "pct"),
    query=query,
    snapshot_days=lambda s: s.window_days,
    statement=(
        f"'is using ' || {sql.grouped('used')} || ' of ' || {sql.grouped('cap')} || ' ' || "
        f"{sql.label(sql.fig('metric'))} || ' allowed by the plan (' || {sql.fig('pct')} || '%)'"
    ),
    strength=lambda s: sql.ratio("pct", 100 * s.pct),
    limit_figure="metric",
    usage_figures=("used",),
    wording=Wording(
        headline=headline, opening=opening, terms=lambda s, c: (_metric(s, c),), bridge=lambda s, c: f"For more {_metric(s, c)}", consequence="At this pace the team will run into the cap soon."),
    example=Example(
        subject="storage_gb",
        figures={"metric": "storage_gb", "used": 12.5, "cap": 15, "pct": 83},
        window_days=30,
        statement="is using 12.5 of 15 storage gb allowed by the plan (83%)",
        strength=0.9338,
    ),
)
