"""Seats at the cap, or users removed to make room for new invites: people wait for access or lose theirs."""

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
    product_name,
)


class SeatPressure(WindowSettings):
    pct: float = Field(default=0.9, gt=0, le=1)
    min_swaps: int = Field(default=2, gt=0, description="Removals each followed by an invite that fire it alone.")
    swap_window_hours: int = Field(default=48, gt=0, description="How soon after a removal the invite comes.")
    weight: float = Field(default=1.0, ge=0)


def query(ctx: Detection, s: SeatPressure) -> str:
    pct = sql.double(s.pct)
    at_cap = f"coalesce(seat_cap, 0) <> 0 AND seats_used IS NOT NULL AND seats_used / seat_cap >= {pct}"
    return f"""
        WITH swaps AS (
            SELECT r.account_id, list(r.message_id ORDER BY r.ts DESC, r.line DESC) AS ids
            FROM events r
            WHERE r.event = {sql.text(ctx.events.user_removed)} AND r.ts >= {ctx.since(s.window_days)}
              AND r.ts < {ctx.end_sql}
              AND EXISTS (SELECT 1 FROM events i WHERE i.account_id = r.account_id
                          AND i.event = {sql.text(ctx.events.user_invited)} AND i.ts >= r.ts
                          AND i.ts <= r.ts + INTERVAL {s.swap_window_hours} HOUR AND i.ts < {ctx.end_sql})
            GROUP BY r.account_id
        ),
        seats AS (
            SELECT d.account_id,
                   CASE WHEN coalesce(d.seats_purchased, 0) <> 0 THEN d.seats_purchased ELSE l.cap END AS seat_cap,
                   s.message_id AS snapshot_id,
                   CASE WHEN s.stamp >= {ctx.since(s.window_days)} THEN s.used END AS seats_used,
                   coalesce(w.ids, []::VARCHAR[]) AS swaps
            FROM account_dim d
            LEFT JOIN plan_limit l ON l.plan = d.plan AND l.metric = 'seats'
            LEFT JOIN usage_snapshot s ON s.account_id = d.account_id AND s.metric = 'seats'
            LEFT JOIN swaps w ON w.account_id = d.account_id
        )
        SELECT account_id, 'seats' AS subject,
               CASE WHEN {at_cap}
                    THEN json_merge_patch(
                        json_object('seats_used', {sql.num("seats_used")}, 'seats', seat_cap,
                                    'pct', round_even(100 * seats_used / seat_cap, 0)::BIGINT),
                        json_object('swaps', CASE WHEN len(swaps) >= {s.min_swaps} THEN len(swaps) END))
                    ELSE json_merge_patch(
                        json_object('swaps', len(swaps), 'window_days', {s.window_days}),
                        json_object('seats', CASE WHEN coalesce(seat_cap, 0) <> 0 THEN seat_cap END,
                                    'seats_used', {sql.num("seats_used")}))
               END AS figures,
               CASE WHEN {at_cap} THEN list_concat([snapshot_id], swaps)[1:{ctx.evidence_cap}]
                    ELSE swaps[1:{ctx.evidence_cap}] END AS evidence,
               {s.window_days} AS window_days
        FROM seats
        WHERE ({at_cap}) OR len(swaps) >= {s.min_swaps}"""


def headline(signal: SignalView, catalog: Catalog) -> str:
    f = signal.figures
    if "seats_used" in f and "seats" in f:
        return f"{figure_text(f['seats_used'])} of {figure_text(f['seats'])} seats in use"
    return f"Room for new people on {product_name(catalog)}"


def opening(signal: SignalView, _catalog: Catalog, _plan: str) -> str:
    f = signal.figures
    if "seats_used" in f and "seats" in f:
        return (f"{figure_text(f['seats_used'])} of your {figure_text(f['seats'])} seats are in use. Adding someone "
                "new means taking access away from someone else.")
    return "Your admins have had to remove people to make room for new ones. Someone is always waiting for access."


SPEC = TriggerSpec(
    kind="seat_pressure",
    motion="upsell",
    settings=SeatPressure,
    summary=(
        "seats in use ≥ {pct:.0%} of `seats_purchased` (or the plan's seat limit), or ≥ {min_swaps} "
        "`{events.user_removed}` each followed within {swap_window_hours} h by a `{events.user_invited}` in "
        "{window_days} days"
    ),
    figures=("seats_used", "seats", "pct", "swaps", "window_days"),
    query=query,
    snapshot_days=lambda s: s.window_days,
    # Seats at the pressure threshold are this trigger's, never also a usage-near-limit signal.
    snapshot_claim=lambda s: f"metric = 'seats' AND used / cap >= {sql.double(s.pct)}",
    statement=(
        f"concat_ws(' and ', CASE WHEN {sql.has('seats_used')} AND {sql.has('seats')} THEN "
        f"'has ' || {sql.fig('seats_used')} || ' of ' || {sql.fig('seats')} || ' seats in use' END, "
        f"CASE WHEN {sql.has('swaps')} THEN 'removed users to make room for new invites ' || "
        f"{sql.times(sql.fig_int('swaps'))} || ' ' || {sql.WINDOW} END)"
    ),
    strength=lambda s: (
        f"greatest(coalesce({sql.fig_double('pct')}, 0.0) / {100 * s.pct!r}::DOUBLE, "
        f"coalesce({sql.fig_double('swaps')}, 0.0) / {s.min_swaps})"
    ),
    seat_demand=sql.SEATS_IN_USE,
    wording=Wording(
        headline=headline, opening=opening, terms=lambda s, c: ("seat",), bridge=lambda s, c: "For more seats", consequence="That usually means someone waits for access, or loses theirs to make room."
    ),
    example=Example(
        subject="seats",
        figures={"seats_used": 19, "seats": 20, "pct": 95},
        window_days=30,
        statement="has 19 of 20 seats in use",
        strength=1.0556,
    ),
)
