"""The company grew well past its size at contract: more people will need seats and shared work."""

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
    figure_text,
    product_name,
)


class HeadcountGrowth(TriggerSettings):
    pct: float = Field(default=0.25, gt=0)
    weight: float = Field(default=0.5, ge=0)


def query(_ctx: Detection, s: HeadcountGrowth) -> str:
    return f"""
        SELECT account_id, 'employees' AS subject,
               json_object('employees_at_contract', employees_at_contract, 'employees_now', employees_now,
                           'growth_pct', round_even(100 * (employees_now / employees_at_contract - 1), 0)::BIGINT)
                   AS figures,
               ['accounts.csv:employees_now'] AS evidence, NULL AS window_days
        FROM account_dim
        WHERE coalesce(employees_at_contract, 0) <> 0 AND coalesce(employees_now, 0) <> 0
          AND employees_now / employees_at_contract - 1 >= {sql.double(s.pct - 1e-9)}"""


def headline(signal: SignalView, _catalog: Catalog) -> str:
    f = signal.figures
    return f"Growing from {figure_text(f['employees_at_contract'])} to {figure_text(f['employees_now'])} people"


def opening(signal: SignalView, catalog: Catalog, _plan: str) -> str:
    f = signal.figures
    return (f"Your company has grown from {figure_text(f['employees_at_contract'])} to "
            f"{figure_text(f['employees_now'])} people since you started with {product_name(catalog)}. More people "
            "usually means more seats and more shared work.")


SPEC = TriggerSpec(
    kind="headcount_growth",
    motion="upsell",
    settings=HeadcountGrowth,
    summary="`employees_now` ≥ {pct:.0%} more than `employees_at_contract`",
    figures=("employees_at_contract", "employees_now", "growth_pct"),
    query=query,
    statement=(
        f"'grew from ' || {sql.fig('employees_at_contract')} || ' to ' || {sql.fig('employees_now')} || "
        f"' employees since the contract started (+' || {sql.fig('growth_pct')} || '%)'"
    ),
    strength=lambda s: sql.ratio("growth_pct", 100 * s.pct),
    seat_demand=(
        "m.seats::DOUBLE * ((f.figures->>'employees_now')::DOUBLE / (f.figures->>'employees_at_contract')::DOUBLE)"
    ),
    wording=Wording(
        headline=headline, opening=opening, terms=lambda s, c: ("seat", "people"), bridge=lambda s, c: "For the new people on your team",
        consequence="More people usually means more seats and more shared work in {product_name}.",
        speaker="Your company",
    ),
    example=Example(
        subject="employees",
        figures={"employees_at_contract": 40, "employees_now": 52, "growth_pct": 30},
        window_days=None,
        statement="grew from 40 to 52 employees since the contract started (+30%)",
        strength=0.6,
    ),
)
