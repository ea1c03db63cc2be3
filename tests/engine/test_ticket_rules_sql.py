"""The ticket rules have two implementations for speed: DuckDB (topical tags, integration asks in ASCII text)
and :mod:`outreach.engine.topics` (the reference). A bounded property test pins them together on generated
tickets: mixed tags (generic, topical, empty, upper case), integration wording, known and unknown names,
punctuation inside names and non-ASCII text."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.engine.data import load_dataset
from outreach.engine.topics import GENERIC_TAGS, integration_mentions, ticket_topics
from outreach.engine.triggers.builtin.integration_request import IntegrationRequest, catalog_integrations
from tests.datadir import AS_OF, DataDir
from tests.engine.triggers.helpers import ticket_tables

NAMES = ["salesforce", "Google Sheets", "zoho.crm", "c++sdk", "HubSpot"]
WORDS = ["sync", "integrate", "connector", "report", "viewer", "permissions", "export", "slow", "für", "Sökbar",
         "please", "api", "plug-in", "zohoXcrm", "connect", "broken", "again"]
TAGS = [*sorted(GENERIC_TAGS)[:4], "permissions", "Exports", "integrations", "integration", "", "billing"]

ticket = st.tuples(
    st.lists(st.sampled_from(WORDS + NAMES), min_size=1, max_size=6).map(" ".join),
    st.lists(st.sampled_from(WORDS + NAMES), max_size=6).map(" ".join),
    st.lists(st.sampled_from(TAGS), max_size=3),
    st.integers(min_value=1, max_value=80),
    st.sampled_from(["acme", "beta"]),
)


@settings(max_examples=20)
@given(tickets=st.lists(ticket, min_size=1, max_size=8), requested=st.lists(st.sampled_from(NAMES), max_size=3))
def test_duckdb_ticket_rules_equal_the_python_reference(
    tickets: list[tuple[str, str, list[str], int, str]], requested: list[str]
) -> None:
    data = DataDir()
    data.account("acme").active("acme")
    data.account("beta").active("beta")
    for name in requested:
        data.event("acme", "Integration Requested", 3, integration=name)
    for subject, description, tags, days, account in tickets:
        data.ticket(account, days, subject, description=description, tags=tags)
    with tempfile.TemporaryDirectory() as directory:
        recent, topics, mentions = ticket_tables(data, Path(directory))
        catalog = load_dataset(Path(directory) / "data").catalog
    assert {ticket_id: {topic} for ticket_id, topic in ticket_topics(recent).items()} == topics
    known = {name.lower() for name in requested} | catalog_integrations(catalog)
    start = AS_OF - timedelta(days=IntegrationRequest().window_days)
    asked = [t for t in recent if t.created_at.date() >= start]
    assert mentions == [
        (t.account_id, name, t.id)
        for t in asked
        for name in integration_mentions(t.subject, t.description, t.tags, known)
    ]

