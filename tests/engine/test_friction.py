"""Friction statements and strengths, computed in DuckDB from ``signal_rows``: exact wording per kind.

The expected sentences were produced by the Python statement builder this SQL replaced; every figure in a
sentence comes from the signal's figures, and numbers of 10,000 or more are grouped.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import pytest

from outreach import bundled
from outreach.engine.catalog import load_catalog
from outreach.engine.friction import frictions
from outreach.engine.rules import load_rules
from outreach.engine.triggers import Figure
from outreach.types import motion_of

CATALOG = load_catalog(bundled.DEMO_DATA / "catalog.yaml")

# (kind, subject, figures, window_days, statement, strength)
CASES: list[tuple[str, str | None, dict[str, Figure], int | None, str, float]] = [
    (
        "repeated_limit_hits",
        "reports",
        {"limit": "reports", "hits": 3, "window_days": 30, "cap": 50, "max_used": 50},
        30,
        "hit the reports limit 3 times in the last 30 days (cap 50)",
        1.0,
    ),
    (
        "repeated_limit_hits",
        "api_calls",
        {"limit": "api_calls", "hits": 7, "window_days": 30, "cap": 250000},
        30,
        "hit the api calls limit 7 times in the last 30 days (cap 250,000)",
        2.3333,
    ),
    (
        "repeated_limit_hits",
        "storage_gb",
        {"limit": "storage_gb", "hits": 1, "window_days": 30},
        30,
        "hit the storage gb limit once in the last 30 days",
        0.3333,
    ),
    (
        "usage_near_limit",
        "storage_gb",
        {"metric": "storage_gb", "used": 12.5, "cap": 15, "pct": 83},
        30,
        "is using 12.5 of 15 storage gb allowed by the plan (83%)",
        0.9338,
    ),
    (
        "usage_near_limit",
        "api_calls",
        {"metric": "api_calls", "used": 12345.67, "cap": 15000, "pct": 82},
        30,
        "is using 12,345.67 of 15,000 api calls allowed by the plan (82%)",
        0.9225,
    ),
    (
        "seat_pressure",
        "seats",
        {"seats_used": 19, "seats": 20, "pct": 95, "swaps": 2},
        30,
        "has 19 of 20 seats in use and removed users to make room for new invites twice in the last 30 days",
        1.0556,
    ),
    (
        "seat_pressure",
        "seats",
        {"swaps": 3, "window_days": 30, "seats": 20},
        30,
        "removed users to make room for new invites 3 times in the last 30 days",
        1.5,
    ),
    (
        "seat_pressure",
        "seats",
        {"seats_used": 18.5, "seats": 20, "pct": 92},
        30,
        "has 18.5 of 20 seats in use",
        1.0222,
    ),
    (
        "locked_feature",
        "sso",
        {"feature": "sso", "clicks": 4, "window_days": 30},
        30,
        "clicked the locked SSO feature 4 times in the last 30 days",
        1.0667,
    ),
    (
        "locked_feature",
        "custom_roles",
        {"feature": "custom_roles", "clicks": 2, "window_days": 30},
        30,
        "clicked the locked custom roles feature twice in the last 30 days",
        0.5333,
    ),
    (
        "headcount_growth",
        "employees",
        {"employees_at_contract": 40, "employees_now": 52, "growth_pct": 30},
        None,
        "grew from 40 to 52 employees since the contract started (+30%)",
        0.6,
    ),
    ("strong_nps", "nps", {"nps": 10}, None, "gave an NPS score of 10", 0.3),
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
    (
        "frequent_exports",
        None,
        {"exports": 9, "window_days": 14, "rows": 870000},
        14,
        "exported data 9 times in the last 14 days (870,000 rows)",
        0.7875,
    ),
    (
        "frequent_exports",
        None,
        {"exports": 8, "window_days": 14},
        14,
        "exported data 8 times in the last 14 days",
        0.7,
    ),
    (
        "ticket_topic_cluster",
        "data_exports",
        {"topic": "data_exports", "tickets": 4, "total_tickets": 9, "share_pct": 44, "window_days": 90},
        90,
        "opened 4 of 9 support tickets about data exports in the last 90 days (44%)",
        1.1,
    ),
    (
        "addon_page_visits",
        "hubspot-sync",
        {"addon": "hubspot-sync", "visits": 5, "window_days": 30},
        30,
        "viewed the HubSpot Sync page 5 times in the last 30 days",
        1.0,
    ),
    (
        "new_department",
        "sales_ops",
        {"department": "sales_ops", "invites": 1, "window_days": 30},
        30,
        "invited 1 user from Sales Ops, a department new to the account, in the last 30 days",
        0.5,
    ),
    (
        "new_department",
        "Finance",
        {"department": "Finance", "invites": 3, "window_days": 30},
        30,
        "invited 3 users from Finance, a department new to the account, in the last 30 days",
        1.5,
    ),
    (
        "workflow_abandoned",
        "report_builder",
        {"workflow": "report_builder", "abandons": 3, "window_days": 30, "step": "share_link"},
        30,
        "abandoned the report builder workflow at the share link step 3 times in the last 30 days",
        0.65,
    ),
    (
        "workflow_abandoned",
        "onboarding",
        {"workflow": "onboarding", "abandons": 5, "window_days": 30},
        30,
        "abandoned the onboarding workflow 5 times in the last 30 days",
        1.0833,
    ),
]


def signal_table(
    rows: list[tuple[str, str, str | None, dict[str, Figure], int | None]],
) -> duckdb.DuckDBPyConnection:
    """A connection holding ``signal_rows`` as :func:`outreach.engine.triggers.detect` leaves it (``ord`` per account)."""
    con = duckdb.connect()
    con.execute(
        "CREATE TEMP TABLE signal_rows (ord BIGINT, account_id VARCHAR, kind VARCHAR, motion VARCHAR, "
        "subject VARCHAR, figures JSON, evidence VARCHAR[], window_days INTEGER)"
    )
    order: dict[str, int] = {}
    for account_id, kind, subject, figures, window_days in rows:
        con.execute(
            "INSERT INTO signal_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                order.setdefault(account_id, len(order)),
                account_id,
                kind,
                motion_of(kind),
                subject,
                orjson.dumps(figures).decode(),
                ["e1"],
                window_days,
            ],
        )
    return con


@pytest.mark.parametrize(("kind", "subject", "figures", "window_days", "statement", "strength"), CASES)
def test_statement_and_strength(
    kind: str,
    subject: str | None,
    figures: dict[str, Figure],
    window_days: int | None,
    statement: str,
    strength: float,
) -> None:
    con = signal_table([("acme", kind, subject, figures, window_days)])
    [friction] = frictions(con, CATALOG, load_rules())["acme"]
    assert friction["statement"] == statement
    assert friction["strength"] == strength
    assert friction["figures"] == figures and friction["kind"] == kind and friction["subject"] == subject
    assert friction["motion"] == motion_of(kind) and friction["evidence"] == ["e1"]


def test_every_kind_has_a_statement_case() -> None:
    from outreach.types import SIGNAL_KINDS

    assert {case[0] for case in CASES} == set(SIGNAL_KINDS)


def test_frictions_are_ranked_strongest_first_then_by_kind_and_subject() -> None:
    con = signal_table(
        [
            ("acme", "strong_nps", "nps", {"nps": 9}, None),
            ("acme", "locked_feature", "sso", {"feature": "sso", "clicks": 3, "window_days": 30}, 30),
            (
                "acme",
                "repeated_limit_hits",
                "reports",
                {"limit": "reports", "hits": 6, "window_days": 30},
                30,
            ),
            (
                "acme",
                "locked_feature",
                "audit_log",
                {"feature": "audit_log", "clicks": 3, "window_days": 30},
                30,
            ),
            ("beta", "strong_nps", "nps", {"nps": 10}, None),
        ]
    )
    found = frictions(con, CATALOG, load_rules())
    assert [(f["kind"], f["subject"]) for f in found["acme"]] == [
        ("repeated_limit_hits", "reports"),
        ("locked_feature", "audit_log"),
        ("locked_feature", "sso"),
        ("strong_nps", "nps"),
    ]
    assert [f["statement"] for f in found["beta"]] == ["gave an NPS score of 10"]


def test_rule_thresholds_scale_strength(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("triggers:\n  repeated_limit_hits:\n    min_hits: 2\n")
    con = signal_table([("acme", "repeated_limit_hits", "reports", {"limit": "reports", "hits": 3}, 30)])
    [friction] = frictions(con, CATALOG, load_rules(rules_file))["acme"]
    assert friction["strength"] == 1.5  # 3 hits against a threshold of 2
