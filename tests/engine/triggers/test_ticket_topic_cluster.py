"""ticket_topic_cluster: many of an account's recent tickets about one topic: the team spends its time on one
problem.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datadir import DataDir
from tests.engine.triggers.helpers import StatementCase, check_statement, signals_of, ticket_tables

CASES: list[StatementCase] = [
    (
        "ticket_topic_cluster",
        "data_exports",
        {"topic": "data_exports", "tickets": 4, "total_tickets": 9, "share_pct": 44, "window_days": 90},
        90,
        "opened 4 of 9 support tickets about data exports in the last 90 days (44%)",
        1.1,
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_statement_and_strength(case: StatementCase) -> None:
    check_statement(case)


def test_ticket_topic_cluster(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in (5, 15, 30):
        datadir.ticket("acme", days, "Viewer cannot edit dashboard", tags=["permissions"])
    for days, tag in ((6, "billing"), (7, "exports"), (8, "sso"), (9, "performance"), (10, "onboarding")):
        datadir.ticket("acme", days, "Something else", tags=[tag])
    datadir.ticket("acme", 100, "Old permissions question", tags=["permissions"])  # outside 90 days
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "ticket_topic_cluster"
    assert signal.figures == {
        "topic": "permissions",
        "tickets": 3,
        "total_tickets": 8,
        "share_pct": 38,
        "window_days": 90,
    }


def test_untagged_tickets_cluster_by_tfidf_keyword(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days, subject in (
        (5, "Permissions for new viewer"),
        (6, "Viewer permissions reset"),
        (7, "Permissions missing after invite"),
    ):
        datadir.ticket("acme", days, subject)
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "ticket_topic_cluster" and signal.subject == "permissions"


def test_ticket_topics_in_duckdb_equal_outreach_topics(datadir: DataDir, tmp_path: Path) -> None:
    from outreach.engine.topics import ticket_topics

    datadir.account("acme").active("acme")
    datadir.account("beta").active("beta")
    datadir.ticket("acme", 3, "Viewer cannot edit dashboard", tags=["Permissions", "urgent"])
    datadir.ticket("acme", 4, "Viewer permissions again")  # untagged: TF-IDF
    datadir.ticket("acme", 5, "Permissions für Betrachter", tags=["question", ""])  # only generic tags
    datadir.ticket("beta", 6, "CSV export is slow", tags=["exports"])
    datadir.ticket("beta", 7, "Export timing out on large reports")
    datadir.ticket("beta", 8, "Hello", description="", tags=[])  # no topic words: "general"
    datadir.ticket("beta", 9, "Export again", id="T-1000")  # repeats the first ticket's id
    recent, topics, _ = ticket_tables(datadir, tmp_path)
    expected = ticket_topics(recent)
    assert {ticket_id: {topic} for ticket_id, topic in expected.items()} == topics
