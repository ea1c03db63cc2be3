"""Build small, exact data directories for tests: every figure a test asserts is put there by the test."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

AS_OF = date(2026, 11, 20)

CATALOG: dict[str, Any] = {
    "plans": [
        {
            "id": "starter",
            "name": "Starter",
            "price_monthly": 49,
            "limits": {"seats": 5, "reports": 20, "storage_gb": 10, "api_calls": 10000},
            "features": ["dashboards", "csv_export", "basic_reports"],
        },
        {
            "id": "team",
            "name": "Team",
            "price_monthly": 199,
            "limits": {"seats": 20, "reports": 50, "storage_gb": 50, "api_calls": 100000},
            "features": ["dashboards", "csv_export", "basic_reports", "scheduled_exports"],
        },
        {
            "id": "business",
            "name": "Business",
            "price_monthly": 499,
            "limits": {"seats": 50, "reports": 200, "storage_gb": 250, "api_calls": 1000000},
            "features": [
                "dashboards",
                "csv_export",
                "basic_reports",
                "scheduled_exports",
                "sso",
                "audit_log",
            ],
        },
        {
            "id": "enterprise",
            "name": "Enterprise",
            "price_monthly": 1499,
            "limits": {"seats": None, "reports": None, "storage_gb": None, "api_calls": None},
            "features": [
                "dashboards",
                "csv_export",
                "basic_reports",
                "scheduled_exports",
                "sso",
                "audit_log",
                "custom_roles",
            ],
        },
    ],
    "addons": [
        {
            "id": "salesforce-sync",
            "name": "Salesforce Sync",
            "price_monthly": 99,
            "solves": ["integration:salesforce"],
            "requires_plan": "team",
            "outcome": "Pipeline numbers flow into your reports without CSV uploads.",
            "features": ["salesforce_sync"],
        },
        {
            "id": "warehouse-sync",
            "name": "Warehouse Sync",
            "price_monthly": 149,
            "solves": ["frequent_exports", "integration:snowflake"],
            "outcome": "Your data lands in the warehouse every hour, no manual exports.",
        },
        {
            "id": "guided-admin",
            "name": "Guided Admin",
            "price_monthly": 79,
            "solves": ["topic:permissions", "workflow:report_builder", "department:finance"],
            "outcome": "Role templates and guided setup for every team.",
        },
    ],
    "seat_packs": [
        {"id": "seats-5", "name": "5-seat pack", "seats": 5, "price_monthly": 60},
        {"id": "seats-10", "name": "10-seat pack", "seats": 10, "price_monthly": 110},
    ],
    "bundles": [
        {
            "id": "growth-bundle",
            "name": "Growth bundle",
            "plan": "business",
            "addons": ["warehouse-sync"],
            "discount_pct": 20,
        },
    ],
    "policy": {"max_discount_pct": 10, "thresholds": {}},
    "company": {
        "name": "Ledgerly",
        "product_name": "Ledgerly",
        "postal_address": "Ledgerly Inc., 1 Main St, Springfield, USA",
        "sender_name": "Maya Chen",
        "sender_email": "maya@ledgerly.example",
        "upgrade_url": "https://app.ledgerly.example/upgrade",
        "unsubscribe_url": "https://app.ledgerly.example/unsubscribe",
        "domains": ["ledgerly.example", "app.ledgerly.example"],
    },
}


def healthy_account(account_id: str, **overrides: Any) -> dict[str, Any]:
    """An account that passes every gate rule on AS_OF (given the activity `DataDir.active` adds)."""
    row: dict[str, Any] = {
        "account_id": account_id,
        "name": account_id.replace("-", " ").title(),
        "plan": "team",
        "domain": f"{account_id}.example",
        "seats_purchased": 20,
        "mrr": 199,
        "currency": "USD",
        "contract_start": "2025-06-01",
        "renewal_date": "2027-06-01",
        "activated_at": "2025-06-20",
        "employees_at_contract": 100,
        "employees_now": 105,
        "owner_email": "maya@ledgerly.example",
        "champion_name": "Dana",
        "champion_email": f"dana@{account_id}.example",
        "champion_user_id": f"{account_id}-u1",
        "timezone": "Europe/Berlin",
        "nps": 8,
        "cs_veto": "false",
        "cs_veto_reason": "",
    }
    row.update(overrides)
    return row


@dataclass
class DataDir:
    """Accumulates rows, then writes accounts.csv, events.jsonl, tickets.jsonl and catalog.yaml."""

    accounts: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    catalog: dict[str, Any] = field(default_factory=lambda: json.loads(json.dumps(CATALOG)))
    _counter: int = 0

    def account(self, account_id: str, **overrides: Any) -> DataDir:
        self.accounts.append(healthy_account(account_id, **overrides))
        return self

    def event(
        self, account_id: str, event_name: str, days_ago: float, user: str | None = None, **properties: Any
    ) -> str:
        self._counter += 1
        message_id = f"evt-{self._counter:05d}"
        stamp = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC) - timedelta(days=days_ago)
        self.events.append(
            {
                "type": "track",
                "messageId": message_id,
                "event": event_name,
                "userId": user or f"{account_id}-u1",
                "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "context": {"groupId": account_id},
                "properties": properties,
            }
        )
        return message_id

    def active(self, account_id: str, users: int = 5, prior_users: int | None = None) -> DataDir:
        """Steady activity: `users` active in the last 30 days (champion u1 seen 2 days ago) and
        `prior_users` (default the same) in the 30 days before; features used keep adoption healthy."""
        prior = users if prior_users is None else prior_users
        for index in range(1, users + 1):
            self.event(account_id, "Signed In", 2 + index * 0.1, f"{account_id}-u{index}")
        for index in range(1, prior + 1):
            self.event(account_id, "Signed In", 40 + index * 0.1, f"{account_id}-u{index}")
        for feature in ("dashboards", "csv_export", "basic_reports"):
            self.event(account_id, "Feature Used", 3, f"{account_id}-u1", feature=feature)
        return self

    def ticket(self, account_id: str, days_ago: float, subject: str, **fields: Any) -> str:
        ticket_id = f"T-{len(self.tickets) + 1000}"
        stamp = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC) - timedelta(days=days_ago)
        row = {
            "id": ticket_id,
            "account_id": account_id,
            "created_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "subject": subject,
            "description": fields.pop("description", subject),
            "status": fields.pop("status", "solved"),
            "priority": fields.pop("priority", "normal"),
            "tags": fields.pop("tags", []),
        }
        row.update(fields)
        self.tickets.append(row)
        return ticket_id

    def write(self, root: Path) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        columns: list[str] = []
        for row in self.accounts:
            for key in row:
                if key not in columns:
                    columns.append(key)
        with (root / "accounts.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in self.accounts:
                writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
        (root / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in self.events))
        (root / "tickets.jsonl").write_text("".join(json.dumps(t) + "\n" for t in self.tickets))
        (root / "catalog.yaml").write_text(yaml.safe_dump(self.catalog, sort_keys=False))
        return root
