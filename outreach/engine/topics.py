"""Offline topic assignment for support tickets, and integration asks hidden in ticket text.

A ticket's topic is its first topical tag (Zendesk tags are usually the team's own topic labels); a ticket
without one gets the most distinctive word of its subject by TF-IDF over the tickets analysed together.
This needs no model download and gives stable, explainable clusters; docs/engine.md explains the choice.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import NamedTuple

GENERIC_TAGS = frozenset(
    {
        "question",
        "bug",
        "urgent",
        "support",
        "help",
        "feedback",
        "request",
        "issue",
        "problem",
        "ticket",
        "email",
        "web",
        "chat",
        "phone",
        "api_channel",
        "high",
        "low",
        "normal",
        "vip",
        "escalated",
        "other",
    }
)

STOP_WORDS = frozenset(
    ["a", "about", "above", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "don", "down", "during", "each", "few", "for", "from", "further", "get", "got", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "let", "me", "more", "most", "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over", "own", "please", "same", "she", "should", "so", "some", "such", "than", "thank", "thanks", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "hi", "hello", "team", "still", "again", "issue", "problem", "help", "need", "needs", "trying", "tried", "cannot", "can't", "cant", "doesn't", "isn't", "won't", "way", "one", "two", "us", "use", "using", "used", "re", "fw", "fwd", "working", "work", "works"]
)

_WORD = re.compile(r"[a-z][a-z0-9_+-]{2,}")
INTEGRATION_WORDS = re.compile(
    r"\b(integrat\w*|sync\w*|connect\w*|plug-?in|connector|import from|export to|push to|pull from|api)\b"
)


class TicketText(NamedTuple):
    """What topic assignment reads from a ticket (:class:`outreach.engine.data.Ticket` has the same attributes)."""

    id: str
    account_id: str
    subject: str
    description: str
    tags: Sequence[str]


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def topical_tag(ticket: TicketText) -> str | None:
    for tag in ticket.tags:
        if tag and tag not in GENERIC_TAGS:
            return tag
    return None


def ticket_topics(tickets: Iterable[TicketText]) -> dict[str, str]:
    """Map ticket id → topic for tickets analysed together.

    Untagged tickets are grouped per account and each takes the subject word (description words when the
    subject has none) that scores highest on TF-IDF with the account as the document: a word that recurs
    across this account's tickets but is rare across accounts names the cluster.
    """
    tickets = list(tickets)
    topics: dict[str, str] = {}
    untagged: dict[str, list[TicketText]] = {}
    for ticket in tickets:
        tag = topical_tag(ticket)
        if tag is not None:
            topics[ticket.id] = tag
        else:
            untagged.setdefault(ticket.account_id, []).append(ticket)
    if not untagged:
        return topics
    words_of = {
        t.id: (set(_words(t.subject)), set(_words(t.description)))
        for group in untagged.values()
        for t in group
    }
    accounts_with: Counter[str] = Counter()
    account_frequency: dict[str, Counter[str]] = {}
    for account_id, group in untagged.items():
        frequency: Counter[str] = Counter()
        for ticket in group:
            subject, body = words_of[ticket.id]
            frequency.update(subject | body)
        account_frequency[account_id] = frequency
        accounts_with.update(frequency.keys())
    total = len(untagged)
    for account_id, group in untagged.items():
        frequency = account_frequency[account_id]
        for ticket in group:
            subject, body = words_of[ticket.id]
            candidates = subject or body
            if not candidates:
                topics[ticket.id] = "general"
                continue

            def score(word: str, frequency: Counter[str] = frequency) -> float:
                return frequency[word] * (math.log((1 + total) / (1 + accounts_with[word])) + 1)

            topics[ticket.id] = min(candidates, key=lambda word: (-score(word), word))
    return topics


def integration_mentions(subject: str, description: str, tags: Sequence[str], known: set[str]) -> list[str]:
    """Integrations a ticket asks for: a known integration name next to integration wording, or the
    ``integrations`` tag. Returned lower-case, sorted."""
    text = f"{subject}\n{description}".lower()
    asks = "integration" in tags or "integrations" in tags or INTEGRATION_WORDS.search(text)
    if not asks:
        return []
    return sorted(name for name in known if re.search(rf"\b{re.escape(name)}\b", text))
