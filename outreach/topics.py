"""Offline topic assignment for support tickets, and integration asks hidden in ticket text.

A ticket's topic is its first topical tag (Zendesk tags are usually the team's own topic labels); a ticket
without one gets the most distinctive word of its subject by TF-IDF over the tickets analysed together.
This needs no model download and gives stable, explainable clusters; docs/rules.md explains the choice.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

from outreach.data import Ticket

GENERIC_TAGS = frozenset(
    {
        "question", "bug", "urgent", "support", "help", "feedback", "request", "issue", "problem", "ticket",
        "email", "web", "chat", "phone", "api_channel", "high", "low", "normal", "vip", "escalated", "other",
    }
)

STOP_WORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being below between
    both but by can could did do does doing don down during each few for from further get got had has have
    having he her here hers him his how i if in into is it its just let me more most my no nor not now of off
    on once only or other our ours out over own please same she should so some such than thank thanks that
    the their them then there these they this those through to too under until up very was we were what when
    where which while who whom why will with would you your yours hi hello team still again issue problem
    help need needs trying tried cannot can't cant doesn't isn't won't way one two us use using used
    re fw fwd working work works""".split()
)

_WORD = re.compile(r"[a-z][a-z0-9_+-]{2,}")
_INTEGRATION_WORDS = re.compile(
    r"\b(integrat\w*|sync\w*|connect\w*|plug-?in|connector|import from|export to|push to|pull from|api)\b"
)


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def topical_tag(ticket: Ticket) -> str | None:
    for tag in ticket.tags:
        if tag and tag not in GENERIC_TAGS:
            return tag
    return None


def ticket_topics(tickets: Iterable[Ticket]) -> dict[str, str]:
    """Map ticket id → topic for a set of tickets analysed together (the TF-IDF corpus)."""
    tickets = list(tickets)
    topics: dict[str, str] = {}
    untagged = [t for t in tickets if topical_tag(t) is None]
    document_frequency: Counter[str] = Counter()
    documents: dict[str, list[str]] = {}
    for ticket in untagged:
        words = _words(f"{ticket.subject} {ticket.subject} {ticket.description}")
        documents[ticket.id] = words
        document_frequency.update(set(words))
    total = max(len(untagged), 1)
    for ticket in tickets:
        tag = topical_tag(ticket)
        if tag is not None:
            topics[ticket.id] = tag
            continue
        words = documents.get(ticket.id, [])
        if not words:
            topics[ticket.id] = "general"
            continue
        counts = Counter(words)
        subject_words = set(_words(ticket.subject))

        def score(word: str, counts: Counter[str] = counts, subject_words: set[str] = subject_words) -> float:
            idf = math.log((1 + total) / (1 + document_frequency[word])) + 1
            return counts[word] * idf * (1.5 if word in subject_words else 1.0)

        topics[ticket.id] = min(counts, key=lambda word: (-score(word), word))
    return topics


def integration_mentions(ticket: Ticket, known: set[str]) -> list[str]:
    """Integrations a ticket asks for: a known integration name next to integration wording, or the
    ``integrations`` tag. Returned lower-case, sorted."""
    text = f"{ticket.subject}\n{ticket.description}".lower()
    asks = "integration" in ticket.tags or "integrations" in ticket.tags or _INTEGRATION_WORDS.search(text)
    if not asks:
        return []
    return sorted(name for name in known if re.search(rf"\b{re.escape(name)}\b", text))
