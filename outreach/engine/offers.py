"""The offer: the one catalog item that removes the account's strongest friction.

One email per account, not one per trigger: frictions are ranked, the strongest one that some catalog item
removes picks the offer, and the others become supporting facts. Upsell frictions map to the smallest
higher plan that covers use plus headroom (or a seat pack sized to use plus growth); cross-sell frictions map
to the add-on whose ``solves`` names them. A bundle is only offered to a green account, and its discount is
capped by policy; a yellow or red account never sees a discount.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypedDict

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from outreach.engine.catalog import Catalog
from outreach.engine.rules import Rules
from outreach.engine.tables import (
    FLOAT,
    INT,
    TEXT,
    TEXTS,
    create_table,
    sql_float,
    sql_ordered_list,
    sql_text,
    sql_texts,
)
from outreach.engine.triggers.spec import TriggerSpec
from outreach.engine.triggers.sql import SEATS_IN_USE
from outreach.types import OfferMotion

OfferKind = Literal["plan", "seat_pack", "addon", "bundle"]


class Offer(BaseModel):
    """What the email proposes. ``id`` is always a catalog id (plan, add-on, seat pack or bundle)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: OfferKind
    motion: OfferMotion
    name: str
    price_monthly: float = Field(description="List price per month for the whole offer (quantity included).")
    quantity: int = 1
    discount_pct: float = 0.0
    friction: str = Field(description="Id of the friction this offer removes (kind:subject).")
    supporting: list[str] = Field(
        default_factory=list, description="Ids of the other frictions, strongest first."
    )
    rationale: str = ""
    includes: list[str] = Field(default_factory=list, description="Catalog ids a bundle contains.")

    @property
    def price_after_discount(self) -> float:
        return round(self.price_monthly * (1 - self.discount_pct / 100), 2)


class OfferRecord(TypedDict):
    """:class:`Offer` as the plain dict the engine computes (validated into Offer only when asked)."""

    id: str
    kind: OfferKind
    motion: OfferMotion
    name: str
    price_monthly: float
    quantity: int
    discount_pct: float
    friction: str
    supporting: list[str]
    rationale: str
    includes: list[str]


def register_catalog(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> None:
    """The catalog as small tables for :func:`offer_sql`: ``plan_dim`` (with ``rank``), ``addon_dim`` (``solves``
    lower-cased on both: matching is case-insensitive),
    ``seat_pack_dim`` (smallest first) and ``bundle_dim`` (discount already capped by policy, list price
    summed)."""
    create_table(
        con,
        "plan_dim",
        {"id": TEXT, "rank": INT, "name": TEXT, "price_monthly": FLOAT, "features": TEXTS, "solves": TEXTS},
        [
            (p.id, rank, p.name, p.price_monthly, p.features, [key.lower() for key in p.solves])
            for rank, p in enumerate(catalog.plans)
        ],
    )
    create_table(
        con,
        "addon_dim",
        {
            "id": TEXT,
            "ord": INT,
            "name": TEXT,
            "price_monthly": FLOAT,
            "solves": TEXTS,
            "requires_rank": INT,
            "rationale": TEXT,
            "features": TEXTS,
        },
        [
            (
                a.id,
                position,
                a.name,
                a.price_monthly,
                [key.lower() for key in a.solves],
                catalog.plan_rank(a.requires_plan) if a.requires_plan else None,
                a.outcome or f"{a.name} removes this friction",
                a.features,
            )
            for position, a in enumerate(catalog.addons)
        ],
    )
    packs = sorted(catalog.seat_packs, key=lambda p: (p.seats, p.price_monthly))
    create_table(
        con,
        "seat_pack_dim",
        {"id": TEXT, "ord": INT, "name": TEXT, "seats": INT, "price_monthly": FLOAT},
        [(p.id, position, p.name, p.seats, p.price_monthly) for position, p in enumerate(packs)],
    )
    create_table(
        con,
        "bundle_dim",
        {
            "id": TEXT,
            "ord": INT,
            "name": TEXT,
            "plan": TEXT,
            "addons": TEXTS,
            "discount_pct": FLOAT,
            "price_monthly": FLOAT,
            "includes": TEXTS,
        },
        [
            (
                b.id,
                position,
                b.name,
                b.plan,
                b.addons,
                min(b.discount_pct, catalog.policy.max_discount_pct),
                round(
                    (catalog.plan(b.plan).price_monthly if b.plan else 0)
                    + sum(catalog.addon(a).price_monthly for a in b.addons),
                    2,
                ),
                [i for i in [b.plan, *b.addons] if i],
            )
            for position, b in enumerate(catalog.bundles)
        ],
    )


def _first(partition: str, order: str) -> str:
    return f"QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY {order}) = 1"


def offer_sql(rules: Rules, catalog: Catalog) -> str:
    """Per account with at least one friction some catalog item removes: ``account_id`` and ``offer`` (a STRUCT
    shaped like :class:`OfferRecord`).

    Reads ``friction_scope`` (the ranked ``friction_rows`` of :func:`outreach.engine.friction.rank_frictions` for the
    accounts being decided; see :func:`outreach.engine.decisions.explain_json_chunks`), ``account_scope`` (their
    ``account_dim`` rows), ``plan_limit``, the catalog tables of :func:`register_catalog` and ``account_band``
    (account_id, band).
    """
    headroom = sql_float(1 + rules.offers.headroom)
    growth = sql_float(1 + rules.offers.seat_growth_pct)
    growth_pct = round(100 * rules.offers.seat_growth_pct)
    per_friction = "f.account_id, f.pos"

    if catalog.seat_packs:
        seat_offer = f"""
            SELECT f.account_id, f.pos, 1 AS prio, k.id, 'seat_pack', 'upsell', k.name,
                   round_even(k.price_monthly * q, 2), q,
                   f.seats || ' seats today; about ' || (f.seats + f.seats_needed) || ' needed with {growth_pct}% growth'
            FROM (
                SELECT f.*, coalesce((SELECT min(s.ord) FROM seat_pack_dim s WHERE s.seats >= f.seats_needed),
                                     (SELECT max(s.ord) FROM seat_pack_dim s)) AS pack_ord
                FROM offer_inputs f WHERE f.is_seat
            ) f
            JOIN seat_pack_dim k ON k.ord = f.pack_ord,
            LATERAL (SELECT CASE WHEN k.seats >= f.seats_needed THEN 1
                                 ELSE ceil(f.seats_needed / k.seats)::BIGINT END AS q)"""
    else:
        seat_offer = f"""
            SELECT f.account_id, f.pos, 1, p.id, 'plan', 'upsell', p.name, p.price_monthly, 1,
                   p.name || ' covers ' || (f.seats + f.seats_needed) || ' seats'
            FROM offer_inputs f JOIN plan_dim p ON p.rank > f.plan_rank
            LEFT JOIN plan_limit l ON l.plan = p.id AND l.metric = 'seats'
            WHERE f.is_seat AND (l.plan IS NULL OR l.cap IS NULL OR l.cap >= f.seats + f.seats_needed)
            {_first(per_friction, "p.rank")}"""
    specs = [spec for spec, _ in rules.trigger_specs()]

    def by_kind(value: Callable[[TriggerSpec[Any]], str | None], otherwise: str = "NULL") -> str:
        cases = " ".join(
            f"WHEN {sql_text(spec.kind)} THEN {found}" for spec in specs if (found := value(spec)) is not None
        )
        return f"(CASE f.kind {cases} ELSE {otherwise} END)" if cases else otherwise

    def kinds(where: Callable[[TriggerSpec[Any]], object]) -> str:
        return sql_texts(spec.kind for spec in specs if where(spec))

    def used(spec: TriggerSpec[Any]) -> str | None:
        """The use a higher plan's limit must cover: the friction's usage figures, at least its cap."""
        if spec.limit_figure is None:
            return None
        figures = [f"nullif(TRY_CAST(f.figures->>'{name}' AS DOUBLE), 0)" for name in (*spec.usage_figures, "cap")]
        return (
            f"greatest(coalesce({', '.join(figures)}, 0.0::DOUBLE), "
            "coalesce(TRY_CAST(f.figures->>'cap' AS DOUBLE), 0.0::DOUBLE))"
        )

    metric = by_kind(
        lambda spec: f"coalesce(nullif(f.figures->>'{spec.limit_figure}', ''), 'None')" if spec.limit_figure else None
    )
    feature = by_kind(lambda spec: f"(f.figures->>'{spec.feature_figure}')" if spec.feature_figure else None)
    seat_demand = by_kind(lambda spec: spec.seat_demand, otherwise=SEATS_IN_USE)
    next_plan = by_kind(lambda spec: sql_text(spec.next_plan) if spec.next_plan else None)
    keys = by_kind(lambda spec: spec.key_sql(), otherwise="['trigger:' || f.kind]")
    return f"""
    WITH offer_inputs AS (
        SELECT f.account_id, f.pos, f.fid, f.kind, f.motion, f.figures, d.addons AS owned, cur.rank AS plan_rank,
               m.metric, {feature} AS feature, {next_plan} AS next_plan_rationale,
               list_contains({kinds(lambda spec: spec.has_plan_route)}, f.kind) AS has_plan_route,
               list_contains({kinds(lambda spec: spec.seat_demand)}, f.kind) OR coalesce(m.metric = 'seats', false)
                   AS is_seat,
               ceil({by_kind(used)} * {headroom})::BIGINT AS needed,
               m.seats,
               greatest(ceil({seat_demand} * {growth})::BIGINT - m.seats, 1) AS seats_needed
        FROM friction_scope f
        JOIN account_scope d USING (account_id)
        JOIN plan_dim cur ON cur.id = d.plan
        LEFT JOIN plan_limit seat_limit ON seat_limit.plan = d.plan AND seat_limit.metric = 'seats',
        LATERAL (SELECT {metric} AS metric,
                        coalesce(nullif(TRY_CAST(f.figures->>'seats' AS BIGINT), 0), nullif(d.seats_purchased, 0),
                                 nullif(seat_limit.cap, 0), 0) AS seats) m
    ),
    keyed AS (
        SELECT f.*, lower(f.key) AS key_lower
        FROM (SELECT f.*, unnest(keys) AS key, generate_subscripts(keys, 1) AS key_pos
              FROM (SELECT f.*, {keys} AS keys FROM offer_inputs f) f) f
    ),
    candidates AS (
        (SELECT f.account_id, f.pos, 1 AS prio, p.id, 'plan' AS kind, 'upsell' AS motion, p.name, p.price_monthly,
               1 AS quantity,
               p.name || ' has ' || CASE WHEN l.cap IS NULL THEN 'no cap' ELSE 'a cap of ' || l.cap END
                   || ' on ' || replace(f.metric, '_', ' ') AS rationale
        FROM offer_inputs f JOIN plan_dim p ON p.rank > f.plan_rank
        LEFT JOIN plan_limit l ON l.plan = p.id AND l.metric = f.metric
        WHERE f.metric IS NOT NULL AND NOT f.is_seat
          AND (l.plan IS NULL OR l.cap IS NULL OR l.cap >= f.needed)
        {_first(per_friction, "p.rank")})
        UNION ALL ({seat_offer})
        UNION ALL (
            SELECT f.account_id, f.pos, 1, p.id, 'plan', 'upsell', p.name, p.price_monthly, 1,
                   p.name || ' includes ' || replace(f.feature, '_', ' ')
            FROM offer_inputs f JOIN plan_dim p ON p.rank > f.plan_rank
            WHERE list_contains(p.features, f.feature)
            {_first(per_friction, "p.rank")})
        UNION ALL (
            SELECT f.account_id, f.pos, 3, a.id, 'addon', 'cross_sell', a.name, a.price_monthly, 1, a.rationale
            FROM offer_inputs f JOIN addon_dim a
              ON list_contains(a.features, f.feature) AND NOT list_contains(f.owned, a.id)
            WHERE f.feature IS NOT NULL
            {_first(per_friction, "a.ord")})
        UNION ALL (
            SELECT f.account_id, f.pos, 1, p.id, 'plan', 'upsell', p.name, p.price_monthly, 1, f.next_plan_rationale
            FROM offer_inputs f JOIN plan_dim p ON p.rank > f.plan_rank
            WHERE f.next_plan_rationale IS NOT NULL
            {_first(per_friction, "p.rank")})
        UNION ALL (
            SELECT account_id, pos, prio, id, kind, motion, name, price_monthly, 1, rationale FROM (
                SELECT f.account_id, f.pos, CASE WHEN f.has_plan_route THEN 2 ELSE 1 END AS prio, a.id,
                       'addon' AS kind, 'cross_sell' AS motion, a.name, a.price_monthly, a.rationale, f.key_pos,
                       CASE WHEN f.motion = 'cross_sell' THEN 0 ELSE 1 END AS fit, a.ord AS item_ord
                FROM keyed f
                JOIN addon_dim a ON (list_contains(a.solves, f.key_lower) OR a.id = f.key)
                WHERE NOT list_contains(f.owned, a.id) AND (a.requires_rank IS NULL OR a.requires_rank <= f.plan_rank)
                UNION ALL
                SELECT f.account_id, f.pos, CASE WHEN f.has_plan_route THEN 2 ELSE 1 END, p.id, 'plan', 'upsell',
                       p.name, p.price_monthly, p.name || ' removes this friction', f.key_pos,
                       CASE WHEN f.motion = 'upsell' THEN 0 ELSE 1 END, p.rank
                FROM keyed f JOIN plan_dim p ON p.rank > f.plan_rank AND list_contains(p.solves, f.key_lower)
            ) f
            {_first(per_friction, "f.key_pos, f.fit, f.item_ord")})
    ),
    best AS (
        SELECT c.*, r.fid FROM candidates c JOIN friction_scope r USING (account_id, pos)
        {_first("c.account_id, c.pos", "c.prio")}
    ),
    primaries AS (
        SELECT b.account_id, any_value(h.band) AS band,
               list(b.id) FILTER (WHERE b.kind = 'plan') AS plan_ids,
               list(b.id) FILTER (WHERE b.kind = 'addon') AS addon_ids,
               arg_min({{'id': b.id, 'kind': b.kind, 'motion': b.motion, 'name': b.name,
                         'price_monthly': b.price_monthly, 'quantity': b.quantity, 'discount_pct': 0.0::DOUBLE,
                         'friction': b.fid, 'supporting': []::VARCHAR[], 'rationale': b.rationale,
                         'includes': []::VARCHAR[]}}, b.pos) AS offer
        FROM best b JOIN account_band h USING (account_id)
        GROUP BY b.account_id
    ),
    bundle_pick AS (
        SELECT x.account_id, x.offer AS primary_offer, d.*
        FROM primaries x JOIN bundle_dim d
          ON x.band = 'green' AND d.plan IS NOT NULL AND list_contains(x.plan_ids, d.plan)
         AND len(list_intersect(d.addons, x.addon_ids)) > 0
         AND (x.offer.id = d.plan OR list_contains(d.addons, x.offer.id))
        {_first("x.account_id", "d.ord")}
    ),
    bundles AS (
        SELECT account_id,
               {{'id': id, 'kind': 'bundle', 'motion': 'bundle', 'name': name, 'price_monthly': price_monthly,
                 'quantity': 1, 'discount_pct': discount_pct, 'friction': primary_offer.friction,
                 'supporting': list_filter(solved, lambda s: s <> primary_offer.friction),
                 'rationale': name || ' removes ' || len(solved) || ' frictions at once',
                 'includes': includes}} AS offer
        FROM (
            SELECT p.account_id, p.id, p.name, p.price_monthly, p.discount_pct, p.includes, p.primary_offer,
                   {sql_ordered_list('b.fid', 'b.pos')} AS solved
            FROM bundle_pick p JOIN best b ON b.account_id = p.account_id
             AND (b.id = p.plan OR list_contains(p.addons, b.id))
            GROUP BY ALL
        )
    ),
    chosen AS (
        SELECT x.account_id, coalesce(u.offer, x.offer) AS offer, f.fids
        FROM primaries x
        LEFT JOIN bundles u USING (account_id)
        JOIN (SELECT account_id, {sql_ordered_list('fid', 'pos')} AS fids FROM friction_scope GROUP BY account_id) f
          USING (account_id)
    )
    SELECT account_id,
           struct_update(offer, supporting := list_concat(
               offer.supporting,
               list_filter(fids, lambda i: i <> offer.friction AND NOT list_contains(offer.supporting, i)))) AS offer
    FROM chosen
    """
