"""Copy rules: an expansion email should read as a helpful note from the account's rep, not as proof of watching.

Four rules, each checkable on the text, shared by the validators (a draft that breaks one is repaired or
flagged), the offline drafter's tests and ``outreach eval`` (a prompt version that breaks them more often
than the one it replaces is a regression):

- **help, don't watch** — no counted clicks, visits, exports, rows or tickets, no "we noticed" / "our data
  shows": quote figures the customer knows themselves (limits, seats, plan caps);
- **one ask** — one question or request per email (a call *or* a link, not both);
- **offer tied to the friction** — the paragraph that names the offer also names what it removes (seats for
  seats, the metric for a limit, the integration for an integration ask);
- **signed by the owner** — the account's owner signs (the catalog's sender only when the owner is unknown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, Protocol

from outreach.drafting.claims import normalise
from outreach.drafting.facts import DraftFacts

StyleRule = Literal["surveillance", "asks", "offer_fit", "signature"]


class _Text(Protocol):
    @property
    def subject(self) -> str: ...
    @property
    def body(self) -> str: ...


_COUNTED = re.compile(
    r"(?i)\b(?:\d[\d,]*|several|multiple|many|dozens of)\s(?:times|clicks|visits|page ?views|views|exports|downloads"
    r"|attempts|sessions|logins|searches|rows|tickets|support tickets|requests|abandon(?:ment)?s|tries)\b"
    r"|\btwice\b(?=\s(?:in|this|last|since|a|per|within|over|now|already|today|yesterday))"
)
_WATCHING = re.compile(
    r"(?i)\b(?:we|i)(?:'ve| have)?\s(?:noticed|saw|spotted|tracked|track|monitored|monitor|watched|observed|detected"
    r"|can see|could see|see that|are seeing|have been watching)\b"
    r"|\b(?:our|the)\s(?:data|logs|records|tracking|analytics|telemetry|usage data|dashboards?)\s(?:show|shows|showed"
    r"|tell|tells|told|indicate|indicates|suggest|suggests|say|says)\b"
    r"|\byou(?:'ve| have)?\s(?:been\s)?(?:looking at|browsing|checking out|clicking|visiting|viewing|hovering)\b"
    r"|\b(?:keeping|kept|keep)\san\seye\son\b|\bit looks like you(?:'ve| have)? (?:clicked|viewed|visited)\b"
)
_ASK = re.compile(
    r"(?i)\?|\b(?:let me know|reply|respond|book (?:a|some|time)|schedule (?:a|some|time)|grab (?:a )?time"
    r"|pick a (?:time|slot)|click|visit|sign up|start (?:a|your) trial|upgrade (?:now|today|here|at|in)"
    r"|see the details|details are at|take a look|check out|learn more|get started|hop on|jump on|set up a call"
    r"|reach out|contact (?:me|us)|calendar link)\b|https?://|\bwww\."
)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


def surveillance_phrases(text: str, facts: DraftFacts | None = None) -> list[str]:
    """Phrases that read as watching the customer: counted behaviour, 'we noticed', 'our data shows' (not
    those that quote the offer's own words, like an add-on's "in two sessions"; the engine's friction
    statements count clicks and visits, and quoting those is exactly what this rule stops)."""
    clean = normalise(text)
    found = [m.group(0) for m in _COUNTED.finditer(clean)] + [m.group(0) for m in _WATCHING.finditer(clean)]
    quoted = normalise(facts.offer.model_dump_json()).lower() if facts is not None else ""
    return [phrase for phrase in found if phrase.lower() not in quoted]


def _closing_start(lines: list[str]) -> int:
    """Index of the sign-off line ('Best,', 'Thanks,' …), or len(lines) when there is none."""
    for index in range(len(lines) - 1, max(len(lines) - 6, -1), -1):
        if re.fullmatch(r"(?i)(?:best|thanks|thank you|cheers|regards|best regards|kind regards|warmly|all the best)"
                        r"[ ,!.]*", lines[index].strip()):
            return index
    return len(lines)


def asks_in(body: str) -> list[str]:
    """The sentences of the body (before the sign-off) that ask the reader for something."""
    lines = body.strip().splitlines()
    main = "\n".join(lines[: _closing_start(lines)])
    return [m.group(0).strip() for m in _SENTENCE.finditer(main) if m.group(0).strip() and _ASK.search(m.group(0))]


def offer_names(facts: DraftFacts) -> list[str]:
    offer = facts.offer
    names = [offer.name, *(item.name for item in offer.includes)]
    if offer.plan is not None:
        names.append(offer.plan.name)
    return [n for n in names if n]


def offer_fits(body: str, facts: DraftFacts) -> tuple[bool, str]:
    """Whether a paragraph names the offer together with what the primary friction is about."""
    terms = [t.lower() for t in facts.primary.terms]
    names = [re.compile(rf"(?<![\w-]){re.escape(n)}(?![\w-])") for n in offer_names(facts)]  # proper nouns: case counts
    paragraphs = [p for p in re.split(r"\n\s*\n", body) if p.strip()]
    naming = [p.lower() for p in paragraphs if any(name.search(p) for name in names)]
    if not naming:
        return False, f"never names the offer ({facts.offer.name})"
    if not terms or any(term in p for p in naming for term in terms):
        return True, ""
    return False, (f"the offer ({facts.offer.name}) is not tied to the friction: the paragraph naming it says nothing "
                   f"about {' / '.join(facts.primary.terms[:3])}")


def signed_by(body: str, facts: DraftFacts) -> tuple[bool, str]:
    """Whether the sign-off names the signer in the facts (the account's owner when known)."""
    lines = [line.strip() for line in body.strip().splitlines() if line.strip()]
    tail = "\n".join(lines[-4:]).lower()
    if facts.sender.name.lower() not in tail:
        return False, f"is not signed by {facts.sender.name}" + (" (the account's owner)" if facts.sender.owner else "")
    if facts.sender.owner and facts.company.sender_name.lower() != facts.sender.name.lower() \
            and facts.company.sender_name.lower() in tail:
        return False, f"is signed by {facts.company.sender_name}, not the account's owner {facts.sender.name}"
    return True, ""


def style_issues(draft: _Text, facts: DraftFacts) -> Iterable[tuple[StyleRule, str, str]]:
    """Every copy rule the draft breaks, as (rule, message, excerpt)."""
    for phrase in dict.fromkeys(surveillance_phrases(f"{draft.subject}\n{draft.body}", facts)):
        yield "surveillance", f"reads as watching the customer ('{phrase}'); quote what they know, not what we counted", \
            phrase
    asks = asks_in(draft.body)
    if len(asks) > 1:
        yield "asks", f"asks {len(asks)} things; keep one ask ('{asks[0][:60]}' … '{asks[1][:60]}')", asks[1]
    fits, why = offer_fits(draft.body, facts)
    if not fits:
        yield "offer_fit", why, facts.offer.name
    signed, why = signed_by(draft.body, facts)
    if not signed:
        yield "signature", why, facts.sender.name
