"""Benchmark: `explain` end to end on 100k accounts / 10M events, next to the bare DuckDB floor.

    python benchmarks/bench_signals.py [--accounts 100000] [--events 10000000] [--dir /tmp/outreach-bench]

Generates the data set with DuckDB (seeded, reused when present), then times:
  floor   — one bare DuckDB aggregation over the same events.jsonl (read + group by account and event);
  engine  — load_dataset, then explain_json (every stage for every account, and the JSON the CLI prints).
Prints the figures; docs/BENCHMARKS.md records them.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import time
from collections import Counter
from datetime import date
from pathlib import Path

import duckdb
import orjson
import yaml

from outreach.engine.data import load_dataset
from outreach.engine.decisions import explain_json, rules_for

AS_OF = date(2026, 11, 20)
ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "outreach" / "defaults" / "demo" / "catalog.yaml"

# Share of each event in the generated stream (sums to 1).
EVENT_MIX = {
    "Signed In": 0.45,
    "Feature Used": 0.25,
    "Workflow Completed": 0.06,
    "Usage Reported": 0.05,
    "Export Created": 0.05,
    "Limit Reached": 0.03,
    "User Invited": 0.02,
    "Locked Feature Clicked": 0.02,
    "Workflow Abandoned": 0.02,
    "Page Viewed": 0.03,
    "User Removed": 0.01,
    "Integration Requested": 0.01,
}


def generate(out: Path, accounts: int, events: int, catalog_path: Path = CATALOG) -> None:
    """Write accounts.csv, events.jsonl, tickets.jsonl and catalog.yaml with DuckDB (seeded, fast)."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(catalog_path, out / "catalog.yaml")
    catalog = yaml.safe_load(catalog_path.read_text())
    plans = [p["id"] for p in catalog["plans"]][:-1]  # not the top tier, so upsells have somewhere to go
    features = sorted({f for p in catalog["plans"] for f in p.get("features", [])})
    addons = [a["id"] for a in catalog.get("addons", [])]
    con = duckdb.connect()
    con.execute("SELECT setseed(0.42)")
    plan_list = "[" + ",".join(f"'{p}'" for p in plans) + "]"
    con.execute(
        f"""
        COPY (
          SELECT 'acct-' || i AS account_id, 'Account ' || i AS name,
                 {plan_list}[1 + (i % {len(plans)})] AS plan,
                 'acct' || i || '.example' AS domain, 20 AS seats_purchased, 199 AS mrr, 'USD' AS currency,
                 DATE '2025-01-01' + (i % 600)::INT AS contract_start,
                 CASE WHEN i % 10 = 0 THEN NULL ELSE DATE '2025-03-01' + (i % 500)::INT END AS activated_at,
                 50 + i % 200 AS employees_at_contract, 50 + i % 200 + (i % 7) * 10 AS employees_now,
                 'rep' || (i % 20) || '@vendor.example' AS owner_email, 'Champion ' || i AS champion_name,
                 'acct-' || i || '-u0' AS champion_user_id, 'Europe/Berlin' AS timezone,
                 i % 11 AS nps, i % 50 = 0 AS cs_veto
          FROM range({accounts}) t(i)
        ) TO '{out / "accounts.csv"}' (HEADER, DELIMITER ',')
        """
    )
    names = list(EVENT_MIX)
    bounds, total = [], 0.0
    for name in names:
        total += EVENT_MIX[name]
        bounds.append(total)
    case = "CASE " + " ".join(f"WHEN r < {b} THEN '{n}'" for n, b in zip(names, bounds, strict=True)) + " END"
    feature_list = "[" + ",".join(f"'{f}'" for f in features) + "]"
    addon_list = "[" + ",".join(f"'{a}'" for a in addons) + "]"
    con.execute(
        f"""
        COPY (
          SELECT 'track' AS type, 'm' || i AS messageId, event,
                 'acct-' || a || '-u' || (i % 12) AS userId,
                 strftime(TIMESTAMP '{AS_OF.isoformat()}' - INTERVAL (i % 7776000) SECOND, '%Y-%m-%dT%H:%M:%SZ')
                     AS timestamp,
                 {{'groupId': 'acct-' || a}} AS context,
                 CASE event
                   WHEN 'Limit Reached' THEN {{'limit': 'reports', 'used': 50, 'cap': 50}}::JSON
                   WHEN 'Usage Reported' THEN {{'metric': 'seats', 'used': 10 + i % 11}}::JSON
                   WHEN 'Feature Used' THEN {{'feature': {feature_list}[1 + i % {len(features)}]}}::JSON
                   WHEN 'Locked Feature Clicked' THEN {{'feature': 'sso'}}::JSON
                   WHEN 'Export Created' THEN {{'format': 'csv', 'rows': i % 5000}}::JSON
                   WHEN 'Integration Requested' THEN {{'integration': 'salesforce'}}::JSON
                   WHEN 'User Invited' THEN {{'department': ['Sales','Finance','Ops','Marketing'][1 + i % 4]}}::JSON
                   WHEN 'Workflow Abandoned' THEN {{'workflow': 'report_builder', 'step': 'share'}}::JSON
                   WHEN 'Workflow Completed' THEN {{'workflow': 'report_builder'}}::JSON
                   WHEN 'Page Viewed' THEN {{'name': 'Add-on', 'addon': {addon_list}[1 + i % {len(addons)}]}}::JSON
                   ELSE '{{}}'::JSON END AS properties
          FROM (SELECT i, hash(i) % {accounts} AS a, {case} AS event
                FROM (SELECT i, (hash(i * 7 + 1) % 1000000) / 1000000.0 AS r FROM range({events}) t(i)))
        ) TO '{out / "events.jsonl"}' (FORMAT json)
        """
    )
    topics = ["permissions", "exports", "billing", "sso", "performance"]
    topic_list = "[" + ",".join(f"'{t}'" for t in topics) + "]"
    con.execute(
        f"""
        COPY (
          SELECT 'T-' || i AS id, 'acct-' || (i % {accounts}) AS account_id,
                 strftime(TIMESTAMP '{AS_OF.isoformat()}' - INTERVAL (i % 7000000) SECOND, '%Y-%m-%dT%H:%M:%SZ')
                     AS created_at,
                 'Question about ' || {topic_list}[1 + i % 5] AS subject, 'Details of the question' AS description,
                 CASE WHEN i % 9 = 0 THEN 'open' ELSE 'solved' END AS status,
                 CASE WHEN i % 97 = 0 THEN 'high' ELSE 'normal' END AS priority,
                 [{topic_list}[1 + (i // 3) % 5]] AS tags
          FROM range({accounts * 2}) t(i)
        ) TO '{out / "tickets.jsonl"}' (FORMAT json)
        """
    )


def floor(out: Path) -> float:
    """The bare DuckDB aggregation over the same file: the least any engine reading it must pay."""
    con = duckdb.connect()
    start = time.perf_counter()
    con.execute(
        f"SELECT context.groupId, event, count(*), max(timestamp) FROM read_json('{out / 'events.jsonl'}', "
        "format='newline_delimited') GROUP BY ALL"
    ).fetchall()
    return time.perf_counter() - start


def engine(out: Path) -> dict[str, float]:
    """What `outreach explain --data DIR --json` does: load, then decide every account and write the JSON."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    dataset = load_dataset(out)
    timings["load"] = time.perf_counter() - start
    rules = rules_for(dataset)
    mark = time.perf_counter()
    payload = explain_json(dataset, rules, AS_OF)
    timings["decide"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - start
    cohorts = Counter(row["cohort"] for row in orjson.loads(payload))
    timings["accounts"] = sum(cohorts.values())
    timings["events"] = dataset.event_count
    timings["json_mb"] = len(payload) / 1e6
    print("cohorts:", dict(cohorts))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/outreach-bench"))
    parser.add_argument("--catalog", type=Path, default=CATALOG)
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    out = args.dir / f"{args.accounts}-{args.events}"
    if args.regenerate or not (out / "events.jsonl").exists():
        start = time.perf_counter()
        generate(out, args.accounts, args.events, args.catalog)
        print(
            f"generated {args.accounts:,} accounts / {args.events:,} events in {time.perf_counter() - start:.1f}s"
        )
    size = (out / "events.jsonl").stat().st_size / 1e9
    print(f"machine: {platform.machine()}, {platform.python_version()}, events.jsonl {size:.2f} GB")
    bare = min(floor(out) for _ in range(2))
    print(f"floor (bare DuckDB read_json + group by): {bare:.2f}s")
    result = engine(out)
    print(
        f"engine: total {result['total']:.2f}s = load {result['load']:.2f}s + decide and JSON {result['decide']:.2f}s "
        f"for {int(result['accounts']):,} accounts / {int(result['events']):,} events, {result['json_mb']:.0f} MB of JSON"
    )
    print(f"ratio engine/floor: {result['total'] / bare:.2f}x")


if __name__ == "__main__":
    main()
