"""Due sequence steps sent per second on PostgreSQL by 1, 2 and 4 worker processes, side by side in one run,
into real SMTP servers that answer after ~50 ms (as a relay does).

For each worker count: a fresh database with the real migrations, N enrollments whose one email step is due
now, each for a different ready account (``tests/sendload.py``: the health gate really is decided for N
accounts), caps out of the way; W worker processes (``python -m tests.sendload``: the library's scheduler on a
fixed fake clock, per-step leases claimed with ``SELECT … FOR UPDATE SKIP LOCKED``, the gate decided once per
claimed batch, SMTP) are released together and timed from the start signal until the last one exits. Each
worker has an aiosmtpd relay process of its own (``python -m tests.smtpsink``), as a relay cluster would
scale, so on a busy two-core machine the relay (one Python event loop) is never what limits the workers. Every run is checked: each message reached the SMTP server exactly once, one ``sent`` outbox row per
enrollment. The worker counts are interleaved (1, 2, 4, 1, 2, 4, … with ``--rounds``) so a noisy, shared
machine slows them alike; the median of each is reported, and the speed-up of 4 workers over 1.

    python benchmarks/bench_scheduler.py [--steps 1200] [--workers 1 2 4] [--rounds 1] [--batch 50]
                                         [--delay 0.05] [--postgres postgresql+psycopg://...]

The URL defaults to OUTREACH_TEST_POSTGRES_URL; a database ``<name>_bench_sched`` is created next to it and
dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from outreach import db  # noqa: E402
from outreach.sending.tables import OutboxRow  # noqa: E402
from tests.sendload import populate  # noqa: E402
from tests.smtpsink import Sink, free_port  # noqa: E402


def _admin(url: str, statement: str) -> None:
    base = make_url(db.normalize_url(url))
    engine = db.make_engine(base.set(database="postgres").render_as_string(hide_password=False))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(statement))
    engine.dispose()


def start_relays(root: Path, count: int, delay: float) -> list[tuple[subprocess.Popen[str], int, Path]]:
    relays = []
    for index in range(count):
        port, log = free_port(), root / f"relay{index}.log"
        process = subprocess.Popen([sys.executable, "-m", "tests.smtpsink", "--port", str(port), "--delay",
                                    str(delay), "--log", str(log)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        relays.append((process, port, log))
    return relays


def run(url: str, steps: int, workers: int, batch: int, delay: float) -> dict[str, Any]:
    base = make_url(db.normalize_url(url))
    name = f"{base.database or 'outreach'}_bench_sched"
    _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(url, f'CREATE DATABASE "{name}"')
    bench_url = base.set(database=name).render_as_string(hide_password=False)
    relays: list[tuple[subprocess.Popen[str], int, Path]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
            root = Path(tmp)
            env = populate(bench_url, root, steps, own_accounts=True) | Sink().env()
            env["OUTREACH_WORKER_BATCH_SIZE"] = str(batch)
            relays = start_relays(root, workers, delay)
            go = root / "go"
            processes = [subprocess.Popen([sys.executable, "-m", "tests.sendload", "--go", str(go)],
                                          env=env | {"OUTREACH_SMTP_PORT": str(port)}, cwd=ROOT,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                         for _, port, _ in relays]
            while len(list(root.glob("go.*.ready"))) < workers:
                if any(p.poll() is not None for p in processes):
                    raise SystemExit("a worker died while starting: " + "".join(
                        (p.stderr.read() if p.stderr else "") for p in processes if p.poll() is not None))
                time.sleep(0.01)
            load = os.getloadavg()[0]
            started = time.perf_counter()
            go.touch()
            results = []
            for process in processes:
                out, err = process.communicate()
                if process.returncode != 0:
                    raise SystemExit(err)
                results.append(json.loads(out.strip().splitlines()[-1]))
            elapsed = time.perf_counter() - started
            for relay, _, _ in relays:
                relay.terminate()
                relay.wait()
            engine = db.make_engine(bench_url)
            with db.session_factory(engine)() as session:
                sent_rows = session.scalar(select(func.count()).select_from(OutboxRow)
                                           .where(OutboxRow.state == "sent"))
            engine.dispose()
            received = Counter(line for _, _, log in relays for line in log.read_text().split())
            duplicates = sum(n - 1 for n in received.values())
            assert len(received) == steps and duplicates == 0 and sent_rows == steps, (
                len(received), duplicates, sent_rows)
            return {"workers": workers, "steps": steps, "batch": batch, "seconds": round(elapsed, 2),
                    "steps_per_second": round(steps / elapsed, 1), "duplicates": duplicates,
                    "lost": steps - len(received), "sent_per_worker": [r["sent"] for r in results],
                    "engine_runs": sum(r["engine_runs"] for r in results),
                    "worker_cpu_ms_per_step": round(sum(r["cpu_seconds"] for r in results) / steps * 1000, 1),
                    "load_average_before": round(load, 1)}
    finally:
        for relay, _, _ in relays:
            if relay.poll() is None:
                relay.kill()
        _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=1, help="Repeat the interleaved runs; medians are reported.")
    parser.add_argument("--batch", type=int, default=50, help="OUTREACH_WORKER_BATCH_SIZE")
    parser.add_argument("--delay", type=float, default=0.05, help="Seconds the SMTP server takes to accept a message.")
    parser.add_argument("--postgres", default=os.environ.get("OUTREACH_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    if not args.postgres:
        raise SystemExit("give --postgres URL or set OUTREACH_TEST_POSTGRES_URL")
    print(json.dumps({"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                      "date": f"{datetime.now(UTC):%Y-%m-%d}", "smtp_delay": args.delay}), flush=True)
    rates: dict[int, list[float]] = {w: [] for w in args.workers}
    for _ in range(args.rounds):
        for workers in args.workers:
            result = run(args.postgres, args.steps, workers, args.batch, args.delay)
            rates[workers].append(result["steps_per_second"])
            print(json.dumps(result), flush=True)
    medians = {w: statistics.median(r) for w, r in rates.items()}
    summary: dict[str, Any] = {"median_steps_per_second": medians}
    low, high = min(medians), max(medians)
    if low != high:
        summary[f"speedup_{high}_over_{low}"] = round(medians[high] / medians[low], 2)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
