"""A load of due sequence steps for the crash-safety tests and ``benchmarks/bench_scheduler.py``.

:func:`populate` writes a data directory (three ready accounts, cooldown off so many enrollments per account
may send), a one-email sequence whose window is always open, and bulk-inserts ``count`` enrollments whose
first (only) step is due now. Running this module is one scheduler worker in its own OS process::

    python -m tests.sendload --now 2026-11-20T10:00:00+00:00 [--recover-all] [--go FILE] [--crash-after N MARKER]

It reads the database, sequence directory, outbox directory and caps from the ``OUTREACH_*`` environment
(:func:`worker_env`), runs one pass on a fixed fake clock with the outbox transport, and prints a JSON line
with what it did. ``--go FILE`` writes ``FILE.<pid>.ready`` and waits for FILE to exist before claiming (so several workers
start together);
``--crash-after N MARKER`` stops dead after handing the Nth message to the transport (before the outbox row
is marked sent), writes MARKER and sleeps, so a test can SIGKILL it exactly there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import yaml
from sqlalchemy import insert

from outreach import db
from outreach.sending.tables import EnrollmentRow

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # the test data's as-of date
ACCOUNTS = ("acme", "globex", "initech")
SEQUENCE = """id: load
motions: [upsell, bundle, cross_sell]
window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
steps:
  - kind: email
"""


def populate(url: str, root: Path, count: int) -> dict[str, str]:
    """Schema at head, a data directory, a sequence directory and ``count`` due enrollments; returns the
    environment a worker process needs."""
    from tests.sequencing import sequence_data

    data_dir = root / "data"
    sequence_data().write(data_dir)
    (data_dir / "rules.yaml").write_text(yaml.safe_dump({"gate": {"contact_cooldown_days": 0}}), encoding="utf-8")
    sequences = root / "sequences"
    sequences.mkdir(parents=True, exist_ok=True)
    (sequences / "load.yaml").write_text(SEQUENCE, encoding="utf-8")
    db.upgrade(url)
    engine = db.make_engine(url)
    rows = [
        {
            "sequence_id": "load", "draft_id": None, "account_id": ACCOUNTS[i % 3], "motion": "upsell",
            "data_dir": str(data_dir.resolve()), "recipient": f"user{i}@{ACCOUNTS[i % 3]}.example",
            "recipient_name": f"User {i}", "sender": "maya@ledgerly.example", "timezone": "Europe/Berlin",
            "friction_id": None, "offer_id": None, "subject": f"More room for reports ({i})",
            "body": f"Hi User {i},\n\nYour team keeps hitting the reports limit.\n\nMaya", "status": "active",
            "step_index": 0, "next_due_at": NOW, "thread_references": [], "enrolled_by": "load",
            "enrolled_at": NOW, "updated_at": NOW,
        }
        for i in range(count)
    ]
    with engine.begin() as connection:
        for start in range(0, len(rows), 1000):
            connection.execute(insert(EnrollmentRow), rows[start:start + 1000])
    engine.dispose()
    return worker_env(url, root)


def worker_env(url: str, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env.update({
        "OUTREACH_HOME": str(root), "OUTREACH_DATABASE_URL": url, "OUTREACH_SEQUENCES_DIR": str(root / "sequences"),
        "OUTREACH_MAIL_TRANSPORT": "outbox", "OUTREACH_OUTBOX_DIR": str(root / "outbox"),
        "OUTREACH_SEND_DAILY_CAP_PER_SENDER": "1000000", "OUTREACH_SEND_HOURLY_CAP": "1000000",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    })
    return env


def eml_counts(outbox: Path) -> Counter[str]:
    """How many ``.eml`` files each idempotency key has in an outbox directory."""
    return Counter(path.name.split("--")[0] for path in outbox.glob("*.eml"))


def main(argv: list[str] | None = None) -> int:
    from outreach.sending.scheduler import FakeClock, build_scheduler
    from outreach.sending.transports import OutboxTransport, outbox_dir
    from outreach.settings import get_settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--now", default=NOW.isoformat())
    parser.add_argument("--recover-all", action="store_true")
    parser.add_argument("--go", type=Path)
    parser.add_argument("--crash-after", nargs=2, metavar=("N", "MARKER"))
    args = parser.parse_args(argv)
    settings = get_settings()
    inner = OutboxTransport(outbox_dir(settings))

    class Transport:
        name = inner.name
        handed = 0

        def send(self, key: str, message: EmailMessage) -> None:
            inner.send(key, message)
            self.handed += 1
            if args.crash_after and self.handed >= int(args.crash_after[0]):
                Path(args.crash_after[1]).write_text(key, encoding="utf-8")
                time.sleep(600)  # killed here: the file is written, the outbox row still says "sending"

        def delivered(self, key: str) -> bool | None:
            return inner.delivered(key)

    scheduler = build_scheduler(settings, clock=FakeClock(datetime.fromisoformat(args.now)), transport=Transport())
    if args.go is not None:
        args.go.with_name(f"{args.go.name}.{os.getpid()}.ready").touch()
        while not args.go.exists():
            time.sleep(0.01)
    started = time.perf_counter()
    report = scheduler.tick(recover_all=args.recover_all)
    elapsed = time.perf_counter() - started
    print(json.dumps({"pid": os.getpid(), "seconds": elapsed, "sent": report.count("sent"),
                      "recovered": report.count("recovered"), "held": report.count("held"),
                      "exited": report.count("exited"), "outcomes": len(report.outcomes)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
