"""Due sequence steps sent per second on PostgreSQL by 1, 2 and 4 worker processes, side by side in one run,
into a real SMTP server that answers after ~50 ms (as a relay does).

For each worker count: a fresh database with the real migrations, N enrollments whose one email step is due
now, each for a different ready account (``tests/sendload.py``: the health gate really is decided for N
accounts), caps out of the way; W worker processes (``python -m tests.sendload``: the library's scheduler on a
fixed fake clock, per-step leases claimed with ``SELECT … FOR UPDATE SKIP LOCKED``, the gate decided once per
claimed batch, SMTP to the sink) are released together and timed from the start signal until the last one
exits. Every run is checked: each message reached the SMTP server exactly once, one ``sent`` outbox row per
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
from tests.smtpsink import Handler, Sink  # noqa: E402


def _admin(url: str, statement: str) -> None:
    base = make_url(db.normalize_url(url))
    engine = db.make_engine(base.set(database="postgres").render_as_string(hide_password=False))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(statement))
    engine.dispose()


def run(url: str, steps: int, workers: int, batch: int, delay: float) -> dict[str, Any]:
    base = make_url(db.normalize_url(url))
    name = f"{base.database or 'outreach'}_bench_sched"
    _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(url, f'CREATE DATABASE "{name}"')
    bench_url = base.set(database=name).render_as_string(hide_password=False)
    sink = Sink(Handler(delay=delay)).start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
            root = Path(tmp)
            env = populate(bench_url, root, steps, own_accounts=True) | sink.env()
            env["OUTREACH_WORKER_BATCH_SIZE"] = str(batch)
            go = root / "go"
            processes = [subprocess.Popen([sys.executable, "-m", "tests.sendload", "--go", str(go)], env=env,
                                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                         for _ in range(workers)]
            while len(list(root.glob("go.*.ready"))) < workers:
                if any(p.poll() is not None for p in processes):
                    raise SystemExit("a worker died while starting: " + "".join(
                        (p.stderr.read() if p.stderr else "") for p in processes if p.poll() is not None))
                time.sleep(0.01)
            started = time.perf_counter()
            go.touch()
            results = []
            for process in processes:
                out, err = process.communicate()
                if process.returncode != 0:
                    raise SystemExit(err)
                results.append(json.loads(out.strip().splitlines()[-1]))
            elapsed = time.perf_counter() - started
            engine = db.make_engine(bench_url)
            with db.session_factory(engine)() as session:
                sent_rows = session.scalar(select(func.count()).select_from(OutboxRow)
                                           .where(OutboxRow.state == "sent"))
            engine.dispose()
            received = sink.keys()
            duplicates = sum(n - 1 for n in received.values())
            assert len(received) == steps and duplicates == 0 and sent_rows == steps, (
                len(received), duplicates, sent_rows)
            return {"workers": workers, "steps": steps, "batch": batch, "seconds": round(elapsed, 2),
                    "steps_per_second": round(steps / elapsed, 1), "duplicates": duplicates,
                    "lost": steps - len(received), "sent_per_worker": [r["sent"] for r in results],
                    "engine_runs": sum(r["engine_runs"] for r in results),
                    "worker_cpu_ms_per_step": round(sum(r["cpu_seconds"] for r in results) / steps * 1000, 1),
                    "load_average": round(os.getloadavg()[0], 1)}
    finally:
        sink.stop()
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
