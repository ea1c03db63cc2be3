"""The offer: the one catalog item that removes the account's strongest friction.

One email per account, not one per trigger: frictions are ranked, the strongest one that some catalog item
removes picks the offer, and the others become supporting facts. Upsell frictions map to the smallest
higher plan that covers use plus headroom (or a seat pack sized to use plus growth); cross-sell frictions map
to the add-on whose ``solves`` names them. A bundle is only offered to a green account, and its discount is
capped by policy; a yellow or red account never sees a discount.
"""

from __future__ import annotations

import math
from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from outreach.catalog import Addon, Catalog, Plan
from outreach.data import Account
from outreach.friction import FrictionRecord, friction_id
from outreach.rules import Rules
from outreach.types import Band, OfferMotion

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


def _offer(
    id: str,
    kind: OfferKind,
    motion: OfferMotion,
    name: str,
    price_monthly: float,
    friction: str,
    rationale: str,
    *,
    quantity: int = 1,
    discount_pct: float = 0.0,
    supporting: list[str] | None = None,
    includes: list[str] | None = None,
) -> OfferRecord:
    return {
        "id": id,
        "kind": kind,
        "motion": motion,
        "name": name,
        "price_monthly": price_monthly,
        "quantity": quantity,
        "discount_pct": discount_pct,
        "friction": friction,
        "supporting": supporting or [],
        "rationale": rationale,
        "includes": includes or [],
    }


def _needed(used: float, rules: Rules) -> int:
    return math.ceil(used * (1 + rules.offers.headroom))


def _plan_covering(catalog: Catalog, account: Account, metric: str, needed: int) -> Plan | None:
    for plan in catalog.higher_plans(account.plan):
        limit = plan.limit(metric)
        if metric not in plan.limits or limit is None or limit >= needed:
            return plan
    return None


def _plan_with_feature(catalog: Catalog, account: Account, feature: str) -> Plan | None:
    for plan in catalog.higher_plans(account.plan):
        if feature in plan.features:
            return plan
    return None


def _addon_solving(catalog: Catalog, account: Account, keys: list[str]) -> Addon | None:
    current_rank = catalog.plan_rank(account.plan)
    for key in keys:
        for addon in catalog.addons:
            if addon.id in account.addons:
                continue
            if addon.requires_plan and catalog.plan_rank(addon.requires_plan) > current_rank:
                continue
            if key in addon.solves or addon.id == key:
                return addon
    return None


def _seat_offer(
    catalog: Catalog, account: Account, friction: FrictionRecord, rules: Rules
) -> OfferRecord | None:
    figures = friction["figures"]
    seats = int(
        figures.get("seats") or account.seats_purchased or catalog.plan(account.plan).limit("seats") or 0
    )
    if friction["kind"] == "headcount_growth":
        growth = float(figures["employees_now"]) / float(figures["employees_at_contract"])
        used = seats * growth
    else:
        used = float(figures.get("seats_used") or seats)
    needed = math.ceil(used * (1 + rules.offers.seat_growth_pct)) - seats
    needed = max(needed, 1)
    if catalog.seat_packs:
        packs = sorted(catalog.seat_packs, key=lambda p: (p.seats, p.price_monthly))
        fitting = [p for p in packs if p.seats >= needed]
        pack = fitting[0] if fitting else packs[-1]
        quantity = 1 if fitting else math.ceil(needed / pack.seats)
        return _offer(
            pack.id,
            "seat_pack",
            "upsell",
            pack.name,
            round(pack.price_monthly * quantity, 2),
            friction_id(friction),
            f"{seats} seats today; about {seats + needed} needed with "
            f"{round(100 * rules.offers.seat_growth_pct)}% growth",
            quantity=quantity,
        )
    plan = _plan_covering(catalog, account, "seats", seats + needed)
    if plan is None:
        return None
    return _plan_offer(plan, friction, f"{plan.name} covers {seats + needed} seats")


def _plan_offer(plan: Plan, friction: FrictionRecord, rationale: str) -> OfferRecord:
    return _offer(plan.id, "plan", "upsell", plan.name, plan.price_monthly, friction_id(friction), rationale)


def _addon_offer(addon: Addon, friction: FrictionRecord) -> OfferRecord:
    return _offer(
        addon.id,
        "addon",
        "cross_sell",
        addon.name,
        addon.price_monthly,
        friction_id(friction),
        addon.outcome or f"{addon.name} removes this friction",
    )


def offer_for(
    friction: FrictionRecord, account: Account, catalog: Catalog, rules: Rules
) -> OfferRecord | None:
    """The catalog item that removes one friction, or None when nothing in the catalog does."""
    f = friction["figures"]
    kind = friction["kind"]
    if kind in ("repeated_limit_hits", "usage_near_limit"):
        metric = str(f.get("limit") or f.get("metric"))
        if metric == "seats":
            return _seat_offer(catalog, account, friction, rules)
        used = float(f.get("max_used") or f.get("used") or f.get("cap") or 0)
        used = max(used, float(f.get("cap") or 0))
        needed = _needed(used, rules)
        plan = _plan_covering(catalog, account, metric, needed)
        if plan is None:
            return None
        limit = plan.limit(metric)
        covers = "no cap" if limit is None else f"a cap of {limit}"
        return _plan_offer(plan, friction, f"{plan.name} has {covers} on {metric.replace('_', ' ')}")
    if kind in ("seat_pressure", "headcount_growth"):
        return _seat_offer(catalog, account, friction, rules)
    if kind == "locked_feature":
        feature = str(f["feature"])
        plan = _plan_with_feature(catalog, account, feature)
        if plan is not None:
            return _plan_offer(plan, friction, f"{plan.name} includes {feature.replace('_', ' ')}")
        addon = _addon_solving(catalog, account, [f"feature:{feature}"]) or next(
            (a for a in catalog.addons if feature in a.features and a.id not in account.addons), None
        )
        return _addon_offer(addon, friction) if addon else None
    if kind == "strong_nps":
        higher = catalog.higher_plans(account.plan)
        return _plan_offer(higher[0], friction, "a promoter ready for the next tier") if higher else None
    keys: list[str] = []
    if kind == "integration_request":
        keys = [f"integration:{f['integration']}"]
    elif kind == "frequent_exports":
        keys = ["frequent_exports", "exports"]
    elif kind == "ticket_topic_cluster":
        keys = [f"topic:{f['topic']}"]
    elif kind == "addon_page_visits":
        keys = [str(f["addon"])]
    elif kind == "new_department":
        keys = [f"department:{f['department']}", "new_department"]
    elif kind == "workflow_abandoned":
        keys = [f"workflow:{f['workflow']}"]
    addon = _addon_solving(catalog, account, keys)
    return _addon_offer(addon, friction) if addon else None


def _bundle(
    primary: OfferRecord, others: list[OfferRecord], catalog: Catalog, band: Band
) -> OfferRecord | None:
    """A bundle holding the primary offer and another friction's offer, for green accounts only."""
    if band != "green" or not catalog.bundles:
        return None
    chosen = [primary, *others]
    plan_ids = {o["id"] for o in chosen if o["kind"] == "plan"}
    addon_ids = {o["id"] for o in chosen if o["kind"] == "addon"}
    for bundle in catalog.bundles:
        covers_plan = bundle.plan is not None and bundle.plan in plan_ids
        covers_addon = any(a in addon_ids for a in bundle.addons)
        if not (covers_plan and covers_addon):
            continue
        members = {bundle.plan} | set(bundle.addons)
        if primary["id"] not in members:
            continue
        discount = min(bundle.discount_pct, catalog.policy.max_discount_pct)
        price = (catalog.plan(bundle.plan).price_monthly if bundle.plan else 0) + sum(
            catalog.addon(a).price_monthly for a in bundle.addons
        )
        solved = [o["friction"] for o in chosen if o["id"] in members]
        return _offer(
            bundle.id,
            "bundle",
            "bundle",
            bundle.name,
            round(price, 2),
            primary["friction"],
            f"{bundle.name} removes {len(solved)} frictions at once",
            discount_pct=discount,
            supporting=[f for f in solved if f != primary["friction"]],
            includes=[i for i in [bundle.plan, *bundle.addons] if i],
        )
    return None


def choose_offer(
    frictions: list[FrictionRecord], account: Account, catalog: Catalog, band: Band, rules: Rules
) -> OfferRecord | None:
    """One offer for the account: the strongest friction some catalog item removes; the rest support it.

    ``frictions`` must be ranked strongest first (see :func:`outreach.friction.rank`); ``band`` is the
    account's health band (only green accounts see a bundle).
    """
    bundling = band == "green" and bool(catalog.bundles)
    candidates: list[OfferRecord] = []
    for friction in frictions:
        offer = offer_for(friction, account, catalog, rules)
        if offer is not None:
            candidates.append(offer)
            if not bundling:
                break  # without a bundle only the strongest friction's offer matters
    if not candidates:
        return None
    primary = candidates[0]
    chosen = _bundle(primary, candidates[1:], catalog, band) or primary
    covered = {chosen["friction"], *chosen["supporting"]}
    chosen["supporting"] = [*chosen["supporting"], *(i for f in frictions if (i := friction_id(f)) not in covered)]
    return chosen
