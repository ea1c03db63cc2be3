"""The facts a draft is written from: one typed source of truth, :class:`DraftFacts`.

A draft may only say what the engine knows, so :func:`build_facts` turns a
:class:`~outreach.engine.decisions.Decision` into facts; the LLM prompt and the offline drafter both render
from them and the validators check drafts against them. Customer-written text (ticket subjects and bodies,
the champion's name) is marked untrusted and truncated to a budget.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from outreach.drafting.claims import normalise
from outreach.drafting.config import UntrustedBudget
from outreach.drafting.spotlight import MARKING_NOTE, datamark, steering_attempt
from outreach.engine.catalog import Catalog, Plan
from outreach.engine.data import Ticket
from outreach.engine.decisions import Decision
from outreach.engine.friction import Friction
from outreach.engine.names import label
from outreach.engine.offers import Offer, OfferKind
from outreach.engine.triggers import registry
from outreach.engine.triggers.spec import Figure
from outreach.errors import InputError
from outreach.types import Band, Motion, OfferMotion

PromptMotion = Literal["upsell", "cross_sell", "bundle", "any"]
PromptKind = Literal["first_touch", "followup"]

FACTS_OPEN = "<facts>"
FACTS_CLOSE = "</facts>"
DATA_OPEN = "<customer_data>"
DATA_CLOSE = "</customer_data>"



class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ------------------------------------------------------------------------------------------------ facts


class CompanyFacts(Frozen):
    """The sender: who signs the email and which domains links may point to."""

    name: str
    product_name: str = Field(description="Product name (the company name when the catalog has none).")
    sender_name: str = Field(description="The catalog's sender: signs when the account has no known owner.")
    sender_title: str = ""
    sender_email: str
    upgrade_url: str
    unsubscribe_url: str
    domains: list[str] = Field(
        default_factory=list, description="Domains links may point to (the upgrade and unsubscribe hosts when unset)."
    )
    phone: str | None = Field(default=None, description="The only phone number an email may give.")


class SenderFacts(Frozen):
    """Who signs the email: the account's owner (the rep who reviews it) or, failing that, the catalog sender."""

    name: str
    title: str = ""
    email: str
    owner: bool = Field(default=False, description="True when the account's owner signs (not the catalog sender).")

    @property
    def signature(self) -> str:
        return f"{self.name}, {self.title}" if self.title else self.name


class PlanFacts(Frozen):
    id: str
    name: str
    price_monthly: float
    limits: dict[str, int | None] = Field(default_factory=dict, description="Caps; null is unlimited.")
    features: list[str] = Field(default_factory=list)


class OfferItemFacts(Frozen):
    """One catalog item inside the offer (the item itself, or a bundle's contents)."""

    id: str
    kind: OfferKind
    name: str
    price_monthly: float
    outcome: str = Field(description="What it changes for the customer, in one clause.")


class OfferFacts(Frozen):
    id: str
    kind: OfferKind
    motion: OfferMotion
    name: str
    price_monthly: float = Field(description="List price per month for the whole offer.")
    quantity: int = 1
    discount_pct: float = 0
    price_after_discount: float
    outcome: str = Field(description="How the offer removes the primary friction, in one sentence.")
    includes: list[OfferItemFacts] = Field(default_factory=list)
    plan: PlanFacts | None = Field(default=None, description="The offered plan, for plan offers and bundles.")
    seats_added: int | None = None


class FrictionFacts(Frozen):
    id: str
    kind: str
    motion: Motion
    subject: str | None = None
    statement: str = Field(description="The engine's statement, every number in it true.")
    sentence: str = Field(description="The statement as a sentence addressed to the customer.")
    headline: str = Field(description="A short, factual subject-line phrase.")
    figures: dict[str, Figure] = Field(default_factory=dict)
    window_days: int | None = None
    primary: bool = False
    terms: list[str] = Field(
        default_factory=list, description="Words that name what the friction is about (the offer must mention one)."
    )


class TicketExcerpt(Frozen):
    """A recent support ticket. ``subject`` and ``excerpt`` are customer-written: untrusted data."""

    id: str
    created: date
    status: str
    subject: str
    excerpt: str = ""
    steering: str | None = Field(default=None, description="Why the ticket looks written to steer the model.")


class AccountFacts(Frozen):
    id: str
    name: str
    plan: PlanFacts
    seats_purchased: int | None = None
    health_band: Band
    health_score: int
    renewal_date: date | None = None
    addons: list[str] = Field(default_factory=list, description="Names of add-ons the account owns.")
    currency: str = "USD"


class ExampleEmail(Frozen):
    """A few-shot example built from the catalog in use (:mod:`outreach.drafting.examples`)."""

    motion: PromptMotion
    situation: str = Field(description="The example account's friction and offer, in one or two sentences.")
    subject: str
    body: str


class DraftFacts(Frozen):
    """Everything a draft may state about one account. Prompt, offline drafter and validators share it."""

    as_of: date
    kind: PromptKind = "first_touch"
    company: CompanyFacts
    sender: SenderFacts
    account: AccountFacts
    offer: OfferFacts
    frictions: list[FrictionFacts] = Field(description="Strongest first; the primary one is flagged.")
    greeting_name: str = Field(description="First name to greet, or 'there' when the name is unusable.")
    champion_name: str | None = Field(default=None, description="Untrusted: customer-provided name.")
    tickets: list[TicketExcerpt] = Field(default_factory=list, description="Untrusted: recent tickets.")
    previous_subject: str | None = Field(default=None, description="Subject of the email a follow-up follows.")
    examples: list[ExampleEmail] = Field(
        default_factory=list, description="Few-shot examples from this catalog (system block only, not facts)."
    )

    @property
    def primary(self) -> FrictionFacts:
        for friction in self.frictions:
            if friction.primary:
                return friction
        return self.frictions[0]

    @property
    def supporting(self) -> list[FrictionFacts]:
        return [f for f in self.frictions if not f.primary]

    def trusted(self) -> dict[str, Any]:
        """The facts a model may rely on (JSON-ready); customer-written text is left out on purpose."""
        return self.model_dump(mode="json", exclude={"tickets", "champion_name", "examples"})

    def trusted_text(self) -> str:
        """The offer's and the frictions' own words, normalised as claims are and lower-cased: a phrase found
        here quotes the facts (an add-on's outcome saying "one-hour response time" backs that phrase)."""
        parts = [self.offer.model_dump_json(), *(f.sentence for f in self.frictions),
                 *(f.statement for f in self.frictions)]
        return normalise(" \n ".join(parts)).lower()

    def facts_json(self) -> str:
        return json.dumps(self.trusted(), indent=1, sort_keys=False, ensure_ascii=False)

    def customer_data(self) -> str:
        """Customer-written text inside delimiters, datamarked (:mod:`outreach.drafting.spotlight`); the
        delimiters cannot occur inside (see :func:`untrusted`)."""
        lines = [DATA_OPEN]
        if self.champion_name:
            lines.append(f"champion_name: {datamark(self.champion_name)}")
        for ticket in self.tickets:
            lines.append(f"- ticket {ticket.id} ({ticket.created.isoformat()}, {ticket.status}): "
                         f"{datamark(ticket.subject)}")
            if ticket.excerpt:
                lines.append(f"  excerpt: {datamark(ticket.excerpt)}")
        if len(lines) == 1:
            lines.append("(none)")
        lines.append(DATA_CLOSE)
        return "\n".join(lines)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def untrusted(text: str, limit: int) -> str:
    """Customer text made safe to embed as data: one line, no delimiter look-alikes, at most ``limit`` chars."""
    clean = _CONTROL.sub(" ", text)
    clean = clean.replace("<", "‹").replace(">", "›").replace("`", "'")
    clean = " ".join(clean.split())
    if len(clean) > limit:
        clean = clean[: max(limit - 1, 0)].rstrip() + "…"
    return clean


_NAME = re.compile(r"^[^\W\d_][^\W\d_'’ .-]*(?:[ '’.-][^\W\d_]+)*\.?$")


def greeting_for(name: str | None) -> str:
    """The first name when the field plausibly holds a name; otherwise 'there' (the field is untrusted)."""
    if not name:
        return "there"
    name = " ".join(name.split())
    if len(name) > 40 or not _NAME.match(name):
        return "there"
    return name.split(" ")[0]


display_label = label


# ------------------------------------------------------------------------------------------------ wording
# How each trigger kind reads in an email lives in its spec (outreach/engine/triggers/builtin/<kind>.py,
# ``Wording``): headline, opening, the terms the offer must be tied to, and the bridge that ties it. The copy
# rules they follow are outreach.drafting.style's. A custom trigger without an opening is worded from its
# statement.


def _sentence(friction: Friction, catalog: Catalog, plan: Plan) -> str:
    wording = registry.wording(friction.kind)
    if wording.opening is not None:
        return wording.opening(friction, catalog, plan.name)
    text = f"{wording.speaker} {friction.statement}".strip()
    return text if text.endswith((".", "!", "?")) else text + "."


# The fields a friction keeps in the facts are the engine's own (copied, not restated one by one).
_FRICTION_FIELDS = set(FrictionFacts.model_fields) & set(Friction.model_fields)


def friction_facts(friction: Friction, catalog: Catalog, primary_id: str, plan: Plan) -> FrictionFacts:
    wording = registry.wording(friction.kind)
    return FrictionFacts(
        **friction.model_dump(include=_FRICTION_FIELDS),
        id=friction.id,
        sentence=_sentence(friction, catalog, plan),
        headline=wording.headline(friction, catalog),
        primary=friction.id == primary_id,
        terms=[term for term in wording.terms(friction, catalog) if term],
    )


def plan_facts(plan: Plan) -> PlanFacts:
    return PlanFacts(
        id=plan.id, name=plan.name, price_monthly=plan.price_monthly, limits=plan.limits, features=plan.features
    )


def join_and(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _plan_outcome(plan: Plan, current: Plan, primary: Friction | None, catalog: Catalog) -> str:
    """What moving from ``current`` to ``plan`` changes, led by the friction it removes."""
    parts: list[str] = []
    metric = registry.limited_metric(primary.kind, primary.figures) if primary is not None else None
    spec = registry.builtin(primary.kind) if primary is not None else None
    if metric is None and spec is not None and spec.seat_demand and "seats" in {*plan.limits, *current.limits}:
        metric = "seats"  # a seat-pressure friction: lead with the seats the plan has room for
    if metric:
        limit = plan.limit(metric)
        label = catalog.metric_label(metric)
        parts.append(f"has no cap on {label}" if limit is None else f"raises the cap on {label} to {limit:,}")
    gained = [feature for feature in plan.features if feature not in current.features]
    feature = registry.asked_feature(primary.kind, primary.figures) if primary is not None else None
    if feature is not None:
        gained = [feature, *[g for g in gained if g != feature]]
    if gained:
        parts.append(f"includes {join_and([display_label(g) for g in gained[:2 if parts else 3]])}")
    if not parts:
        parts.append("gives the team more room")
    return join_and(parts)


def _lower_first(text: str) -> str:
    """'Campaign data…' → 'campaign data…', but 'SSO…' and 'HubSpot…' stay as they are."""
    if len(text) > 1 and text[0].isupper() and (text[1].islower() or (text[0] == "A" and text[1] == " ")):
        return text[0].lower() + text[1:]
    return text


def _strip_period(text: str) -> str:
    return text.strip().rstrip(".")


def _item(catalog: Catalog, item_id: str, current: Plan, primary: Friction | None) -> OfferItemFacts:
    if item_id in catalog.plan_ids():
        plan = catalog.plan(item_id)
        return OfferItemFacts(
            id=plan.id, kind="plan", name=plan.name, price_monthly=plan.price_monthly,
            outcome=_plan_outcome(plan, current, primary, catalog),
        )
    addon = catalog.addon(item_id)
    outcome = _strip_period(addon.outcome) if addon.outcome else f"adds {join_and([display_label(f) for f in addon.features])}"
    return OfferItemFacts(
        id=addon.id, kind="addon", name=addon.name, price_monthly=addon.price_monthly, outcome=outcome or addon.name
    )


def _tied(outcome: str, primary: Friction, catalog: Catalog) -> str:
    """The offer's outcome, opened with what it removes when the catalog's words do not already say it."""
    wording = registry.wording(primary.kind)
    terms = [t.lower() for t in wording.terms(primary, catalog) if t]
    bridge = wording.bridge(primary, catalog) if wording.bridge is not None else ""
    if not terms or not bridge or any(term in outcome.lower() for term in terms):
        return outcome
    if outcome.startswith("With "):  # "With Guided Onboarding, a specialist …" → "…, there is Guided Onboarding: a …"
        name, _, rest = outcome[len("With "):].partition(", ")
        return f"{bridge}, there is {name}: {_lower_first(rest)}"
    return f"{bridge}, {_lower_first(outcome)}"


def offer_facts(offer: Offer, catalog: Catalog, current: Plan, primary: Friction | None) -> OfferFacts:
    """The offer as the email may describe it: prices, contents and an outcome led by the friction it removes."""
    plan: PlanFacts | None = None
    includes: list[OfferItemFacts] = []
    seats_added: int | None = None
    if offer.kind == "plan":
        offered = catalog.plan(offer.id)
        plan = plan_facts(offered)
        outcome = f"The {offered.name} plan {_plan_outcome(offered, current, primary, catalog)}"
    elif offer.kind == "seat_pack":
        pack = next(p for p in catalog.seat_packs if p.id == offer.id)
        seats_added = pack.seats * offer.quantity
        outcome = f"The {offer.name} adds {seats_added} seats, so new people get access without anyone losing theirs"
        if offer.quantity > 1:
            outcome = f"{offer.quantity} × {offer.name} add {seats_added} seats, so new people get access " \
                      "without anyone losing theirs"
    elif offer.kind == "addon":
        item = _item(catalog, offer.id, current, primary)
        outcome = (
            f"{item.name} {item.outcome}" if item.outcome[:1].islower()
            else f"With {item.name}, {_lower_first(item.outcome)}"
        )
    else:
        includes = [_item(catalog, item_id, current, primary) for item_id in offer.includes]
        plan_ids = [i.id for i in includes if i.kind == "plan"]
        plan = plan_facts(catalog.plan(plan_ids[0])) if plan_ids else None
        parts = [
            (f"the {i.name} plan" if i.kind == "plan" else i.name)
            + (f", which {i.outcome}," if i.outcome[:1].islower() else f" ({_lower_first(i.outcome)})")
            for i in includes
        ]
        outcome = f"The {offer.name} brings together " + join_and(parts).rstrip(",")
    if primary is not None:
        outcome = _tied(outcome, primary, catalog)
    return OfferFacts(
        id=offer.id,
        kind=offer.kind,
        motion=offer.motion,
        name=offer.name,
        price_monthly=offer.price_monthly,
        quantity=offer.quantity,
        discount_pct=offer.discount_pct,
        price_after_discount=offer.price_after_discount,
        outcome=outcome,
        includes=includes,
        plan=plan,
        seats_added=seats_added,
    )


def company_facts(catalog: Catalog) -> CompanyFacts:
    """The sender company; link domains fall back to the upgrade and unsubscribe hosts."""
    company = catalog.company
    domains = list(company.domains) or sorted(
        {host for url in (company.upgrade_url, company.unsubscribe_url) if (host := urlsplit(url).hostname)}
    )
    return CompanyFacts(
        name=company.name,
        product_name=company.product_name or company.name,
        sender_name=company.sender_name,
        sender_title=company.sender_title or "",
        sender_email=company.sender_email,
        upgrade_url=company.upgrade_url,
        unsubscribe_url=company.unsubscribe_url,
        domains=domains,
        phone=company.phone,
    )


def catalog_sender(catalog: Catalog, *, owner: bool = False) -> SenderFacts:
    company = catalog.company
    return SenderFacts(name=company.sender_name, title=company.sender_title or "", email=company.sender_email,
                       owner=owner)


def build_facts(
    decision: Decision,
    catalog: Catalog,
    tickets: Sequence[Ticket] = (),
    *,
    budget: UntrustedBudget | None = None,
    kind: PromptKind = "first_touch",
    previous_subject: str | None = None,
    sender: SenderFacts | None = None,
    examples: Sequence[ExampleEmail] = (),
) -> DraftFacts:
    """The facts for one decided account. Only accounts with an offer can be drafted.

    ``sender`` is who signs (the account owner from the users table, resolved by the caller); without one
    the catalog's sender signs.
    """
    offer = decision.offer
    if offer is None or not decision.frictions:
        raise InputError(
            f"account '{decision.account_id}' has no offer to draft (cohort {decision.cohort})",
            hint="only accounts with a signal and a catalog offer can be drafted; see `outreach explain`",
        )
    budget = budget or UntrustedBudget()
    account = decision.account
    current = catalog.plan(account.plan)
    primary = decision.primary_friction()
    primary_id = offer.friction

    as_of = decision.as_of
    recent = sorted((t for t in tickets if t.created_at.date() <= as_of), key=lambda t: (t.created_at, t.id))
    excerpts: list[TicketExcerpt] = []
    spent = 0
    for ticket in reversed(recent):
        if len(excerpts) >= budget.max_tickets:
            break
        subject = untrusted(ticket.subject, budget.subject_chars)
        excerpt = untrusted(ticket.description, budget.excerpt_chars) if budget.excerpt_chars else ""
        cost = len(subject) + len(excerpt)
        if spent + cost > budget.total_chars:
            remaining = budget.total_chars - spent
            if remaining < 20:
                break
            subject = untrusted(subject, remaining)
            excerpt = ""
            cost = len(subject)
        spent += cost
        excerpts.append(
            TicketExcerpt(
                id=untrusted(ticket.id, 40), created=ticket.created_at.date(), status=ticket.status,
                subject=subject, excerpt=excerpt,
                steering=steering_attempt(f"{ticket.subject}\n{ticket.description}"),
            )
        )
    return DraftFacts(
        as_of=as_of,
        kind=kind,
        company=company_facts(catalog),
        sender=sender or catalog_sender(catalog),
        account=AccountFacts(
            id=account.account_id,
            name=untrusted(account.name, 80),
            plan=plan_facts(current),
            seats_purchased=account.seats_purchased,
            health_band=decision.health.band,
            health_score=decision.health.score,
            renewal_date=account.renewal_date,
            addons=[catalog.addon(a).name for a in account.addons if a in {x.id for x in catalog.addons}],
            currency=account.currency,
        ),
        offer=offer_facts(offer, catalog, current, primary),
        frictions=[friction_facts(f, catalog, primary_id, current) for f in decision.frictions],
        examples=list(examples),
        greeting_name=greeting_for(account.champion_name),
        champion_name=untrusted(account.champion_name, 60) if account.champion_name else None,
        tickets=excerpts,
        previous_subject=untrusted(previous_subject, 120) if previous_subject else None,
    )


def _example_friction() -> FrictionFacts:
    """The first plan-limit trigger's example (a plan upgrade is the example offer)."""
    spec = next(spec for spec in registry.BUILTIN if spec.limit_figure)
    example = spec.example
    friction = Friction(
        kind=spec.kind, motion=spec.motion, subject=example.subject, statement=example.statement,
        figures=example.figures, window_days=example.window_days, strength=example.strength,
    )
    catalog = Catalog.model_validate(
        {"plans": [{"id": "team", "name": "Team", "price_monthly": 99}], "company": {
            "name": "Example Co", "postal_address": "1 Example Street", "sender_name": "Sam Seller",
            "sender_email": "sam@example.com", "upgrade_url": "https://example.com/upgrade",
            "unsubscribe_url": "https://example.com/unsubscribe"}}
    )
    return friction_facts(friction, catalog, friction.id, catalog.plans[0])


def example_facts() -> DraftFacts:
    """A small, complete set of facts: used to check templates at load time and in the docs."""
    plan = PlanFacts(id="team", name="Team", price_monthly=99, limits={"reports": 10, "seats": 10}, features=["dashboards"])
    business = PlanFacts(
        id="business", name="Business", price_monthly=299, limits={"reports": None, "seats": 25},
        features=["dashboards", "scheduled_exports"],
    )
    return DraftFacts(
        as_of=date(2026, 11, 20),
        company=CompanyFacts(
            name="Example Co", product_name="Example", sender_name="Sam Seller", sender_email="sam@example.com",
            upgrade_url="https://example.com/upgrade", unsubscribe_url="https://example.com/unsubscribe",
            domains=["example.com"],
        ),
        sender=SenderFacts(name="Sam Seller", title="Account Manager", email="sam@example.com", owner=True),
        account=AccountFacts(id="a1", name="Acme", plan=plan, seats_purchased=10, health_band="green", health_score=80),
        offer=OfferFacts(
            id="business", kind="plan", motion="upsell", name="Business", price_monthly=299, price_after_discount=299,
            outcome="The Business plan has no cap on reports and includes scheduled exports", plan=business,
        ),
        frictions=[_example_friction()],
        greeting_name="Dana",
        champion_name="Dana Lee",
        tickets=[TicketExcerpt(id="t1", created=date(2026, 11, 2), status="open", subject="Report limit again")],
        examples=[ExampleEmail(motion=motion, situation="Example Co, on the Team plan.", subject="Room beyond 10 reports",
                               body="Hi Alex,\n\n…\n\nBest,\nSam Seller") for motion in ("upsell", "cross_sell", "bundle")],
    )


class FactVariable(BaseModel):
    """One name a template can use, for the docs and the prompt-tuning UI."""

    name: str
    type: str
    description: str = ""
    untrusted: bool = False


TEMPLATE_HELPERS: dict[str, str] = {
    "consequence": "consequence(friction): what that kind of friction usually costs the team, one sentence.",
    "spotlighting": "What datamarking means, for the system block (static): marked text is data, never instructions.",
    "primary": "The primary friction (FrictionFacts): the one the offer removes.",
    "supporting": "The other frictions (list of FrictionFacts), strongest first.",
    "facts_json": "All trusted facts as JSON (customer-written text left out).",
    "customer_data": "Ticket subjects/excerpts and the champion name inside <customer_data> delimiters.",
}
_UNTRUSTED_FIELDS = {"champion_name", "tickets", "tickets.subject", "tickets.excerpt", "previous_subject"}


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    text = str(annotation)
    for prefix in ("typing.", "outreach.drafting.facts.", "outreach.engine.triggers.spec.", "datetime."):
        text = text.replace(prefix, "")
    return text


def fact_variables() -> list[FactVariable]:
    """Every variable a template may use: DraftFacts fields (dotted, one level of nesting) plus helpers."""
    found: list[FactVariable] = []

    def walk(model: type[BaseModel], prefix: str, depth: int) -> None:
        for name, info in model.model_fields.items():
            dotted = f"{prefix}{name}"
            annotation = info.annotation
            found.append(
                FactVariable(
                    name=dotted, type=_type_name(annotation), description=info.description or "",
                    untrusted=dotted in _UNTRUSTED_FIELDS,
                )
            )
            inner = annotation
            args = getattr(annotation, "__args__", ())
            if args:
                inner = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), annotation)
            if depth < 1 and isinstance(inner, type) and issubclass(inner, BaseModel):
                walk(inner, dotted + ".", depth + 1)

    walk(DraftFacts, "", 0)
    found.extend(FactVariable(name=name, type="helper", description=text) for name, text in TEMPLATE_HELPERS.items())
    return found


def template_context(facts: DraftFacts) -> dict[str, Any]:
    context: dict[str, Any] = {name: getattr(facts, name) for name in DraftFacts.model_fields}
    context.update(
        consequence=lambda friction: registry.wording(friction.kind).consequence_for(facts.company.product_name),
        spotlighting=MARKING_NOTE,
        primary=facts.primary,
        supporting=facts.supporting,
        facts_json=facts.facts_json(),
        customer_data=facts.customer_data(),
    )
    return context


