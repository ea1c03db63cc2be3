"""Small inline data directories for drafting tests (independent of outreach/defaults/demo)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

AS_OF = date(2026, 11, 20)

CATALOG = """\
company:
  name: Northwind Metrics
  product_name: Northwind
  postal_address: 1 Main Street, Springfield
  sender_name: Riley Chen
  sender_email: riley@northwind.example
  upgrade_url: https://northwind.example/upgrade
  unsubscribe_url: https://northwind.example/unsubscribe
  domains: [northwind.example]
plans:
  - {id: starter, name: Starter, price_monthly: 29, limits: {reports: 3, seats: 5}, features: [dashboards]}
  - {id: team, name: Team, price_monthly: 99, limits: {reports: 10, seats: 10}, features: [dashboards, alerts]}
  - id: business
    name: Business
    price_monthly: 299
    limits: {reports: null, seats: 25}
    features: [dashboards, alerts, scheduled_exports, sso]
addons:
  - id: salesforce_sync
    name: Salesforce Sync
    price_monthly: 79
    solves: ["integration:salesforce"]
    outcome: keeps deals and accounts in sync with Salesforce both ways, so nobody copies data by hand
  - id: warehouse_sync
    name: Warehouse Sync
    price_monthly: 149
    solves: [frequent_exports]
    outcome: sends your data to the warehouse every hour, so reports no longer start with a CSV export
seat_packs:
  - {id: seats_10, name: Seat Pack, seats: 10, price_monthly: 90}
bundles:
  - {id: growth_bundle, name: Growth Bundle, plan: business, addons: [warehouse_sync], discount_pct: 10}
policy:
  max_discount_pct: 15
"""

HEADER = "account_id,name,plan,domain,seats_purchased,contract_start,activated_at,champion_name,nps,cs_veto"
ACCOUNTS = [
    "a1,Acme Analytics,team,acme.test,10,2025-01-01,2025-01-20,Dana Lee,8,false",
    "a2,Borealis Logistics,team,borealis.test,10,2025-02-01,2025-02-15,Omar Haddad,8,false",
    "a3,Cobalt Health,team,cobalt.test,10,2025-03-01,2025-03-10,Mei Tanaka,8,false",
    "a4,Delta Freight,team,delta.test,10,2025-01-01,2025-01-20,Ana Souza,8,true",
    "a5,Echo Media,team,echo.test,10,2025-01-01,2025-01-20,Lars Berg,8,false",
]


def _event(n: int, account: str, event: str, stamp: str, user: str = "u1", **props: Any) -> dict[str, Any]:
    return {
        "messageId": f"m{n}",
        "event": event,
        "userId": f"{account}-{user}",
        "timestamp": f"{stamp}T10:00:00Z",
        "context": {"groupId": account},
        "properties": props,
    }


def _events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    n = 0

    def add(account: str, event: str, stamp: str, user: str = "u1", **props: Any) -> None:
        nonlocal n
        n += 1
        events.append(_event(n, account, event, stamp, user, **props))

    for account in ("a1", "a2", "a3", "a4", "a5"):
        for user in ("u1", "u2"):
            add(account, "Signed In", "2026-10-01", user)
            add(account, "Signed In", "2026-11-10", user)
        add(account, "Feature Used", "2026-11-11", "u1", feature="dashboards")
        add(account, "Feature Used", "2026-11-11", "u1", feature="alerts")
    for account in ("a1", "a3", "a4"):
        for day in ("2026-11-01", "2026-11-05", "2026-11-10", "2026-11-15"):
            add(account, "Limit Reached", day, limit="reports", used=10, cap=10)
    for day in ("2026-11-03", "2026-11-12"):
        add("a2", "Integration Requested", day, integration="salesforce")
    for i in range(9):
        add("a3", "Export Created", f"2026-11-{10 + i:02d}", format="csv", rows=1200)
    return events


def make_data_dir(root: Path, *, tickets: list[dict[str, Any]] | None = None, catalog: str = CATALOG) -> Path:
    """Write a five-account data directory: a1 upsell, a2 cross-sell, a3 bundle, a4 nurture, a5 not fit."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "catalog.yaml").write_text(catalog, encoding="utf-8")
    (root / "accounts.csv").write_text("\n".join([HEADER, *ACCOUNTS]) + "\n", encoding="utf-8")
    (root / "events.jsonl").write_text("\n".join(json.dumps(e) for e in _events()) + "\n", encoding="utf-8")
    lines = [json.dumps(t) for t in tickets or []]
    (root / "tickets.jsonl").write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    return root


def ticket(ticket_id: str, account: str, subject: str, description: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "id": ticket_id,
        "account_id": account,
        "created_at": "2026-11-12T09:00:00Z",
        "subject": subject,
        "description": description,
        "status": "solved",
        "priority": "low",
        **extra,
    }
