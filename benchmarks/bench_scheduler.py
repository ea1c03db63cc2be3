"""Due sequence steps processed per second on PostgreSQL with 1 and 4 worker processes (outbox transport).

Fills a fresh database with N enrollments whose one email step is due now (``tests/sendload.py``: three ready
accounts, cooldown off, caps out of the way), starts W worker processes (``python -m tests.sendload``: the
library's scheduler on a fixed fake clock, ``SELECT … FOR UPDATE SKIP LOCKED`` claims, one ``.eml`` per send,
fsynced), releases them together and times from the start signal until the last worker has finished. Every
run is then checked: one ``.eml`` per idempotency key and one ``sent`` outbox row per enrollment.

    python benchmarks/bench_scheduler.py [--steps 2000] [--workers 1 4] [--postgres postgresql+psycopg://...]

The URL defaults to OUTREACH_TEST_POSTGRES_URL; a database ``<name>_bench_sched`` is created next to it and
dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from outreach import db  # noqa: E402
from outreach.sending.tables import OutboxRow  # noqa: E402
from tests.sendload import eml_counts, populate  # noqa: E402


def _admin(url: str, statement: str) -> None:
    base = make_url(db.normalize_url(url))
    engine = db.make_engine(base.set(database="postgres").render_as_string(hide_password=False))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(statement))
    engine.dispose()


def run(url: str, steps: int, workers: int, batch: int) -> dict[str, Any]:
    base = make_url(db.normalize_url(url))
    name = f"{base.database or 'outreach'}_bench_sched"
    _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(url, f'CREATE DATABASE "{name}"')
    bench_url = base.set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
            root = Path(tmp)
            env = populate(bench_url, root, steps)
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
            files = eml_counts(root / "outbox")
            engine = db.make_engine(bench_url)
            with db.session_factory(engine)() as session:
                sent_rows = session.scalar(select(func.count()).select_from(OutboxRow)
                                           .where(OutboxRow.state == "sent"))
            engine.dispose()
            duplicates = sum(n - 1 for n in files.values())
            assert len(files) == steps and duplicates == 0 and sent_rows == steps, (len(files), duplicates, sent_rows)
            return {"workers": workers, "steps": steps, "batch": batch, "seconds": round(elapsed, 2),
                    "steps_per_second": round(steps / elapsed, 1), "duplicates": duplicates,
                    "lost": steps - len(files), "sent_per_worker": [r["sent"] for r in results]}
    finally:
        _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--batch", type=int, default=100, help="OUTREACH_WORKER_BATCH_SIZE")
    parser.add_argument("--postgres", default=os.environ.get("OUTREACH_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    if not args.postgres:
        raise SystemExit("give --postgres URL or set OUTREACH_TEST_POSTGRES_URL")
    print(json.dumps({"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}))
    for workers in args.workers:
        print(json.dumps(run(args.postgres, args.steps, workers, args.batch)), flush=True)


if __name__ == "__main__":
    main()
