"""integration_request: an integration asked for, in the product or in a support ticket: until the systems talk,
someone copies data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from outreach.engine.data import load_dataset
from tests.datadir import DataDir
from tests.engine.triggers.helpers import StatementCase, check_statement, signals_of, ticket_tables

CASES: list[StatementCase] = [
    (
        "integration_request",
        "hubspot",
        {"integration": "hubspot", "requests": 2, "tickets": 1, "window_days": 60},
        60,
        "asked about a HubSpot integration (asked for it in the product twice and in 1 support ticket) in the last 60 days",
        2.068,
    ),
    (
        "integration_request",
        "sales_force",
        {"integration": "sales_force", "requests": 0, "tickets": 3, "window_days": 60},
        60,
        "asked about a Sales Force integration (in 3 support tickets) in the last 60 days",
        2.068,
    ),
    (
        "integration_request",
        "NetSuite",
        {"integration": "NetSuite", "requests": 1, "tickets": 0, "window_days": 60},
        60,
        "asked about a NetSuite integration (asked for it in the product once) in the last 60 days",
        0.8,
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_statement_and_strength(case: StatementCase) -> None:
    check_statement(case)


def test_integration_request_from_event_and_ticket(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    event_id = datadir.event("acme", "Integration Requested", 5, integration="salesforce")
    ticket_id = datadir.ticket("acme", 8, "Does Ledgerly integrate with Salesforce?", tags=["integrations"])
    datadir.ticket("acme", 9, "Salesforce report looks wrong", tags=["reports"])  # mentions, does not ask
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "integration_request" and signal.motion == "cross_sell"
    assert signal.figures == {"integration": "salesforce", "requests": 1, "tickets": 1, "window_days": 60}
    assert signal.evidence == [event_id, ticket_id]


@pytest.mark.parametrize(
    "names", [("Google Sheets", "zoho.crm", "c++sdk"), ("Google Sheets", "zoho.crm", "Sökbar")]
)
def test_integration_asks_in_duckdb_equal_outreach_topics(
    datadir: DataDir, tmp_path: Path, names: tuple[str, ...]
) -> None:
    """A non-ASCII integration name sends every ask to Python (RE2's \\b is ASCII-only)."""
    from outreach.engine.topics import integration_mentions
    from outreach.engine.triggers.builtin.integration_request import catalog_integrations

    datadir.account("acme").active("acme")
    for name in names:
        datadir.event("acme", "Integration Requested", 4, integration=name)
    datadir.ticket("acme", 3, "Können wir Salesforce anbinden? Integration gewünscht")  # non-ASCII: Python
    datadir.ticket("acme", 4, "Sync to Google Sheets and zoho.crm please")
    datadir.ticket("acme", 5, "zohoXcrm connector", description="the c++sdk plugin")  # '.' is not a wildcard
    datadir.ticket("acme", 6, "HubSpot numbers look wrong", tags=["integrations"])  # the tag asks
    datadir.ticket("acme", 7, "Salesforce report looks wrong")  # mentions, does not ask
    datadir.ticket("acme", 8, "Sökbar API access?")
    recent, _, mentions = ticket_tables(datadir, tmp_path)
    catalog = load_dataset(tmp_path / "data").catalog
    known = {name.lower() for name in names} | catalog_integrations(catalog)
    expected = [
        (t.account_id, name, t.id)
        for t in recent
        for name in integration_mentions(t.subject, t.description, t.tags, known)
    ]
    assert mentions == expected and len(expected) >= 4
