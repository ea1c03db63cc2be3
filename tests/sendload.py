"""A load of due sequence steps for the crash-safety tests and ``benchmarks/bench_scheduler.py``.

:func:`populate` writes a data directory, a sequence whose window is always open, and bulk-inserts ``count``
enrollments whose step is due now:

- by default three ready accounts share the enrollments (cooldown off, so many enrollments per account may
  send) and the step is the sequence's one email (a first touch);
- ``own_accounts``: one ready account per enrollment, so the health gate really is decided for ``count``
  accounts (as in production, where each enrollment is a different customer);
- ``followup``: the first email already went out three days ago (its outbox row, Message-ID and unsubscribe
  token are there) and the step due now is an auto-sent follow-up, drafted by the worker.

Running this module is one scheduler worker in its own OS process::

    python -m tests.sendload [--start 2026-11-20T10:00:00+00:00] [--real-time] [--followups canned]
                             [--recover-all] [--go FILE] [--crash-after N MARKER]

It reads the database, sequence directory, transport (outbox or SMTP) and caps from the ``OUTREACH_*``
environment (:func:`worker_env`), runs one pass on a clock that starts at ``--start`` (fixed, or moving in
real time with ``--real-time``), and prints a JSON line with what it did. ``--go FILE`` writes
``FILE.<pid>.ready`` and waits for FILE to exist before claiming (so several workers start together);
``--crash-after N MARKER`` stops dead after the transport accepted the Nth message (before it is recorded),
writes MARKER and sleeps, so a test can SIGKILL it exactly there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import yaml
from sqlalchemy import insert, select

from outreach import db
from outreach.sending.tables import EnrollmentRow, OutboxRow, UnsubscribeTokenRow

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # the test data's as-of date
ACCOUNTS = ("acme", "globex", "initech")
WINDOW = 'window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}'
SEQUENCES = {
    "load": f"id: load\nmotions: [upsell, bundle, cross_sell]\n{WINDOW}\nsteps:\n  - kind: email\n",
    "followup-load": (f"id: followup-load\nmotions: [upsell, bundle, cross_sell]\nauto_send: true\ndefault: false\n"
                      f"{WINDOW}\nsteps:\n  - kind: email\n  - kind: email\n    prompt: followup\n"),
}
LIST_DOMAIN = "ledgerly.example"  # the test catalog's first domain: List-Id and unsubscribe tokens use it


def account_of(index: int, own_accounts: bool) -> str:
    return f"acct{index:05d}" if own_accounts else ACCOUNTS[index % 3]


def recipient_of(index: int, own_accounts: bool) -> str:
    return f"dana@{account_of(index, True)}.example" if own_accounts else f"user{index}@{ACCOUNTS[index % 3]}.example"


def first_message_id(index: int) -> str:
    return f"<first-{index}@ledgerly.example>"


def populate(url: str, root: Path, count: int, *, own_accounts: bool = False, followup: bool = False) -> dict[str, str]:
    """Schema at head, a data directory, the sequences and ``count`` due enrollments; returns the environment a
    worker process needs. Enrollment ids are 1..count in due order (they are inserted in that order)."""
    from tests.datadir import DataDir
    from tests.sequencing import sequence_data

    data_dir = root / "data"
    if own_accounts:
        data = DataDir()
        for index in range(count):
            account = account_of(index, True)
            data.account(account, name=f"Account {index}", champion_email=recipient_of(index, True)).active(account)
            for days in (0.5, 1, 2, 3, 4):
                data.event(account, "Limit Reached", days, limit="reports", used=50, cap=50)
        data.write(data_dir)
    else:
        sequence_data().write(data_dir)
        (data_dir / "rules.yaml").write_text(yaml.safe_dump({"gate": {"contact_cooldown_days": 0}}), encoding="utf-8")
    sequences = root / "sequences"
    sequences.mkdir(parents=True, exist_ok=True)
    for name, text in SEQUENCES.items():
        (sequences / f"{name}.yaml").write_text(text, encoding="utf-8")
    db.upgrade(url)
    sequence = "followup-load" if followup else "load"
    first_sent = NOW - timedelta(days=3)
    rows = []
    for index in range(count):
        recipient = recipient_of(index, own_accounts)
        subject = f"More room for reports ({index})"
        rows.append({
            "sequence_id": sequence, "draft_id": None, "account_id": account_of(index, own_accounts),
            "motion": "upsell", "data_dir": str(data_dir.resolve()), "recipient": recipient,
            "recipient_name": "Dana", "sender": "maya@ledgerly.example", "timezone": "Europe/Berlin",
            "friction_id": None, "offer_id": None, "subject": subject,
            "body": f"Hi Dana,\n\nYour team keeps hitting the reports limit ({index}).\n\nMaya", "status": "active",
            "step_index": 1 if followup else 0, "next_due_at": NOW, "step_due_at": NOW,
            "thread_references": [first_message_id(index)] if followup else [],
            "thread_subject": subject if followup else None,
            "last_message_id": first_message_id(index) if followup else None,
            "enrolled_by": "load", "enrolled_at": first_sent - timedelta(hours=1), "updated_at": first_sent,
        })
    engine = db.make_engine(url)
    with engine.begin() as connection:
        for start in range(0, len(rows), 1000):
            connection.execute(insert(EnrollmentRow), rows[start:start + 1000])
        if followup:
            ids = list(connection.scalars(select(EnrollmentRow.id).order_by(EnrollmentRow.id)))
            sent = [{"idempotency_key": f"enr{enrollment_id}-step0", "enrollment_id": enrollment_id, "step_index": 0,
                     "kind": "email", "state": "sent", "account_id": row["account_id"], "sender": row["sender"],
                     "recipient": row["recipient"], "subject": row["subject"], "body": row["body"],
                     "message_id": first_message_id(index), "due_at": first_sent, "created_at": first_sent,
                     "attempted_at": first_sent, "sent_at": first_sent, "attempts": 1, "transport": "smtp"}
                    for index, (enrollment_id, row) in enumerate(zip(ids, rows, strict=True))]
            tokens = [{"token": f"tok-{index:05d}-{'x' * 24}", "email": row["recipient"],
                       "list_id": f"{sequence}.{LIST_DOMAIN}", "created_at": first_sent}
                      for index, row in enumerate(rows)]
            for start in range(0, len(sent), 1000):
                connection.execute(insert(OutboxRow), sent[start:start + 1000])
                connection.execute(insert(UnsubscribeTokenRow), tokens[start:start + 1000])
    engine.dispose()
    return worker_env(url, root)


def token_of(index: int) -> str:
    """The unsubscribe token :func:`populate` gave enrollment ``index + 1``'s recipient (follow-up loads)."""
    return f"tok-{index:05d}-{'x' * 24}"


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


class MovingClock:
    """Real time, starting at a chosen instant (the test data's as-of date), so the gate sees that date."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.began = time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)


def main(argv: list[str] | None = None) -> int:
    from outreach.sending.scheduler import FakeClock, build_scheduler
    from outreach.sending.transports import transport_for
    from outreach.settings import get_settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--start", "--now", dest="start", default=NOW.isoformat())
    parser.add_argument("--real-time", action="store_true")
    parser.add_argument("--followups", choices=["canned", "drafting"], default="drafting")
    parser.add_argument("--recover-all", action="store_true")
    parser.add_argument("--go", type=Path)
    parser.add_argument("--crash-after", nargs=2, metavar=("N", "MARKER"))
    args = parser.parse_args(argv)
    settings = get_settings()
    inner = transport_for(settings)

    class Transport:
        name = inner.name
        handed = 0

        def send(self, key: str, message: EmailMessage) -> None:
            inner.send(key, message)
            self.handed += 1
            if args.crash_after and self.handed >= int(args.crash_after[0]):
                Path(args.crash_after[1]).write_text(key, encoding="utf-8")
                time.sleep(600)  # killed here: the transport has it, the outbox row still says "sending"

        def delivered(self, key: str) -> bool | None:
            return inner.delivered(key)

    followups = None
    if args.followups == "canned":
        from tests.sequencing import CannedFollowups

        followups = CannedFollowups()
    start = datetime.fromisoformat(args.start)
    clock = MovingClock(start) if args.real_time else FakeClock(start)
    scheduler = build_scheduler(settings, clock=clock, transport=Transport(),
                                followups=followups)
    if args.go is not None:
        args.go.with_name(f"{args.go.name}.{os.getpid()}.ready").touch()
        while not args.go.exists():
            time.sleep(0.01)
    started, cpu = time.perf_counter(), time.process_time()
    report = scheduler.tick(recover_all=args.recover_all)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"pid": os.getpid(), "seconds": elapsed, "cpu_seconds": cpu, "sent": report.count("sent"),
                      "recovered": report.count("recovered"), "held": report.count("held"),
                      "exited": report.count("exited"), "retrying": report.count("retrying"),
                      "outcomes": len(report.outcomes), "engine_runs": scheduler.gates.engine_runs}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
