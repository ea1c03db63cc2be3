"""A promoter on an activated account: a good moment to talk about the next tier."""

from __future__ import annotations

from pydantic import Field

from outreach.engine.catalog import Catalog
from outreach.engine.triggers import sql
from outreach.engine.triggers.spec import (
    Detection,
    Example,
    SignalView,
    TriggerSettings,
    TriggerSpec,
    Wording,
    product_name,
)


class StrongNps(TriggerSettings):
    min_nps: int = Field(default=9, ge=0, le=10)
    weight: float = Field(default=0.3, ge=0)


def query(_ctx: Detection, s: StrongNps) -> str:
    return f"""
        SELECT account_id, 'nps' AS subject, json_object('nps', nps) AS figures, ['accounts.csv:nps'] AS evidence,
               NULL AS window_days
        FROM account_dim WHERE nps IS NOT NULL AND nps >= {s.min_nps} AND activated"""


def headline(_signal: SignalView, _catalog: Catalog) -> str:
    return "Thank you for the kind words"


def opening(_signal: SignalView, catalog: Catalog, _plan: str) -> str:
    return f"Thank you for the score you gave us recently; it is good to hear {product_name(catalog)} is working for your team."


SPEC = TriggerSpec(
    kind="strong_nps",
    motion="upsell",
    settings=StrongNps,
    summary="NPS ≥ {min_nps} on an activated account",
    figures=("nps",),
    query=query,
    statement=f"'gave an NPS score of ' || {sql.fig('nps')}",
    strength=lambda _s: "1.0::DOUBLE",
    next_plan="a promoter ready for the next tier",
    wording=Wording(
        headline=headline, opening=opening, consequence="Thank you, that is good to hear."),
    example=Example(
        subject="nps", figures={"nps": 10}, window_days=None, statement="gave an NPS score of 10", strength=0.3
    ),
)
