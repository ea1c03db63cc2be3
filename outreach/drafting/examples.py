"""Few-shot examples built from the catalog in use, never hard-coded.

A prompt's example email teaches the model the house style, and a model copies what it sees: an example
quoting "Business plan … $299/month" contradicts every catalog where Business costs something else. So the
examples are written here, one per motion, for an invented account on the *current* catalog (the lowest plan
with a cap and the next plan that raises it; an add-on that solves an integration ask or exports; a bundle) by
the offline drafter, which follows the copy rules. They sit in the static system block (the same for every
account of a catalog, so the prefix stays cacheable) and are left out of the trusted facts, so a figure copied
from an example is still ungrounded in the draft it lands in.
"""

from __future__ import annotations

import functools
import string
from datetime import date
from typing import Any

from outreach.drafting.facts import (
    AccountFacts,
    DraftFacts,
    ExampleEmail,
    catalog_sender,
    company_facts,
    friction_facts,
    offer_facts,
    plan_facts,
)
from outreach.drafting.providers.offline import draft_offline
from outreach.drafting.templates import money
from outreach.engine.catalog import Addon, Catalog, Plan
from outreach.engine.friction import Friction
from outreach.engine.offers import Offer
from outreach.engine.triggers import registry
from outreach.engine.triggers.spec import Figure, TriggerSpec
from outreach.types import OfferMotion

EXAMPLE_ACCOUNT = "Example Co"
EXAMPLE_GREETING = "Alex"
EXAMPLE_DATE = date(2026, 1, 15)


def _friction(spec: TriggerSpec[Any], figures: dict[str, Figure], subject: str | None) -> Friction:
    example = spec.example
    return Friction(kind=spec.kind, motion=spec.motion, subject=subject, statement=example.statement,
                    figures={**example.figures, **figures}, window_days=example.window_days)


def _upsell(catalog: Catalog, target: str | None = None) -> tuple[Plan, Friction, Offer] | None:
    """The lowest plan with a numeric cap that a higher plan (``target`` when given) raises, the first plan-limit
    trigger firing on it, and that higher plan as the offer."""
    spec = next((s for s in registry.BUILTIN if s.limit_figure and "cap" in s.figures), None)
    if spec is None or spec.limit_figure is None:
        return None
    for index, plan in enumerate(catalog.plans):
        for metric, cap in plan.limits.items():
            if cap is None or metric == "seats":
                continue
            for higher in catalog.plans[index + 1 :]:
                if target is not None and higher.id != target:
                    continue
                limit = higher.limit(metric)
                if limit is None or limit > cap:
                    friction = _friction(spec, {spec.limit_figure: metric, "cap": cap}, metric)
                    offer = Offer(id=higher.id, kind="plan", motion="upsell", name=higher.name,
                                  price_monthly=higher.price_monthly, friction=friction.id)
                    return plan, friction, offer
    return None


def _solved_by(catalog: Catalog, addon: Addon) -> Friction | None:
    """A friction the add-on's ``solves`` list answers, through the triggers' offer keys: a keyed entry
    (``integration:salesforce``) before a plain one."""
    for entry in addon.solves:
        for spec in registry.BUILTIN:
            for key in spec.offer_keys:
                parts = list(string.Formatter().parse(key))
                literal, name = parts[0][0], parts[0][1]
                if name and len(parts) == 1 and literal and entry.lower().startswith(literal.lower()):
                    value = entry[len(literal):]
                    return _friction(spec, {name: value}, value)
    for entry in addon.solves:
        for spec in registry.BUILTIN:
            if entry.lower() in (key.lower() for key in spec.offer_keys if "{" not in key):
                return _friction(spec, {}, spec.example.subject)
    return None


def _cross_sell(catalog: Catalog) -> tuple[Plan, Friction, Offer] | None:
    """An add-on that answers a friction (an integration ask first), on the plan it needs."""
    for addon in catalog.addons:
        friction = _solved_by(catalog, addon)
        if friction is None:
            continue
        plan = catalog.plan(addon.requires_plan) if addon.requires_plan else catalog.plans[0]
        offer = Offer(id=addon.id, kind="addon", motion="cross_sell", name=addon.name,
                      price_monthly=addon.price_monthly, friction=friction.id)
        return plan, friction, offer
    return None


def _bundle(catalog: Catalog) -> tuple[Plan, Friction, Offer] | None:
    """The first bundle, for an account below its plan with the limit friction that plan removes (or, for a
    bundle of add-ons, a friction its first add-on answers)."""
    for bundle in catalog.bundles:
        includes = [*([bundle.plan] if bundle.plan else []), *bundle.addons]
        prices = [catalog.plan(i).price_monthly if i in catalog.plan_ids() else catalog.addon(i).price_monthly
                  for i in includes]
        upsell = _upsell(catalog, bundle.plan) if bundle.plan else None
        if upsell is not None:
            plan, friction = upsell[0], upsell[1]
        else:
            shaped = _cross_sell(catalog)
            if shaped is None:
                continue
            plan, friction = shaped[0], shaped[1]
        offer = Offer(id=bundle.id, kind="bundle", motion="bundle", name=bundle.name, price_monthly=sum(prices),
                      discount_pct=bundle.discount_pct, friction=friction.id, includes=includes)
        return plan, friction, offer
    return None


_SHAPES = {"upsell": _upsell, "cross_sell": _cross_sell, "bundle": _bundle}


def _example(catalog: Catalog, motion: OfferMotion) -> ExampleEmail | None:
    shaped = _SHAPES[motion](catalog)
    if shaped is None:
        return None
    plan, friction, offer = shaped
    primary = friction_facts(friction, catalog, friction.id, plan)
    facts = DraftFacts(
        as_of=EXAMPLE_DATE,
        company=company_facts(catalog),
        sender=catalog_sender(catalog),
        account=AccountFacts(id="example", name=EXAMPLE_ACCOUNT, plan=plan_facts(plan), health_band="green",
                             health_score=85),
        offer=offer_facts(offer, catalog, plan, friction),
        frictions=[primary],
        greeting_name=EXAMPLE_GREETING,
    )
    draft = draft_offline(facts)
    price = money(facts.offer.price_after_discount)
    situation = f"{EXAMPLE_ACCOUNT}, on the {plan.name} plan. {primary.sentence} Offer: {offer.name}, {price} a month."
    return ExampleEmail(motion=motion, situation=situation, subject=draft.subject, body=draft.body)


def _key(catalog: Catalog) -> str:
    return catalog.model_dump_json()


@functools.lru_cache(maxsize=16)
def _cached(key: str) -> tuple[ExampleEmail, ...]:
    catalog = Catalog.model_validate_json(key)
    found = [_example(catalog, motion) for motion in ("upsell", "cross_sell", "bundle")]
    return tuple(example for example in found if example is not None)


def catalog_examples(catalog: Catalog) -> list[ExampleEmail]:
    """One example email per motion the catalog can show (upsell, cross_sell, bundle), for the system prompt."""
    return list(_cached(_key(catalog)))
