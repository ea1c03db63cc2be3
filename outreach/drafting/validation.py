"""Draft validation: every draft, from every provider, is checked against the facts before anyone sees it.

A model (or a marketing edit to a template) can get a number wrong, name a plan that is not on offer, follow
a link planted in a ticket, promise a discount policy does not allow, or mention another customer. Each rule
here returns an :class:`Issue` with the reason, so a failed draft is repaired, flagged or rejected, never
silently passed. Rules are deliberately literal (string and number matching), not another model's opinion.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from outreach.drafting.config import ValidationPolicy
from outreach.drafting.facts import DraftFacts
from outreach.engine.catalog import Catalog
from outreach.engine.data import Account

IssueRule = Literal[
    "empty",
    "length",
    "number",
    "catalog_name",
    "price",
    "url",
    "discount",
    "banned_phrase",
    "other_account",
    "offer_id",
    "friction_id",
]


class Issue(BaseModel):
    """Why a draft cannot go out as is. ``excerpt`` is the offending text, for the reviewer."""

    model_config = ConfigDict(frozen=True)

    rule: IssueRule
    message: str
    excerpt: str = ""


class DraftText(Protocol):
    """The parts of a draft the validators read (``outreach.drafting.drafts.Draft`` satisfies it)."""

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


# ------------------------------------------------------------------------------------------------ numbers

_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>()\"']+")
_EMAIL = re.compile(r"(?i)\b[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
_TLDS = "com|net|org|io|co|ai|app|dev|xyz|info|biz|ly|me|us|uk|de|fr|ru|cn|tk|click|link|site|online|shop"
_BARE_DOMAIN = re.compile(rf"(?i)(?<![\w@./-])((?:[a-z0-9-]+\.)+(?:{_TLDS}))(?:/[^\s]*)?\b")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")
_WORDS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "hundred": 100, "thousand": 1000, "million": 1_000_000,
}
_NUMBER_WORD = re.compile(r"(?i)\b(" + "|".join(_WORDS) + r")\b")


def _without_links(text: str) -> str:
    return _BARE_DOMAIN.sub(" ", _EMAIL.sub(" ", _URL.sub(" ", text)))


def numbers_in(text: str) -> list[tuple[float, str]]:
    """Every number in ``text`` with its spelling: 1,200 / 50% / $99.50 / 30-day / 'three'. URLs and email
    addresses are skipped (their digits are not claims)."""
    clean = _without_links(text)
    found: list[tuple[float, str]] = []
    for match in _NUMBER.finditer(clean):
        whole = match.group(1).replace(",", "")
        value = float(f"{whole}.{match.group(2)}") if match.group(2) else float(whole)
        found.append((value, match.group(0)))
    for match in _NUMBER_WORD.finditer(clean):
        found.append((float(_WORDS[match.group(1).lower()]), match.group(0)))
    return found


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
            allowed.update(number for number, _ in numbers_in(value))
    return allowed


# ------------------------------------------------------------------------------------------------ rules


def _contains(text: str, needle: str, *, case: bool = True) -> bool:
    if not needle:
        return False
    flags = 0 if case else re.IGNORECASE
    return re.search(rf"(?<![\w-]){re.escape(needle)}(?![\w-])", text, flags) is not None


def _host_allowed(host: str, allowed: set[str]) -> bool:
    host = host.lower().strip(".")
    return any(host == domain or host.endswith("." + domain) for domain in allowed)


def _hosts(text: str) -> list[tuple[str, str]]:
    """(host, as written) for every URL, bare domain and email domain in ``text``."""
    found: list[tuple[str, str]] = []
    for match in _URL.finditer(text):
        written = match.group(0).rstrip(".,;:!?")
        url = written if "://" in written else "http://" + written
        found.append(((urlsplit(url).hostname or ""), written))
    rest = _URL.sub(" ", text)
    for match in _EMAIL.finditer(rest):
        found.append((match.group(1), match.group(0)))
    rest = _EMAIL.sub(" ", rest)
    for match in _BARE_DOMAIN.finditer(rest):
        found.append((match.group(1), match.group(0)))
    return found


_DISCOUNT = re.compile(
    r"(?i)\b(discount\w*|coupon|promo(?:tion|tional)?(?: code)?|\d+(?:\.\d+)?\s?% (?:off|less|lower|cheaper|"
    r"savings?|discount)|(?:off|save|saving|savings) (?:of )?\d+(?:\.\d+)?\s?%|free (?:month|months|trial|upgrade)"
    r"|\d+(?:\.\d+)?\s?% (?:below|under)|for free|free of charge|at no (?:extra |additional )?cost"
    r"|(?:is|are|be) (?:now |completely |totally )?free\b)"
)
_NAMED_ITEM = re.compile(
    r"\b((?:[A-Z][\w+-]*)(?: [A-Z][\w+-]*)*) (plan|tier|add-on|addon|package|edition|bundle)\b"
)
_PCT = re.compile(r"(\d+(?:\.\d+)?)\s?%")
_MONEY = re.compile(r"(?i)(?:[$€£]\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?|(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?"
                    r"\s?(?:usd|eur|gbp|dollars|euros))")


def _allowed_prices(facts: DraftFacts) -> set[float]:
    offer = facts.offer
    prices = {offer.price_monthly, offer.price_after_discount, round(offer.price_monthly - offer.price_after_discount, 2)}
    if offer.quantity > 1:
        prices.add(round(offer.price_monthly / offer.quantity, 2))
    prices.update(item.price_monthly for item in offer.includes)
    if offer.plan is not None and offer.kind == "plan":
        prices.add(offer.plan.price_monthly)
    return {round(p, 2) for p in prices}


def validate_draft(
    draft: DraftText,
    facts: DraftFacts,
    catalog: Catalog,
    policy: ValidationPolicy,
    *,
    other_accounts: Sequence[Account] = (),
) -> list[Issue]:
    """Every reason the draft cannot go out as written; an empty list means it passed every rule."""
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

    # Numbers: every number must appear among the facts.
    allowed = fact_numbers(facts)
    seen: set[str] = set()
    for number, written in numbers_in(text):
        if number not in allowed and round(number, 2) not in allowed and written not in seen:
            seen.add(written)
            issue("number", f"'{written}' does not appear in the facts", written)

    # Catalog names: only the offer (and a bundle's contents) and the account's current plan.
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
        issue("catalog_name", f"names the {kind} '{name}', which is not the chosen offer '{offer.name}'", name)
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
        issue("catalog_name", f"names a {match.group(2)} '{name}' that is not in the catalog", match.group(0))

    # Prices: any amount of money must be one of the offer's prices.
    prices = _allowed_prices(facts)
    for match in _MONEY.finditer(_without_links(text)):
        whole = (match.group(1) or match.group(3) or "0").replace(",", "")
        cents = match.group(2) or match.group(4)
        amount = round(float(f"{whole}.{cents}") if cents else float(whole), 2)
        if amount not in prices:
            issue("price", f"'{match.group(0).strip()}' is not a price of the chosen offer", match.group(0))

    # Links: only the company's own domains (and the upgrade / unsubscribe URLs).
    domains = {d.lower() for d in [*facts.company.domains, *policy.allowed_domains]}
    for url in (facts.company.upgrade_url, facts.company.unsubscribe_url):
        host = urlsplit(url).hostname
        if host:
            domains.add(host.lower())
    domains.add(facts.company.sender_email.rsplit("@", 1)[-1].lower())
    for host, written in _hosts(text):
        if not _host_allowed(host, domains):
            issue("url", f"links to '{host}', which is not one of the company's domains", written)

    # Discounts: only a green account, only the offer's own discount, never above policy.
    mentions = [m.group(0) for m in _DISCOUNT.finditer(text)]
    if mentions:
        cap = policy.max_discount_pct if policy.max_discount_pct is not None else catalog.policy.max_discount_pct
        if facts.account.health_band != "green":
            issue("discount", f"mentions a discount to a {facts.account.health_band} account", mentions[0])
        elif not offer.discount_pct:
            issue("discount", "mentions a discount but the offer has none", mentions[0])
        else:
            for mention in mentions:
                for pct in _PCT.findall(mention):
                    if float(pct) > cap or float(pct) != offer.discount_pct:
                        issue("discount", f"offers {pct}% (offer discount {offer.discount_pct:g}%, policy max "
                              f"{cap:g}%)", mention)

    # Banned generic or unsafe phrases.
    lowered = " ".join(text.lower().split())
    for phrase in policy.banned_phrases:
        if phrase.lower() in lowered:
            issue("banned_phrase", f"uses the banned phrase '{phrase}'", phrase)

    # Other accounts: never name another customer or its domain. A plain substring test first: the word-boundary
    # regex can only match where the text holds the name, and compiling one regex per account of 100k cost seconds.
    folded = text.lower()
    for account in other_accounts:
        if account.account_id == facts.account.id:
            continue
        name = account.name.strip()
        if (len(name) >= 3 and name.lower() in folded and name.lower() != facts.account.name.lower()
                and _contains(text, name, case=False)):
            issue("other_account", f"mentions another account, '{name}'", name)
        if account.domain and account.domain.lower() in folded and _contains(folded, account.domain.lower()):
            issue("other_account", f"mentions another account's domain, '{account.domain}'", account.domain)
    return issues
