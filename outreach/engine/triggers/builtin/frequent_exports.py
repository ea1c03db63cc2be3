"""Many exports in a short window: the work is happening outside the product."""

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
    product_name,
)


class FrequentExports(WindowSettings):
    window_days: int = Field(default=14, gt=0)
    min_exports: int = Field(default=8, gt=0)
    weight: float = Field(default=0.7, ge=0)


def query(ctx: Detection, s: FrequentExports) -> str:
    return f"""
        SELECT account_id, NULL AS subject,
               json_merge_patch(json_object('exports', n, 'window_days', {s.window_days}),
                                json_object('rows', rows)) AS figures,
               evidence, {s.window_days} AS window_days
        FROM (
            SELECT account_id, count(*) AS n, sum(TRY_CAST(props->>'rows' AS BIGINT)) AS rows,
                   {ctx.newest("message_id", "(ts, line)")} AS evidence
            FROM events
            WHERE event = {sql.text(ctx.events.export_created)} AND ts >= {ctx.since(s.window_days)}
              AND ts < {ctx.end_sql}
            GROUP BY account_id HAVING count(*) >= {s.min_exports}
        )"""


def headline(_signal: SignalView, catalog: Catalog) -> str:
    return f"Fewer manual exports from {product_name(catalog)}"


def opening(_signal: SignalView, catalog: Catalog, _plan: str) -> str:
    return (f"Your team regularly exports data out of {product_name(catalog)} to use it elsewhere. That is time spent "
            "on downloads and spreadsheets instead of on the numbers.")


SPEC = TriggerSpec(
    kind="frequent_exports",
    motion="cross_sell",
    settings=FrequentExports,
    summary="≥ {min_exports} `{events.export_created}` in {window_days} days (work is happening outside the product)",
    figures=("exports", "window_days", "rows"),
    query=query,
    statement=(
        f"'exported data ' || {sql.fig('exports')} || ' times ' || {sql.WINDOW} || "
        f"CASE WHEN json_type(figures, '$.rows') IN ('BIGINT', 'UBIGINT') "
        f"THEN ' (' || format('{{:,}}', {sql.fig_int('rows')}) || ' rows)' ELSE '' END"
    ),
    strength=lambda s: sql.ratio("exports", s.min_exports),
    offer_keys=("frequent_exports", "exports"),
    wording=Wording(
        headline=headline, opening=opening, terms=lambda s, c: ("export", "spreadsheet", "download", "CSV"), bridge=lambda s, c: "To take the manual exports off your team's plate", consequence="That much exporting usually means the work is happening in spreadsheets instead."
    ),
    example=Example(
        subject=None,
        figures={"exports": 9, "window_days": 14, "rows": 870000},
        window_days=14,
        statement="exported data 9 times in the last 14 days (870,000 rows)",
        strength=0.7875,
    ),
)
