"""Benchmark: the event store and the Segment-compatible intake at 100k accounts / 10M stored events.

    python benchmarks/bench_intake.py [--accounts 100000] [--events 10000000] [--dir /tmp/outreach-bench]
                                      [--batches 200] [--clients 4] [--trials 20] [--skip-explain]

Uses the data set of benchmarks/bench_signals.py (generated with DuckDB, seeded, reused when present) plus 100
"probe" accounts: healthy, active, but without friction. Then, in one run:

1. store    — ``outreach events load`` of the 10M-event events.jsonl into a fresh workspace's DuckDB store;
2. explain  — what ``outreach explain --json`` does (load + decide every account + JSON), from the JSONL file and
              from the store, side by side in this process (alternating, best of two each);
3. intake   — sustained events/s: ``--clients`` threads POST ``--batches`` Segment batches of 500 track events
              (~110 KB each) to ``/v1/batch`` on a real ``outreach serve`` (uvicorn, its own process);
4. reaction — event in -> draft queued: for ``--trials`` probe accounts in turn, one batch of three limit hits is
              posted and the review queue polled until that account's draft is there; p50/p95/max.

Prints the figures; docs/BENCHMARKS.md records them.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_signals import AS_OF, generate

PROBES = 100


def _stamp(days_ago: float) -> str:
    moment = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC) - timedelta(days=days_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def prepare(base: Path, accounts: int, events: int) -> tuple[Path, Path]:
    """The bench_signals data set, and a copy of its directory (events not copied) with the probe accounts."""
    source = base / f"{accounts}-{events}"
    if not (source / "events.jsonl").exists():
        started = time.perf_counter()
        generate(source, accounts, events)
        print(f"generated {accounts:,} accounts / {events:,} events in {time.perf_counter() - started:.0f}s")
    probe = base / f"intake-{accounts}-{events}"
    probe.mkdir(parents=True, exist_ok=True)
    for name in ("catalog.yaml", "tickets.jsonl"):
        target = probe / name
        if not target.exists():
            target.write_bytes((source / name).read_bytes())
    rows = list(csv.DictReader((source / "accounts.csv").open(newline="")))
    header = list(rows[0])
    with (probe / "accounts.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
        for i in range(PROBES):
            writer.writerow({**rows[0], "account_id": f"probe-{i}", "name": f"Probe {i}", "plan": "team",
                             "domain": f"probe{i}.example", "seats_purchased": 15, "contract_start": "2025-06-01",
                             "activated_at": "2025-06-20", "employees_at_contract": 100, "employees_now": 105,
                             "champion_user_id": f"probe-{i}-u1", "nps": 8, "cs_veto": "false"})
    lines = []
    for i in range(PROBES):
        for user in range(1, 6):
            for days in (2 + user / 10, 40 + user / 10):
                lines.append({"type": "track", "messageId": f"probe-{i}-signin-{user}-{days}", "event": "Signed In",
                              "userId": f"probe-{i}-u{user}", "timestamp": _stamp(days),
                              "context": {"groupId": f"probe-{i}"}, "properties": {}})
        for feature in ("dashboards", "basic_reports", "csv_export"):
            lines.append({"type": "track", "messageId": f"probe-{i}-{feature}", "event": "Feature Used",
                          "userId": f"probe-{i}-u1", "timestamp": _stamp(3), "context": {"groupId": f"probe-{i}"},
                          "properties": {"feature": feature}})
    (probe / "probes.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return source, probe


def outreach(home: Path, *args: str) -> str:
    env = {**os.environ, "OUTREACH_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "outreach.cli.main", *args], env=env, capture_output=True,
                          text=True, check=True)
    return done.stdout


def store_events(home: Path, source: Path, probe: Path) -> float:
    home.mkdir(parents=True, exist_ok=True)
    outreach(home, "db", "upgrade")
    started = time.perf_counter()
    print(outreach(home, "events", "load", str(source / "events.jsonl"), str(probe / "probes.jsonl")).strip())
    return time.perf_counter() - started


def explain_side_by_side(home: Path, source: Path) -> dict[str, list[tuple[float, float]]]:
    """explain from the JSONL file and from the store, alternating, in this process."""
    from outreach.application import Application
    from outreach.engine.data import load_dataset
    from outreach.engine.decisions import explain_json, rules_for
    from outreach.engine.store import EventStore
    from outreach.settings import Settings

    application = Application.from_settings(Settings(home=home))
    store = application.event_store()
    assert store is not None and store.holds(source / "events.jsonl")
    runs: dict[str, list[tuple[float, float]]] = {"file": [], "store": []}
    outputs = {}
    for _ in range(2):
        for kind in ("file", "store"):
            gc.collect()
            started = time.perf_counter()
            # as `outreach explain` reads it: the store's file in place
            in_place = EventStore(store.path, in_place=True) if kind == "store" else None
            dataset = load_dataset(source, events=in_place)
            loaded = time.perf_counter()
            payload = explain_json(dataset, rules_for(dataset), AS_OF)
            done = time.perf_counter()
            runs[kind].append((loaded - started, done - loaded))
            outputs[kind] = payload
            dataset.events.close()
            del dataset, payload
    assert outputs["file"] == outputs["store"], "the store must give the file's decisions"
    application.close()
    return runs


class Server:
    """``outreach serve`` in its own process."""

    def __init__(self, home: Path, port: int, *args: str, **env: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "outreach.cli.main", "serve", "--port", str(port), *args],
            env={**os.environ, "OUTREACH_HOME": str(home), **env}, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"outreach serve exited: {self.process.stderr.read() if self.process.stderr else ''}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("outreach serve did not start")

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def _batch(seed: int, accounts: int, size: int = 500) -> dict[str, Any]:
    names = ("Signed In", "Feature Used", "Export Created", "Page Viewed")
    return {"batch": [
        {"type": "track", "messageId": f"load-{seed}-{i}", "event": names[i % 4], "userId": f"acct-{(seed * size + i) % accounts}-u{i % 12}",
         "timestamp": _stamp(1 + i / 1000), "context": {"groupId": f"acct-{(seed * size + i) % accounts}"},
         "properties": {"feature": "dashboards", "format": "csv", "rows": i, "source": "bench_intake"}}
        for i in range(size)], "sentAt": datetime.now(UTC).isoformat()}


def intake_throughput(home: Path, key: str, accounts: int, batches: int, clients: int, port: int) -> tuple[float, int]:
    bodies = [json.dumps(_batch(seed, accounts)).encode() for seed in range(batches)]
    size = sum(map(len, bodies)) / len(bodies)
    errors: list[str] = []
    with Server(home, port, OUTREACH_INTAKE_REACT="false") as server:
        def send(mine: list[bytes]) -> None:
            with httpx.Client(auth=(key, ""), headers={"Content-Type": "application/json"}, timeout=60) as client:
                for body in mine:
                    response = client.post(f"{server.url}/v1/batch", content=body)
                    if response.status_code != 200:
                        errors.append(response.text)
        threads = [threading.Thread(target=send, args=(bodies[i::clients],)) for i in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    assert not errors, errors[:3]
    print(f"intake: {batches} batches of 500 events ({size / 1024:.0f} KB each) from {clients} clients in {elapsed:.1f}s")
    return batches * 500 / elapsed, int(size)


def reaction(home: Path, probe: Path, key: str, trials: int, port: int) -> list[float]:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{home / 'outreach.db'}")
    latencies = []
    with Server(home, port, "--data", str(probe), "--as-of", AS_OF.isoformat()) as server:
        deadline = time.monotonic() + 1200
        with engine.connect() as connection:  # the reactor's first pass records every account's cohort
            while (connection.execute(text("SELECT count(*) FROM account_states")).scalar() or 0) == 0:
                assert time.monotonic() < deadline, "no baseline"
                time.sleep(0.5)
        print(f"reactor baseline recorded after {time.monotonic() - deadline + 1200:.0f}s")
        with httpx.Client(auth=(key, ""), timeout=60) as client:
            for i in range(-1, trials):  # -1: an untimed first reaction, which also waits for the warm-up
                account = f"probe-{i % PROBES}"
                batch = {"batch": [{"type": "track", "messageId": f"trial-{i}-{d}", "event": "Limit Reached",
                                    "userId": f"{account}-u2", "timestamp": _stamp(d), "context": {"groupId": account},
                                    "properties": {"limit": "reports", "used": 100, "cap": 100}} for d in (1, 2, 3)]}
                started = time.perf_counter()
                assert client.post(f"{server.url}/v1/batch", json=batch).status_code == 200
                with engine.connect() as connection:
                    while connection.execute(text("SELECT id FROM drafts WHERE account_id = :a"),
                                             {"a": account}).scalar() is None:
                        if time.perf_counter() - started > 120:
                            raise RuntimeError(f"no draft for {account} after 120 s")
                        time.sleep(0.02)
                elapsed = time.perf_counter() - started
                print(f"  {account}: draft queued {elapsed:.2f}s after the event" + (" (warm-up)" if i < 0 else ""))
                if i >= 0:
                    latencies.append(elapsed)
    engine.dispose()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/outreach-bench"))
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--skip-explain", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.1f} at start")
    source, probe = prepare(args.dir, args.accounts, args.events)
    home = args.dir / f"intake-home-{args.accounts}-{args.events}-{int(time.time())}"
    print(f"store: {store_events(home, source, probe):.1f}s to store {args.events:,} events "
          f"({(home / 'events.duckdb').stat().st_size / 1e9:.2f} GB DuckDB file, "
          f"{(source / 'events.jsonl').stat().st_size / 1e9:.2f} GB JSONL)")
    if not args.skip_explain:
        runs = explain_side_by_side(home, source)
        best = {kind: min(runs[kind], key=sum) for kind in runs}
        for kind in ("file", "store"):
            print(f"explain from the {kind}: " + ", ".join(f"{a + b:.2f}s (load {a:.2f}s + decide {b:.2f}s)"
                                                           for a, b in runs[kind]))
        print(f"ratio file/store: {sum(best['file']) / sum(best['store']):.2f}x overall, "
              f"{best['file'][0] / best['store'][0]:.2f}x for loading")
    key = outreach(home, "intake", "key").split()[0]
    rate, _ = intake_throughput(home, key, args.accounts, args.batches, args.clients, args.port)
    print(f"intake: {rate:,.0f} events/s sustained through /v1/batch")
    latencies = sorted(reaction(home, probe, key, args.trials, args.port + 1))
    p95 = latencies[min(len(latencies) - 1, round(0.95 * len(latencies)) - 1)]
    print(f"event -> draft queued over {len(latencies)} trials: p50 {statistics.median(latencies):.2f}s, "
          f"p95 {p95:.2f}s, max {latencies[-1]:.2f}s")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
