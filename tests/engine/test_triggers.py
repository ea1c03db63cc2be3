"""Each trigger fires on exactly the behaviour it describes, and not just below its threshold."""

from __future__ import annotations

from pathlib import Path

import pytest

from outreach.engine.data import load_dataset
from outreach.engine.decisions import decide, rules_for
from outreach.engine.triggers import Signal, detect_signals
from outreach.types import SIGNAL_KINDS
from tests.datadir import AS_OF, DataDir


def signals_of(data: DataDir, tmp_path: Path, account_id: str = "acme") -> list[Signal]:
    dataset = load_dataset(data.write(tmp_path / "data"))
    return detect_signals(dataset, rules_for(dataset), AS_OF)[account_id].signals


def kinds(signals: list[Signal]) -> list[str]:
    return sorted(s.kind for s in signals)


def test_quiet_healthy_account_fires_nothing(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    assert signals_of(datadir, tmp_path) == []


def test_repeated_limit_hits(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    ids = [datadir.event("acme", "Limit Reached", d, limit="reports", used=50, cap=50) for d in (3, 10, 25)]
    datadir.event("acme", "Limit Reached", 45, limit="reports", used=50, cap=50)  # outside 30 days
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "repeated_limit_hits" and signal.motion == "upsell"
    assert signal.figures == {"limit": "reports", "hits": 3, "window_days": 30, "cap": 50, "max_used": 50}
    assert signal.evidence == ids  # newest first


def test_two_limit_hits_is_not_a_pattern(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in (3, 10):
        datadir.event("acme", "Limit Reached", days, limit="reports", used=50, cap=50)
    assert signals_of(datadir, tmp_path) == []


def test_usage_near_limit_uses_latest_snapshot(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    datadir.event("acme", "Usage Reported", 20, metric="storage_gb", used=20)
    latest = datadir.event("acme", "Usage Reported", 2, metric="storage_gb", used=42)
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "usage_near_limit"
    assert signal.figures == {"metric": "storage_gb", "used": 42, "cap": 50, "pct": 84}
    assert signal.evidence == [latest]


def test_usage_below_threshold_and_stale_snapshots_are_ignored(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    datadir.event("acme", "Usage Reported", 2, metric="storage_gb", used=39)  # 78%
    datadir.event("acme", "Usage Reported", 45, metric="api_calls", used=99000)  # stale
    assert signals_of(datadir, tmp_path) == []


def test_seat_pressure_from_usage(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", seats_purchased=20).active("acme")
    datadir.event("acme", "Usage Reported", 1, metric="seats", used=19)
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "seat_pressure"
    assert signal.figures == {"seats_used": 19, "seats": 20, "pct": 95}


def test_seats_between_80_and_90_percent_are_usage_near_limit(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", seats_purchased=20).active("acme")
    datadir.event("acme", "Usage Reported", 1, metric="seats", used=17)
    assert kinds(signals_of(datadir, tmp_path)) == ["usage_near_limit"]


def test_seat_pressure_from_removals_to_make_room(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in (5, 12):
        datadir.event("acme", "User Removed", days)
        datadir.event("acme", "User Invited", days - 0.5)
    datadir.event("acme", "User Removed", 20)  # no invite after it: not a swap
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "seat_pressure" and signal.figures["swaps"] == 2


def test_locked_feature(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in (1, 2, 3, 4):
        datadir.event("acme", "Locked Feature Clicked", days, feature="sso")
    datadir.event("acme", "Locked Feature Clicked", 2, feature="audit_log")
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "locked_feature" and signal.subject == "sso" and signal.figures["clicks"] == 4


def test_headcount_growth(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", employees_at_contract=80, employees_now=100).active("acme")
    datadir.account("beta", employees_at_contract=80, employees_now=99).active("beta")
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "headcount_growth" and signal.figures["growth_pct"] == 25
    assert signals_of(datadir, tmp_path / "b", "beta") == []


def test_strong_nps_needs_activation(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", nps=9).active("acme")
    datadir.account("beta", nps=10, activated_at="").active("beta")
    assert kinds(signals_of(datadir, tmp_path)) == ["strong_nps"]
    assert signals_of(datadir, tmp_path / "b", "beta") == []


def test_integration_request_from_event_and_ticket(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    event_id = datadir.event("acme", "Integration Requested", 5, integration="salesforce")
    ticket_id = datadir.ticket("acme", 8, "Does Ledgerly integrate with Salesforce?", tags=["integrations"])
    datadir.ticket("acme", 9, "Salesforce report looks wrong", tags=["reports"])  # mentions, does not ask
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "integration_request" and signal.motion == "cross_sell"
    assert signal.figures == {"integration": "salesforce", "requests": 1, "tickets": 1, "window_days": 60}
    assert signal.evidence == [event_id, ticket_id]


def test_frequent_exports(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for day in range(8):
        datadir.event("acme", "Export Created", day + 0.5, format="csv", rows=100)
    datadir.event("acme", "Export Created", 20, format="csv", rows=100)  # outside 14 days
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "frequent_exports" and signal.figures == {
        "exports": 8,
        "window_days": 14,
        "rows": 800,
    }


def test_seven_exports_are_not_frequent(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for day in range(7):
        datadir.event("acme", "Export Created", day + 0.5, format="csv", rows=100)
    assert signals_of(datadir, tmp_path) == []


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


def test_addon_page_visits_ignore_owned_addons(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    datadir.account("beta", addons="warehouse-sync").active("beta")
    for account in ("acme", "beta"):
        for days in (1, 4, 9):
            datadir.event(account, "Page Viewed", days, name="Warehouse Sync", addon="warehouse-sync")
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "addon_page_visits" and signal.figures["visits"] == 3
    assert signals_of(datadir, tmp_path / "b", "beta") == []


def test_new_department(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    datadir.event("acme", "User Invited", 200, department="Marketing")
    datadir.event("acme", "User Invited", 5, department="Marketing")  # known department
    datadir.event("acme", "User Invited", 4, department="Finance")
    datadir.event("acme", "User Invited", 3, department="Finance")
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "new_department" and signal.figures == {
        "department": "Finance",
        "invites": 2,
        "window_days": 30,
    }


def test_first_ever_invites_are_not_a_new_department(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    datadir.event("acme", "User Invited", 4, department="Finance")
    assert signals_of(datadir, tmp_path) == []


def test_workflow_abandoned_at_same_step(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in (2, 6, 11):
        datadir.event("acme", "Workflow Abandoned", days, workflow="report_builder", step="permissions")
    datadir.event("acme", "Workflow Abandoned", 3, workflow="report_builder", step="layout")
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "workflow_abandoned"
    assert signal.figures == {
        "workflow": "report_builder",
        "abandons": 3,
        "window_days": 30,
        "step": "permissions",
    }


def test_events_on_or_after_as_of_are_ignored(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in (-1, -2, -3):
        datadir.event("acme", "Limit Reached", days, limit="reports", used=50, cap=50)
    assert signals_of(datadir, tmp_path) == []


def test_disabled_trigger_does_not_fire(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", nps=10).active("acme")
    root = datadir.write(tmp_path / "data")
    (root / "rules.yaml").write_text("triggers:\n  disabled: [strong_nps]\n")
    dataset = load_dataset(root)
    assert detect_signals(dataset, rules_for(dataset), AS_OF)["acme"].signals == []


def test_thresholds_are_configurable(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in range(5):
        datadir.event("acme", "Export Created", days + 0.5, format="csv", rows=1)
    root = datadir.write(tmp_path / "data")
    (root / "rules.yaml").write_text("triggers:\n  frequent_exports: {min_exports: 5}\n")
    dataset = load_dataset(root)
    [signal] = detect_signals(dataset, rules_for(dataset), AS_OF)["acme"].signals
    assert signal.kind == "frequent_exports"


def test_custom_event_names(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in (1, 2, 3):
        datadir.event("acme", "Quota Hit", days, limit="reports", used=50, cap=50)
    root = datadir.write(tmp_path / "data")
    (root / "rules.yaml").write_text("events:\n  limit_reached: Quota Hit\n")
    dataset = load_dataset(root)
    [signal] = detect_signals(dataset, rules_for(dataset), AS_OF)["acme"].signals
    assert signal.kind == "repeated_limit_hits"


@pytest.mark.parametrize("kind", SIGNAL_KINDS)
def test_every_kind_has_a_motion_and_statement(kind: str, datadir: DataDir, tmp_path: Path) -> None:
    """Smoke check over the vocabulary: a decision for each kind words it without leftovers."""
    datadir.account("acme", nps=10, employees_at_contract=10, employees_now=20, seats_purchased=20).active(
        "acme"
    )
    for days in (1, 2, 3):
        datadir.event("acme", "Limit Reached", days, limit="reports", used=50, cap=50)
        datadir.event("acme", "Locked Feature Clicked", days, feature="sso")
        datadir.event("acme", "Page Viewed", days, addon="warehouse-sync")
        datadir.event("acme", "Workflow Abandoned", days, workflow="report_builder", step="share")
        datadir.ticket("acme", days, "Viewer permissions", tags=["permissions"])
    datadir.event("acme", "Usage Reported", 1, metric="seats", used=19)
    datadir.event("acme", "Usage Reported", 1, metric="storage_gb", used=45)
    datadir.event("acme", "Integration Requested", 1, integration="salesforce")
    datadir.event("acme", "User Invited", 100, department="Sales")
    datadir.event("acme", "User Invited", 2, department="Finance")
    for day in range(8):
        datadir.event("acme", "Export Created", day + 0.2, rows=10)
    dataset = load_dataset(datadir.write(tmp_path / "data"))
    [decision] = decide(dataset, rules_for(dataset), AS_OF)
    found = {f.kind: f for f in decision.frictions}
    assert set(found) == set(SIGNAL_KINDS)
    friction = found[kind]  # type: ignore[index]
    assert friction.statement and "{" not in friction.statement and "None" not in friction.statement


# DuckDB assigns topical tags and matches integration asks in ASCII text; Python (outreach.engine.topics) does the
# TF-IDF topics and non-ASCII text. Together they must give what outreach.engine.topics gives for every ticket.


def ticket_tables(data: DataDir, tmp_path: Path) -> tuple[object, dict[str, set[str]], list[tuple[str, ...]]]:
    from datetime import timedelta

    from outreach.engine.tables import engine_session
    from outreach.engine.triggers import detect

    dataset = load_dataset(data.write(tmp_path / "data"))
    rules = rules_for(dataset)
    with engine_session(dataset.events) as con:
        detect(con, dataset, rules, AS_OF)
        topics: dict[str, set[str]] = {}
        for ticket_id, topic in con.execute("SELECT ticket_id, topic FROM ticket_topic").fetchall():
            topics.setdefault(ticket_id, set()).add(topic)
        mentions = con.execute(
            "SELECT account_id, integration, ticket_id FROM ticket_mention ORDER BY seq"
        ).fetchall()
    recent = [
        t
        for t in dataset.tickets
        if AS_OF - timedelta(days=rules.triggers.ticket_topic_cluster.window_days)
        <= t.created_at.date()
        < AS_OF
    ]
    return recent, topics, mentions


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
    recent, topics, _ = ticket_tables(datadir, tmp_path)
    expected = ticket_topics(recent)
    assert {ticket_id: {topic} for ticket_id, topic in expected.items()} == topics


@pytest.mark.parametrize(
    "names", [("Google Sheets", "zoho.crm", "c++sdk"), ("Google Sheets", "zoho.crm", "Sökbar")]
)
def test_integration_asks_in_duckdb_equal_outreach_topics(
    datadir: DataDir, tmp_path: Path, names: tuple[str, ...]
) -> None:
    """A non-ASCII integration name sends every ask to Python (RE2's \\b is ASCII-only)."""
    from outreach.engine.topics import integration_mentions
    from outreach.engine.triggers import _catalog_integrations

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
    known = {name.lower() for name in names} | _catalog_integrations(catalog)
    expected = [
        (t.account_id, name, t.id)
        for t in recent
        for name in integration_mentions(t.subject, t.description, t.tags, known)
    ]
    assert mentions == expected and len(expected) >= 4
