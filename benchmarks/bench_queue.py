"""Queue page latency with 100,000 drafts in the database (SQLite, and PostgreSQL when a URL is given).

Fills the schema (created by the real migrations) with bulk inserts — 20,000 accounts, 100,000 drafts with
one version each, spread over every status and motion with at most one open draft per account and motion —
then times the HTML queue page in-process (FastAPI TestClient, so the figure is server time plus a few
microseconds of in-memory transport) for the filters a rep uses, and prints p50/p95 per filter.

    python benchmarks/bench_queue.py [--drafts 100000] [--requests 50] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import insert, text

from outreach import db
from outreach.review.storage import AccountRow, DraftRow, DraftVersionRow
from outreach.review.users import add_user
from outreach.settings import Settings
from outreach.web.app import create_app

PASSWORD = "benchmark-password"
OWNERS = [f"rep{i}@ledgerly.example" for i in range(20)]
MOTIONS = ("upsell", "cross_sell", "bundle")
TRIGGERS = ("repeated_limit_hits", "seat_pressure", "locked_feature", "integration_request", "frequent_exports")
OPEN = ("pending_review", "approved", "scheduled")
CLOSED = ("rejected", "sent", "expired")
FILTERS = {
    "sdr default (mine, pending)": "/queue",
    "everyone, pending": "/queue?owner=all",
    "everyone, all statuses": "/queue?owner=all&status=all",
    "motion=cross_sell": "/queue?owner=all&motion=cross_sell",
    "trigger=seat_pressure": "/queue?owner=all&trigger=seat_pressure",
    "page 20": "/queue?owner=all&status=all&page=20",
}


def fill(url: str, drafts: int, accounts: int = 20_000) -> None:
    engine = db.make_engine(url)
    now = datetime(2026, 11, 25, 9, tzinfo=UTC)
    chunk = 5_000
    with engine.begin() as connection:
        connection.execute(insert(AccountRow), [
            {"account_id": f"acct-{i:05d}", "name": f"Account {i:05d}", "plan": "team",
             "owner_email": OWNERS[i % len(OWNERS)], "snapshot": {"account_id": f"acct-{i:05d}"}, "updated_at": now}
            for i in range(accounts)
        ])
    offer = {"id": "business", "name": "Business", "price_monthly": 499.0, "kind": "plan", "motion": "upsell"}
    for start in range(0, drafts, chunk):
        rows: list[dict[str, Any]] = []
        versions: list[dict[str, Any]] = []
        for i in range(start, min(start + chunk, drafts)):
            account = i % accounts
            motion_index = (i // accounts) % len(MOTIONS)
            # Open states only for the first pass over (account, motion) pairs: the unique index allows one.
            is_open = i < accounts * len(MOTIONS) and i % 4 != 3
            status = OPEN[i % 3] if is_open else CLOSED[i % 3]
            if is_open and i % 5 < 3:
                status = "pending_review"
            stamp = now - timedelta(minutes=i)
            rows.append({
                "id": i + 1, "account_id": f"acct-{account:05d}", "motion": MOTIONS[motion_index],
                "trigger": TRIGGERS[i % len(TRIGGERS)], "status": status, "owner_email": OWNERS[account % len(OWNERS)],
                "version": 1, "current_version": 1, "as_of": date(2026, 11, 20), "offer_id": "business",
                "offer": offer, "health": {"score": 60 + i % 40, "band": "green" if i % 3 else "yellow"},
                "gate": {"allowed": True, "reasons": []}, "decision": {}, "subject": f"Draft {i}: reports limit",
                "quality": "ok", "created_at": stamp, "updated_at": stamp,
            })
            versions.append({
                "draft_id": i + 1, "number": 1, "source": "model", "subject": f"Draft {i}: reports limit",
                "body": "Hi Dana,\n\nYour team hit the reports limit 3 times in the last 30 days.\n\nMaya",
                "call_to_action": "Reply to set it up.", "friction_ids": ["repeated_limit_hits:reports"],
                "quality": "ok", "issues": [], "fallback": False, "created_at": stamp,
            })
        with engine.begin() as connection:
            connection.execute(insert(DraftRow.__table__), rows)
            connection.execute(insert(DraftVersionRow.__table__), versions)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT setval('drafts_id_seq', (SELECT max(id) FROM drafts))"))
            connection.execute(text("ANALYZE"))
        else:
            connection.execute(text("ANALYZE"))
    factory = db.session_factory(engine)
    with db.transaction(factory) as session:
        add_user(session, OWNERS[0], "sdr", PASSWORD)
    engine.dispose()


def measure(url: str, requests: int) -> dict[str, tuple[float, float]]:
    app = create_app(Settings(database_url=url, secret_key=SecretStr("bench-secret-0123456789abcdef")))
    results: dict[str, tuple[float, float]] = {}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        login = client.get("/login").text
        token = login.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"email": OWNERS[0], "password": PASSWORD, "csrf_token": token})
        for name, path in FILTERS.items():
            for _ in range(5):  # warm caches and the connection pool
                assert client.get(path).status_code == 200
            timings = []
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200 and "queue-table" in response.text
            timings.sort()
            p95 = timings[min(len(timings) - 1, round(0.95 * len(timings)) - 1)]
            results[name] = (statistics.median(timings), p95)
    return results


def reset_postgres(url: str) -> None:
    engine = db.make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def run(label: str, url: str, drafts: int, requests: int) -> dict[str, tuple[float, float]]:
    db.upgrade(url)
    started = time.perf_counter()
    fill(url, drafts)
    print(f"{label}: filled {drafts:,} drafts in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return measure(url, requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--drafts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--postgres", help="postgresql:// URL of an empty, disposable database (it is wiped)")
    args = parser.parse_args()
    report: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        report["SQLite"] = run("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.drafts, args.requests)
    if args.postgres:
        reset_postgres(args.postgres)
        try:
            report["PostgreSQL"] = run("PostgreSQL", args.postgres, args.drafts, args.requests)
        finally:
            reset_postgres(args.postgres)
    print(f"{args.drafts:,} drafts, {args.requests} requests per filter; {platform.machine()}, "
          f"Python {platform.python_version()}")
    print("| Database | Filter | p50 ms | p95 ms |\n|---|---|---:|---:|")
    for backend, rows in report.items():
        for name, (p50, p95) in rows.items():
            print(f"| {backend} | {name} | {p50:.1f} | {p95:.1f} |")
    print(json.dumps({b: {n: {"p50_ms": round(v[0], 1), "p95_ms": round(v[1], 1)} for n, v in r.items()}
                      for b, r in report.items()}), file=sys.stderr)


if __name__ == "__main__":
    main()
