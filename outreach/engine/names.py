"""How names from the data read in a sentence, defined once for the engine and for drafting.

One word map (``sso`` → SSO, ``hubspot`` → HubSpot, …) and two rules on top of it: :func:`label` for things
(features, metrics, workflows: ``api_access`` → "API access"), :func:`proper_name` for names (integrations,
departments: ``sales_ops`` → "Sales Ops"). :data:`TIMES` spells small counts ("once", "twice") for Python and,
through :func:`outreach.engine.triggers.sql.times`, for the statements DuckDB writes.
"""

from __future__ import annotations

SPECIAL_WORDS: dict[str, str] = {
    "api": "API",
    "bigquery": "BigQuery",
    "csv": "CSV",
    "hubspot": "HubSpot",
    "sso": "SSO",
}

TIMES: dict[int, str] = {1: "once", 2: "twice"}


def label(text: str) -> str:
    """A thing's name as words: underscores become spaces, known words their usual spelling (``api_access`` →
    "API access", ``audit_log`` → "audit log")."""
    words = text.replace("_", " ").split()
    return " ".join(SPECIAL_WORDS.get(word.lower(), word) for word in words)


def title(text: str) -> str:
    """:func:`label` with a capital first letter ("Report builder")."""
    words = label(text)
    return words[:1].upper() + words[1:]


def proper_name(name: str) -> str:
    """An integration's or department's name: ``hubspot`` → HubSpot, ``sales_ops`` → Sales Ops; a name written
    with capitals (``Finance``, ``NetSuite``) stays as written."""
    special = SPECIAL_WORDS.get(name.lower())
    if special is not None:
        return special
    if not name.islower():
        return name
    return " ".join(SPECIAL_WORDS.get(word, word.title()) for word in name.replace("_", " ").split(" "))


def times(count: int) -> str:
    """"once", "twice", "3 times"."""
    return TIMES.get(count, f"{count} times")
