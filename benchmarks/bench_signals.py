"""Benchmark: `explain` end to end on generated data of any shape, next to the bare DuckDB floor.

    python benchmarks/bench_signals.py [--accounts 100000] [--events 10000000] [--tickets-per-account 2]
                                       [--format jsonl|parquet|both] [--runs 1] [--dir /tmp/outreach-bench]
    python benchmarks/bench_signals.py --startup [--runs 10] [--baseline DIR]

Generates the data set with DuckDB (seeded, reused when present; Parquet events are written from the same
rows as the JSON Lines), then times, each run in a fresh process so peak memory is its own:
  floor   - bare DuckDB over the same files: the events grouped by account and event (count, last timestamp)
            and the tickets grouped by account; the least any engine reading them must pay;
  engine  - load_dataset, then explain_json (every stage for every account, and the JSON the CLI prints).
Floor and engine alternate run by run, so a busy moment on a shared machine hits both. Prints the figures,
the ratio engine / floor and each side's peak memory; docs/BENCHMARKS.md records them.

--startup times `outreach --help` and `outreach explain` on the demo data in fresh processes, next to the
interpreter's own start (`python -c pass`), with the bytecode cached as in an installed package: wall and CPU seconds; with
`--baseline DIR` also another checkout's (its console script, on its own packaged demo), interleaved with this one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

import duckdb
import yaml

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


def generate(
    out: Path, accounts: int, events: int, tickets_per_account: float = 2, catalog_path: Path = CATALOG
) -> None:
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
          FROM range({round(accounts * tickets_per_account)}) t(i)
        ) TO '{out / "tickets.jsonl"}' (FORMAT json)
        """
    )


def parquet_copy(out: Path) -> Path:
    """The same data set with events.parquet (flat columns as data-formats.md documents them: a native UTC
    timestamp, ``groupId``, ``properties`` as JSON text) instead of events.jsonl."""
    folder = out / "parquet"
    if (folder / "events.parquet").exists():
        return folder
    folder.mkdir(exist_ok=True)
    for name in ("accounts.csv", "tickets.jsonl", "catalog.yaml"):
        link = folder / name
        if not link.exists():
            link.symlink_to(out / name)
    duckdb.connect().execute(
        f"""
        COPY (
          SELECT messageId, event, userId, timestamp::TIMESTAMPTZ AS timestamp, context.groupId AS groupId,
                 properties::VARCHAR AS properties
          FROM read_json('{out / "events.jsonl"}', format='newline_delimited', columns={{
              'messageId': 'VARCHAR', 'event': 'VARCHAR', 'userId': 'VARCHAR', 'timestamp': 'VARCHAR',
              'context': 'STRUCT(groupId VARCHAR)', 'properties': 'JSON'}})
        ) TO '{folder / "events.parquet"}' (FORMAT parquet)
        """
    )
    return folder


def floor(data: Path) -> dict[str, float]:
    """The bare DuckDB aggregations over the same files: the least any engine reading them must pay."""
    con = duckdb.connect()
    start = time.perf_counter()
    if (data / "events.jsonl").exists():
        source = f"read_json('{data / 'events.jsonl'}', format='newline_delimited')"
        group = "context.groupId"
    else:
        source = f"read_parquet('{data / 'events.parquet'}')"
        group = "groupId"
    con.execute(f"SELECT {group}, event, count(*), max(timestamp) FROM {source} GROUP BY ALL").fetchall()
    events = time.perf_counter() - start
    con.execute(
        f"SELECT account_id, count(*), max(created_at) FROM read_json('{data / 'tickets.jsonl'}', "
        "format='newline_delimited') GROUP BY ALL"
    ).fetchall()
    return {"total": time.perf_counter() - start, "events": events}


def engine(data: Path) -> dict[str, float]:
    """What `outreach explain --data DIR --json > FILE` does: load, then decide every account and write the JSON
    as it comes (the output goes to /dev/null)."""
    from outreach.engine import decisions
    from outreach.engine.data import load_dataset

    timings: dict[str, float] = {}
    start = time.perf_counter()
    dataset = load_dataset(data)
    timings["load"] = time.perf_counter() - start
    rules = decisions.rules_for(dataset)
    mark = time.perf_counter()
    chunks = getattr(decisions, "explain_json_chunks", None)  # older code: one bytes value
    payload = chunks(dataset, rules, AS_OF) if chunks else [decisions.explain_json(dataset, rules, AS_OF)]
    cohorts: Counter[str] = Counter()
    size = 0
    with open(os.devnull, "wb") as sink:
        for chunk in payload:
            sink.write(chunk)
            size += len(chunk)
            for name in ("ready", "nurture", "not_fit"):  # counted in the bytes: parsing 700 MB would dwarf the run
                cohorts[name] += chunk.count(b'"cohort":"' + name.encode() + b'"')
    timings["decide"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - start
    timings["accounts"] = sum(cohorts.values())
    timings["events"] = dataset.event_count
    timings["json_mb"] = size / 1e6
    return timings


def child(kind: str, data: Path) -> None:
    """Run one side in this (fresh) process and print its figures and peak memory as JSON."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    figures = floor(data) if kind == "floor" else engine(data)
    after = resource.getrusage(resource.RUSAGE_SELF)
    figures["cpu"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    figures["peak_mb"] = after.ru_maxrss / 1024
    print(json.dumps(figures))


def in_fresh_process(kind: str, data: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--data", str(data)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return dict(json.loads(output.strip().splitlines()[-1]))


def compare(data: Path, runs: int) -> dict[str, float]:
    floors, engines = [], []
    for _ in range(runs):
        floors.append(in_fresh_process("floor", data))
        engines.append(in_fresh_process("engine", data))
    best_floor = min(floors, key=lambda f: f["total"])
    best = min(engines, key=lambda e: e["total"])
    ratios = [e["total"] / f["total"] for e, f in zip(engines, floors, strict=True)]
    cpu_ratios = [e["cpu"] / f["cpu"] for e, f in zip(engines, floors, strict=True)]
    print(
        f"  floor: {best_floor['total']:.2f}s (events {best_floor['events']:.2f}s), {best_floor['cpu']:.2f} "
        f"CPU-s, peak {best_floor['peak_mb']:.0f} MB"
    )
    print(
        f"  engine: {best['total']:.2f}s = load {best['load']:.2f}s + decide and JSON {best['decide']:.2f}s, "
        f"{best['cpu']:.2f} CPU-s, for {int(best['accounts']):,} accounts / {int(best['events']):,} events, "
        f"{best['json_mb']:.0f} MB of JSON; peak {max(e['peak_mb'] for e in engines):.0f} MB"
    )
    print(
        f"  ratio engine/floor per run: {', '.join(f'{r:.2f}x' for r in ratios)} (CPU-seconds: "
        f"{', '.join(f'{r:.2f}x' for r in cpu_ratios)}); best/best {best['total'] / best_floor['total']:.2f}x "
        f"(against the events-only floor {best['total'] / best_floor['events']:.2f}x)"
    )
    return {"engine": best["total"], "floor": best_floor["total"]}


def _console_script(root: Path) -> list[str]:
    """The `outreach` console script of the checkout at ``root`` (its pyproject's entry point), as pip writes it."""
    import tomllib

    entry = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]["outreach"]
    module, _, name = entry.partition(":")
    return [sys.executable, "-c", f"import sys; from {module} import {name}; sys.argv[0] = 'outreach'; sys.exit({name}())"]


def startup(runs: int, baseline: Path | None = None) -> None:
    outreach = Path(sys.executable).with_name("outreach")
    demo = ROOT / "outreach" / "defaults" / "demo"
    explain = ["explain", "--data", str(demo), "--as-of", AS_OF.isoformat()]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "outreach --help": [str(outreach), "--help"],
        "outreach explain (demo)": [str(outreach), *explain],
        "outreach explain --json (demo)": [str(outreach), *explain, "--json"],
    }  # fmt: skip
    # As an installed package starts: with its bytecode cached (pip compiles a wheel's modules; an editable install
    # writes __pycache__ on the first run), so PYTHONDONTWRITEBYTECODE is dropped and each command runs once untimed.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["COLUMNS"] = "200"
    envs = dict.fromkeys(commands, env)
    if baseline is not None:  # the same commands of another checkout (its `outreach` package), interleaved
        baseline_env = {**env, "PYTHONPATH": str(baseline.resolve())}
        demo_explain = ["explain", "--data", "demo", "--as-of", AS_OF.isoformat()]
        for name, arguments in (("--help", ["--help"]), ("explain (demo)", demo_explain),
                                ("explain --json (demo)", [*demo_explain, "--json"])):  # fmt: skip
            for side, root, side_env in (("baseline", baseline, baseline_env), ("this tree", ROOT, env)):
                key = f"{side:9} outreach {name}"
                commands[key], envs[key] = [*_console_script(root), *arguments], side_env
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}  # the child's user + system seconds
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("  (PYTHONDONTWRITEBYTECODE is set here; dropped for the timed commands)")
    # From an empty directory: `python -c` imports from the working directory first, and no .env is read.
    with tempfile.TemporaryDirectory(prefix="outreach-startup-") as empty:
        for name, command in commands.items():
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=envs[name], cwd=empty)
        for _ in range(runs):  # interleaved, so a busy moment hits every command
            for name, command in commands.items():
                before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=envs[name], cwd=empty)
                times[name].append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    for name, values in times.items():
        print(f"  {name:40} min {min(values):.3f}s  median {statistics.median(values):.3f}s  "
              f"(CPU median {statistics.median(cpu[name]):.3f}s; {runs} runs)")
    if baseline is not None:
        for name in ("--help", "explain (demo)", "explain --json (demo)"):
            ours, theirs = (statistics.median(times[f"{side:9} outreach {name}"]) for side in ("this tree", "baseline"))
            ours_cpu, theirs_cpu = (statistics.median(cpu[f"{side:9} outreach {name}"])
                                    for side in ("this tree", "baseline"))
            print(f"  outreach {name}: this tree / baseline = {ours / theirs:.2f} (medians; CPU "
                  f"{ours_cpu / theirs_cpu:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--tickets-per-account", type=float, default=2)
    parser.add_argument("--format", choices=("jsonl", "parquet", "both"), default="jsonl")
    parser.add_argument("--runs", type=int, default=1, help="floor/engine pairs (each in a fresh process)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/outreach-bench"))
    parser.add_argument("--catalog", type=Path, default=CATALOG)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--startup", action="store_true", help="time the CLI's start instead")
    parser.add_argument("--baseline", type=Path, help="with --startup: also time the `outreach` package of this "
                        "checkout (e.g. `git archive main outreach pyproject.toml | tar -x -C DIR`), interleaved")
    parser.add_argument("--child", choices=("floor", "engine"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data)
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"DuckDB {duckdb.__version__}, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    if args.startup:
        startup(args.runs if args.runs > 1 else 10, args.baseline)
        return
    out = args.dir / f"{args.accounts}-{args.events}-{args.tickets_per_account:g}t"
    if args.regenerate or not (out / "events.jsonl").exists():
        start = time.perf_counter()
        generate(out, args.accounts, args.events, args.tickets_per_account, args.catalog)
        print(f"generated {args.accounts:,} accounts / {args.events:,} events / "
              f"{round(args.accounts * args.tickets_per_account):,} tickets in {time.perf_counter() - start:.1f}s")  # fmt: skip
    results = {}
    for kind in ("jsonl", "parquet") if args.format == "both" else (args.format,):
        data = out if kind == "jsonl" else parquet_copy(out)
        size = sum(f.stat().st_size for f in data.iterdir() if f.name.startswith("events.")) / 1e9
        print(f"{kind}: events file {size:.2f} GB")
        results[kind] = compare(data, args.runs)
    if len(results) == 2:
        print(f"parquet engine / jsonl engine: {results['parquet']['engine'] / results['jsonl']['engine']:.2f}x")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
