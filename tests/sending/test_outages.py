"""Outages heal themselves: a relay that goes away for a few minutes in the middle of a run, then answers 4xx
for a while, a recipient it refuses for good and a connection cut right after DATA. Every step ends sent
exactly once, or held with a reason that is true, or exited as a bounce; none is stuck. A relay that stays
down holds the steps it was tried for (after the retry limit), and ``release --all-failed`` brings them back.

The scheduler runs in this process against a real SMTP server (aiosmtpd) on a fake clock, the way
``outreach worker`` would: a pass, then (relay down) a pause of one worker interval, or a jump to the next due
step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from outreach.cli import sequences as sequences_cli
from outreach.cli.main import app
from outreach.sending.scheduler import FakeClock, Scheduler, TickReport, build_scheduler
from outreach.sending.suppression import is_suppressed
from outreach.sending.tables import EnrollmentRow, OutboxRow
from outreach.sending.transports import SmtpTransport
from outreach.settings import Settings
from tests.sendload import NOW, populate, recipient_of
from tests.smtpsink import Sink

INTERVAL = timedelta(seconds=30)  # OUTREACH_WORKER_INTERVAL_SECONDS


@dataclass
class Run:
    scheduler: Scheduler
    clock: FakeClock
    sink: Sink
    settings: Settings

    def states(self) -> dict[str, int]:
        with self.scheduler.factory() as session:
            return dict(session.execute(select(OutboxRow.state, func.count()).group_by(OutboxRow.state)).all())

    def statuses(self) -> dict[str, int]:
        with self.scheduler.factory() as session:
            return dict(session.execute(select(EnrollmentRow.status, func.count())
                                        .group_by(EnrollmentRow.status)).all())

    def next_due(self) -> object:
        with self.scheduler.factory() as session:
            return session.scalar(select(func.min(EnrollmentRow.next_due_at)).where(
                EnrollmentRow.status.in_(("active", "waiting_review"))))

    def work(self, until: timedelta, on_pass: object = None) -> list[TickReport]:
        """Passes until nothing is due, or ``until`` of fake time has gone by."""
        end = self.clock() + until
        reports = []
        while self.clock() < end:
            report = self.scheduler.tick()
            reports.append(report)
            if callable(on_pass):
                on_pass(self)
            due = self.next_due()
            if report.relay_down or due is None:
                if due is None and not report.relay_down:
                    return reports
                self.clock.advance(INTERVAL)
            else:
                self.clock.set(max(due, self.clock() + timedelta(seconds=1)))  # type: ignore[type-var]
        return reports


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    sink = Sink().start()
    env = populate(f"sqlite:///{tmp_path / 'outage.db'}", tmp_path, 300) | sink.env()
    settings = Settings(**{k.removeprefix("OUTREACH_").lower(): v for k, v in env.items()  # type: ignore[arg-type]
                           if k.startswith("OUTREACH_")})
    settings = settings.model_copy(update={"smtp_timeout_seconds": 2.0, "send_retry_backoff_seconds": 60.0,
                                           "worker_batch_size": 50})
    clock = FakeClock(NOW)
    scheduler = build_scheduler(settings, clock=clock, transport=SmtpTransport(settings))
    yield Run(scheduler, clock, sink, settings)
    scheduler.application.close()
    sink.stop()


class RelayGoesAway:
    """The relay stops answering once it has taken ``after`` messages, and comes back ``minutes`` later."""

    def __init__(self, run: Run, after: int, minutes: int) -> None:
        self.run, self.after, self.minutes = run, after, minutes
        self.down_at: object = None
        self.inner = run.scheduler.transport
        self.name = self.inner.name

    def send(self, key: str, message: EmailMessage) -> None:
        if self.down_at is None and self.run.sink.count() >= self.after:
            self.run.sink.stop()
            self.down_at = self.run.clock()
        self.inner.send(key, message)

    def delivered(self, key: str) -> bool | None:
        return self.inner.delivered(key)

    def maybe_back(self, run: Run) -> None:
        if self.down_at is not None and not run.sink.running and run.clock() >= self.down_at + timedelta(  # type: ignore[operator]
                minutes=self.minutes):
            run.sink.start()
            run.sink.handler.tempfail_next = 25  # and then busy for a while: 451 for the next 25 recipients


def test_a_relay_outage_of_a_few_minutes_heals_itself(run: Run) -> None:
    bounced, cut = recipient_of(150, False), recipient_of(160, False)
    run.sink.handler.refuse = {bounced: f"550 5.1.1 <{bounced}>: Recipient address rejected: User unknown"}
    run.sink.handler.drop_after_data = {cut}
    outage = RelayGoesAway(run, after=100, minutes=4)
    run.scheduler.transport = outage
    reports = run.work(timedelta(hours=6), on_pass=outage.maybe_back)

    down = [r for r in reports if r.relay_down]
    assert down and all("connecting failed" in (r.relay_down or "") for r in down)
    # While it was down each pass tried one message, not the whole batch: a handful of attempts in 4 minutes.
    assert 4 <= len(down) <= 12, len(down)
    assert sum(r.count("retrying") for r in reports) >= len(down) + 25  # the outage, then the 451s

    received = run.sink.keys()
    assert max(received.values()) == 1  # 0 duplicates
    assert run.states() == {"sent": 298, "bounced": 1, "unknown": 1}  # nothing left sending or retrying
    assert run.statuses() == {"completed": 298, "exited": 1, "held": 1}  # 0 stuck
    assert run.next_due() is None
    with run.scheduler.factory() as session:
        rows = {row.recipient: row for row in session.scalars(select(EnrollmentRow))}
        # Held with a true reason: the connection died after DATA, and the server does have the message.
        assert "outcome unknown" in (rows[cut].hold_reason or "") and "after DATA" in (rows[cut].hold_reason or "")
        assert received[f"enr{rows[cut].id}-step0"] == 1
        assert (rows[bounced].exit_reason, f"enr{rows[bounced].id}-step0" in received) == ("hard_bounce", False)
        assert is_suppressed(session, bounced) is not None
        sent_keys = set(session.scalars(select(OutboxRow.idempotency_key).where(OutboxRow.state == "sent")))
    assert sent_keys == set(received) - {f"enr{rows[cut].id}-step0"}  # every sent row reached the server once


def test_a_relay_that_stays_down_holds_what_it_refused_and_release_all_failed_brings_it_back(
        run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    run.sink.stop()
    settings = run.settings.model_copy(update={"send_retry_limit": 3})
    run.scheduler.settings = settings
    with run.scheduler.factory() as session:  # twenty steps are enough to see it
        keep = set(session.scalars(select(EnrollmentRow.id).order_by(EnrollmentRow.id).limit(20)))
    from outreach import db

    with db.transaction(run.scheduler.factory) as session:
        for row in session.scalars(select(EnrollmentRow).where(EnrollmentRow.id.not_in(keep))):
            row.status, row.next_due_at = "completed", None
    run.work(timedelta(hours=2))
    assert run.statuses() == {"held": 20, "completed": 280}
    assert run.states() == {"failed": 20}
    with run.scheduler.factory() as session:
        reasons = {row.hold_reason for row in session.scalars(select(EnrollmentRow).where(EnrollmentRow.id.in_(keep)))}
    assert len(reasons) == 1
    (reason,) = reasons
    assert reason is not None and reason.startswith("not sent after 3 attempts: SMTP 127.0.0.1:")
    assert "connecting failed (ConnectionRefusedError" in reason and run.sink.count() == 0  # true: never got there

    for name in ("DATABASE_URL", "SEQUENCES_DIR", "HOME"):
        monkeypatch.setenv(f"OUTREACH_{name}", str(getattr(run.settings, name.lower())))
    monkeypatch.setattr(sequences_cli.console, "width", 250)  # one table row per line
    held = CliRunner().invoke(app, ["sequences", "status", "--status", "held"])
    assert held.exit_code == 0 and held.output.count("not sent after 3 attempts") == 20, held.output
    result = CliRunner().invoke(app, ["sequences", "release", "--all-failed", "--as", "ops@ledgerly.example"])
    assert result.exit_code == 0, result.output
    assert result.output.count("will be tried again") == 20
    assert run.statuses() == {"active": 20, "completed": 280} and run.states() == {"retry": 20}
    waiting = CliRunner().invoke(app, ["sequences", "status", "--status", "active"])
    assert waiting.output.count("retrying (attempt 1 next)") == 20, waiting.output
    again = CliRunner().invoke(app, ["sequences", "release", "--all-failed", "--as", "ops@ledgerly.example"])
    assert again.exit_code == 0 and "nothing to release" in again.output
