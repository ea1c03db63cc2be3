"""Repeated visits to the page of an add-on the account does not own: the team is weighing it up."""

from __future__ import annotations

from pydantic import Field

from outreach.engine.catalog import Catalog
from outreach.engine.names import label
from outreach.engine.triggers import sql
from outreach.engine.triggers.spec import Detection, Example, SignalView, TriggerSpec, WindowSettings, Wording


class AddonPageVisits(WindowSettings):
    min_visits: int = Field(default=3, gt=0)
    weight: float = Field(default=0.6, ge=0)


def query(ctx: Detection, s: AddonPageVisits) -> str:
    addon_ids = sql.texts(addon.id for addon in ctx.catalog.addons)
    return f"""
        SELECT g.account_id, g.subject,
               json_object('addon', g.subject, 'visits', g.n, 'window_days', {s.window_days}) AS figures,
               g.evidence, {s.window_days} AS window_days
        FROM ({ctx.grouped(ctx.events.page_viewed, "addon", s.window_days, s.min_visits)}) g
        JOIN account_dim d USING (account_id)
        WHERE list_contains({addon_ids}, g.subject) AND NOT list_contains(d.addons, g.subject)"""


def addon_name(addon_id: str, catalog: Catalog) -> str:
    for addon in catalog.addons:
        if addon.id == addon_id:
            return addon.name
    return addon_id


def _name(signal: SignalView, catalog: Catalog) -> str:
    addon_id = str(signal.figures["addon"])
    try:
        return catalog.addon(addon_id).name
    except KeyError:
        return label(addon_id)


def headline(signal: SignalView, catalog: Catalog) -> str:
    return f"{_name(signal, catalog)}, if it is on your list"


def opening(signal: SignalView, catalog: Catalog, _plan: str) -> str:
    return f"If {_name(signal, catalog)} is something your team is weighing up, here is what it would change."


SPEC = TriggerSpec(
    kind="addon_page_visits",
    motion="cross_sell",
    settings=AddonPageVisits,
    summary=(
        "≥ {min_visits} `{events.page_viewed}` with the same `addon` in {window_days} days, for an add-on the "
        "account does not own"
    ),
    figures=("addon", "visits", "window_days"),
    query=query,
    subject_name=addon_name,
    statement=f"'viewed the ' || name || ' page ' || {sql.times(sql.fig_int('visits'))} || ' ' || {sql.WINDOW}",
    strength=lambda s: sql.ratio("visits", s.min_visits),
    offer_keys=("{addon}",),
    wording=Wording(
        headline=headline, opening=opening, terms=lambda s, c: (_name(s, c),), bridge=lambda s, c: f"For {_name(s, c)}", consequence="It looked like the team was weighing it up."),
    example=Example(
        subject="hubspot-sync",
        figures={"addon": "hubspot-sync", "visits": 5, "window_days": 30},
        window_days=30,
        statement="viewed the HubSpot Sync page 5 times in the last 30 days",
        strength=1.0,
    ),
)
