"""Draft validation: every draft, from every provider, is checked claim by claim against the facts it was given.

A model (or a marketing edit to a template) can get a number wrong, name a plan that is not on offer, follow a
link planted in a ticket, promise a discount policy does not allow, or mention another customer — and it can
say each of those in words no pattern list foresaw. So :mod:`outreach.drafting.claims` pulls out every claim a
customer could act on (numbers however written, money, percentages, discounts and giveaways however phrased,
dates and deadlines, links and bare domains, email addresses, phone numbers, other accounts, requests for
credentials or payment) and this module accepts a claim only when a fact backs it. Anything else is an
:class:`Issue` naming the claim, so a failed draft is repaired, flagged or replaced, never silently passed.
Credentials, card and bank details, off-product payment routes and phone numbers not in the catalog are on
a deny list: no fact can back them.

Copy rules (:mod:`outreach.drafting.style`) are checked here too: a draft that reads like surveillance, asks
twice or is not signed by the account's owner goes back for repair like any other broken rule.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from outreach.drafting.claims import AccountIndex, Claim, extract_claims, name_key, vague_discount
from outreach.drafting.claims import numbers_in as numbers_in
from outreach.drafting.config import ValidationPolicy
from outreach.drafting.facts import DraftFacts
from outreach.drafting.style import style_issues
from outreach.engine.catalog import Catalog
from outreach.engine.data import Account

IssueRule = Literal[
    "empty",
    "length",
    "number",
    "catalog_name",
    "price",
    "url",
    "email",
    "phone",
    "date",
    "deadline",
    "discount",
    "giveaway",
    "credential",
    "payment",
    "banned_phrase",
    "other_account",
    "offer_id",
    "friction_id",
    "surveillance",
    "asks",
    "offer_fit",
    "signature",
]

#: Rules that mean the draft carries something the facts do not back (a wrong or planted claim), as opposed to
#: a length or copy problem. A draft with one of these never goes out unreviewed.
CLAIM_RULES: frozenset[str] = frozenset({
    "number", "catalog_name", "price", "url", "email", "phone", "date", "deadline", "discount", "giveaway",
    "credential", "payment", "other_account", "offer_id", "friction_id",
})


class Issue(BaseModel):
    """Why a draft cannot go out as is. ``excerpt`` is the offending text, for the reviewer."""

    model_config = ConfigDict(frozen=True)

    rule: IssueRule
    message: str
    excerpt: str = ""

    def line(self) -> str:
        return f"[{self.rule}] {self.message}"


class DraftText(Protocol):
    """The parts of a draft the validators read (``outreach.drafting.providers.base.Draft`` satisfies it)."""

    @property
    def subject(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def call_to_action(self) -> str: ...
    @property
    def friction_ids(self) -> list[str]: ...
    @property
    def offer_id(self) -> str: ...


# ------------------------------------------------------------------------------------------------ what facts back


def _walk(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _walk(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk(item)
    else:
        yield value


@functools.lru_cache(maxsize=8192)
def _string_numbers(text: str) -> tuple[float, ...]:
    return tuple(number for number, _ in numbers_in(text))


def fact_numbers(facts: DraftFacts) -> set[float]:
    """Every number in the trusted facts: figures, statements, prices, limits, discount, dates, names.

    Customer-written text is excluded, so a ticket saying "50% off" does not make 50 a true number.
    """
    allowed: set[float] = set()
    for value in _walk(facts.trusted()):
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            allowed.add(float(value))
            allowed.add(round(float(value), 2))
        elif isinstance(value, str):
            allowed.update(_string_numbers(value))
    return allowed


def _fact_dates(facts: DraftFacts) -> set[str]:
    dates = {facts.as_of.isoformat()}
    if facts.account.renewal_date:
        dates.add(facts.account.renewal_date.isoformat())
    return dates | {d[5:] for d in dates}


def _allowed_prices(facts: DraftFacts) -> set[float]:
    offer = facts.offer
    prices = {offer.price_monthly, offer.price_after_discount, round(offer.price_monthly - offer.price_after_discount, 2)}
    if offer.quantity > 1:
        prices.add(round(offer.price_monthly / offer.quantity, 2))
    prices.update(item.price_monthly for item in offer.includes)
    if offer.plan is not None and offer.kind == "plan":
        prices.add(offer.plan.price_monthly)
    return {round(p, 2) for p in prices}


def allowed_hosts(facts: DraftFacts, policy: ValidationPolicy) -> set[str]:
    """Hosts links may point to: the company's domains, the upgrade and unsubscribe hosts, the sender's and the
    signer's email domains, and the policy's extra domains."""
    domains = {d.lower() for d in [*facts.company.domains, *policy.allowed_domains]}
    for url in (facts.company.upgrade_url, facts.company.unsubscribe_url):
        host = urlsplit(url).hostname
        if host:
            domains.add(host.lower())
    domains.add(facts.company.sender_email.rsplit("@", 1)[-1].lower())
    return domains


def _host_allowed(host: str, allowed: set[str]) -> bool:
    host = host.lower().strip(".").removeprefix("www.")
    return any(host == domain or host.endswith("." + domain) for domain in allowed)


def _phone_key(number: str) -> str:
    return re.sub(r"\D", "", number)[-10:]


@functools.lru_cache(maxsize=64)
def _index(accounts: tuple[tuple[str, str, str | None], ...]) -> AccountIndex:
    return AccountIndex(accounts)


def account_index(accounts: Sequence[Account]) -> AccountIndex:
    """The :class:`AccountIndex` of ``accounts`` (built once per distinct list)."""
    return _index(tuple((a.account_id, a.name, a.domain) for a in accounts))


# ------------------------------------------------------------------------------------------------ rules


def _contains(text: str, needle: str, *, case: bool = True) -> bool:
    if not needle:
        return False
    flags = 0 if case else re.IGNORECASE
    return re.search(rf"(?<![\w-]){re.escape(needle)}(?![\w-])", text, flags) is not None


_NAMED_ITEM = re.compile(
    r"\b((?:[A-Z][\w+-]*)(?: [A-Z][\w+-]*)*) (plan|tier|add-on|addon|package|edition|bundle)\b"
)


def _catalog_issues(text: str, facts: DraftFacts, catalog: Catalog) -> Iterable[tuple[IssueRule, str, str]]:
    offer = facts.offer
    permitted = {offer.id, facts.account.plan.id, *(item.id for item in offer.includes)}
    if offer.plan is not None:
        permitted.add(offer.plan.id)
    owned = set(facts.account.addons)
    items: list[tuple[str, str, str]] = [(p.id, p.name, "plan") for p in catalog.plans]
    items += [(a.id, a.name, "add-on") for a in catalog.addons]
    items += [(s.id, s.name, "seat pack") for s in catalog.seat_packs]
    items += [(b.id, b.name, "bundle") for b in catalog.bundles]
    permitted_names = {name for item_id, name, _ in items if item_id in permitted} | owned
    for item_id, name, kind in items:
        if item_id in permitted or name in owned:
            continue
        if any(name != allowed_name and name in allowed_name for allowed_name in permitted_names):
            # "Pro" inside "Pro Plus": only a problem when it appears outside the permitted name.
            stripped = text
            for allowed_name in permitted_names:
                stripped = stripped.replace(allowed_name, " ")
            if not _contains(stripped, name):
                continue
        elif not _contains(text, name):
            continue
        yield "catalog_name", f"names the {kind} '{name}', which is not the chosen offer '{offer.name}'", name
    catalog_names = {name.lower() for _, name, _ in items}
    for match in _NAMED_ITEM.finditer(text):
        name = match.group(1)
        if name.lower() in catalog_names or any(name in allowed_name for allowed_name in permitted_names):
            continue
        if name.split(" ")[0] in ("The", "This", "That", "Your", "Our", "A", "An", "Each", "Every", "Any"):
            rest = name.split(" ", 1)[1] if " " in name else ""
            if not rest or rest.lower() in catalog_names or any(rest in n for n in permitted_names):
                continue
            name = rest
        yield "catalog_name", f"names a {match.group(2)} '{name}' that is not in the catalog", match.group(0)


def _claim_issues(
    claims: Sequence[Claim],
    facts: DraftFacts,
    catalog: Catalog,
    policy: ValidationPolicy,
) -> Iterable[tuple[IssueRule, str, str]]:
    numbers = fact_numbers(facts)
    quoted = facts.trusted_text()
    percents = {float(v) for f in facts.frictions for k, v in f.figures.items()
                if ("pct" in k or "share" in k) and isinstance(v, int | float) and not isinstance(v, bool)}
    prices = _allowed_prices(facts)
    hosts = allowed_hosts(facts, policy)
    offer = facts.offer
    cap = policy.max_discount_pct if policy.max_discount_pct is not None else catalog.policy.max_discount_pct
    own_keys = {name_key(x) for x in (facts.account.id, facts.account.name, facts.company.name,
                                      facts.company.product_name, facts.sender.name, facts.company.sender_name)}
    own_keys |= {name_key(name) for name in [*(p.name for p in catalog.plans), *(a.name for a in catalog.addons),
                                              *(s.name for s in catalog.seat_packs), *(b.name for b in catalog.bundles)]}
    seen: set[tuple[str, str]] = set()

    for claim in claims:
        key = (claim.kind, claim.text.lower())
        if key in seen:
            continue
        seen.add(key)
        text, value = claim.text, claim.value
        if claim.kind == "number" and isinstance(value, float):
            if value not in numbers and round(value, 2) not in numbers:
                yield "number", f"'{text}' does not appear in the facts", text
        elif claim.kind == "fraction" and isinstance(value, float):
            if value not in numbers and not any(abs(value * 100 - pct) <= 5 for pct in percents) \
                    and text.lower() not in quoted:
                yield "number", f"'{text}' ({value:.0%}) is not a share the facts give", text
        elif claim.kind == "money" and isinstance(value, float):
            if round(value, 2) not in prices:
                yield "price", f"'{text}' is not a price of the chosen offer", text
        elif claim.kind == "discount":
            if facts.account.health_band != "green":
                yield "discount", f"mentions a discount ('{text}') to a {facts.account.health_band} account", text
            elif not offer.discount_pct:
                yield "discount", f"mentions a discount ('{text}') but the offer has none", text
            elif isinstance(value, float) and (value != offer.discount_pct or value > cap):
                yield "discount", (f"offers {value:g}% ('{text}'); the offer's discount is {offer.discount_pct:g}% "
                                   f"and policy allows at most {cap:g}%"), text
            elif value is None and vague_discount(text):
                yield "discount", f"promises a deal ('{text}'); only the offer's {offer.discount_pct:g}% may be named", text
        elif claim.kind == "giveaway":
            if text.lower() not in quoted:
                yield "giveaway", f"gives something away ('{text}'), which no fact or policy allows", text
        elif claim.kind == "date" and isinstance(value, str):
            if value not in _fact_dates(facts):
                yield "date", f"gives the date '{text}', which is not in the facts", text
        elif claim.kind == "deadline":
            if text.lower() not in quoted:
                yield "deadline", f"sets a deadline or pressure ('{text}') that no fact backs", text
        elif claim.kind == "url" and isinstance(value, str):
            if not _host_allowed(value, hosts):
                yield "url", f"links to '{value}', which is not one of the company's domains", text
        elif claim.kind == "email" and isinstance(value, str):
            domain = value.rsplit("@", 1)[-1]
            if value not in {facts.sender.email.lower(), facts.company.sender_email.lower()} \
                    and not _host_allowed(domain, hosts):
                yield "email", f"gives the address '{value}', which is not the sender's or the company's", text
        elif claim.kind == "phone" and isinstance(value, str):
            if not facts.company.phone or _phone_key(value) != _phone_key(facts.company.phone):
                yield "phone", f"gives the phone number '{text}', which is not the company's number in the catalog", text
        elif claim.kind == "account":
            if value is None:
                yield "other_account", f"refers to other customers ('{text}')", text
            elif value != facts.account.id and name_key(text) not in own_keys:
                yield "other_account", f"mentions another account, '{text}'", text
        elif claim.kind == "credential":
            yield "credential", f"asks for credentials or codes ('{text}'), which an email never does", text
        elif claim.kind == "payment":
            yield "payment", f"asks for payment details or an off-product payment ('{text}')", text


def validate_draft(
    draft: DraftText,
    facts: DraftFacts,
    catalog: Catalog,
    policy: ValidationPolicy,
    *,
    other_accounts: Sequence[Account] | AccountIndex = (),
) -> list[Issue]:
    """Every reason the draft cannot go out as written; an empty list means every claim is backed by a fact
    and every copy rule holds."""
    issues: list[Issue] = []
    subject, body, cta = draft.subject.strip(), draft.body.strip(), draft.call_to_action.strip()
    text = "\n".join([subject, body, cta])

    def issue(rule: IssueRule, message: str, excerpt: str = "") -> None:
        issues.append(Issue(rule=rule, message=message, excerpt=excerpt[:160]))

    # Empty and length.
    for name, value in (("subject", subject), ("body", body), ("call to action", cta)):
        if not value:
            issue("empty", f"the {name} is empty")
    if len(subject) > policy.max_subject_chars:
        issue("length", f"subject is {len(subject)} characters (limit {policy.max_subject_chars})", subject)
    if len(body) > policy.max_body_chars:
        issue("length", f"body is {len(body)} characters (limit {policy.max_body_chars})")
    words = len(body.split())
    if words > policy.max_body_words:
        issue("length", f"body is {words} words (limit {policy.max_body_words})")

    # Offer and friction ids.
    if draft.offer_id != facts.offer.id:
        issue("offer_id", f"draft says offer '{draft.offer_id}' but the chosen offer is '{facts.offer.id}'")
    known = {f.id for f in facts.frictions}
    for friction_id in draft.friction_ids:
        if friction_id not in known:
            issue("friction_id", f"friction '{friction_id}' is not one of this account's frictions")

    # Every claim against the facts.
    accounts = other_accounts if isinstance(other_accounts, AccountIndex) else (
        account_index(other_accounts) if other_accounts else None)
    claims = extract_claims(text, accounts)
    for rule, message, excerpt in _claim_issues(claims, facts, catalog, policy):
        issue(rule, message, excerpt)
    for rule, message, excerpt in _catalog_issues(text, facts, catalog):
        issue(rule, message, excerpt)

    # Banned generic or unsafe phrases.
    lowered = " ".join(text.lower().split())
    for phrase in policy.banned_phrases:
        if phrase.lower() in lowered:
            issue("banned_phrase", f"uses the banned phrase '{phrase}'", phrase)

    # Copy rules: help, do not watch; one ask; the offer tied to the friction; signed by the owner.
    if STYLE_RULES_ON:
        for rule, message, excerpt in style_issues(draft, facts):
            issue(rule, message, excerpt)
    return issues


STYLE_RULES_ON = True
