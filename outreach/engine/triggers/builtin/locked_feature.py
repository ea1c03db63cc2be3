"""A feature of a higher plan clicked again and again: the team wants to use it for real work."""

from __future__ import annotations

from pydantic import Field

from outreach.engine.catalog import Catalog
from outreach.engine.names import label, title
from outreach.engine.triggers import sql
from outreach.engine.triggers.spec import Detection, Example, SignalView, TriggerSpec, WindowSettings, Wording


class LockedFeature(WindowSettings):
    min_clicks: int = Field(default=3, gt=0)
    weight: float = Field(default=0.8, ge=0)


def query(ctx: Detection, s: LockedFeature) -> str:
    return f"""
        SELECT account_id, subject,
               json_object('feature', subject, 'clicks', n, 'window_days', {s.window_days}) AS figures,
               evidence, {s.window_days} AS window_days
        FROM ({ctx.grouped(ctx.events.locked_feature_clicked, "feature", s.window_days, s.min_clicks)})"""


def headline(signal: SignalView, _catalog: Catalog) -> str:
    return f"{title(str(signal.figures['feature']))} for your team"


def opening(signal: SignalView, _catalog: Catalog, plan: str) -> str:
    return (f"Your {plan} plan does not include {label(str(signal.figures['feature']))} yet. It looks like your team "
            "could use it in its day-to-day work.")


SPEC = TriggerSpec(
    kind="locked_feature",
    motion="upsell",
    settings=LockedFeature,
    summary="`{events.locked_feature_clicked}` on the same feature ≥ {min_clicks} times in {window_days} days",
    figures=("feature", "clicks", "window_days"),
    query=query,
    subject_name=lambda subject, _catalog: label(subject),
    statement=(
        f"'clicked the locked ' || name || ' feature ' || {sql.times(sql.fig_int('clicks'))} || ' ' || {sql.WINDOW}"
    ),
    strength=lambda s: sql.ratio("clicks", s.min_clicks),
    offer_keys=("feature:{feature}",),
    feature_figure="feature",
    wording=Wording(
        headline=headline, opening=opening, terms=lambda s, c: (label(str(s.figures["feature"])),), bridge=lambda s, c: f"For {label(str(s.figures['feature']))}", consequence="It looks like the team wants to use it for real work, not just a look."
    ),
    example=Example(
        subject="sso",
        figures={"feature": "sso", "clicks": 4, "window_days": 30},
        window_days=30,
        statement="clicked the locked SSO feature 4 times in the last 30 days",
        strength=1.0667,
    ),
)
