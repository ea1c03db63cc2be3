"""Sequence and sending commands: ``outreach sequences``, ``worker``, ``tick``, ``replies`` and ``events``.

Thin wrappers over :mod:`outreach.sending.sequences`, :mod:`outreach.sending.scheduler`, :mod:`outreach.sending.replies` and
:mod:`outreach.sending.engagement`; :func:`register` adds them to the main app.
"""


import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from outreach import bundled
from outreach.cli.common import ActorOption, actor, console, err_console, get_settings, print_error, run
from outreach.errors import OutreachError
from outreach.types import EnrollmentStatus

if TYPE_CHECKING:
    from outreach.settings import Settings

sequences_app = typer.Typer(help="Sequences: check files, enroll approved drafts, stop and release.",
                            no_args_is_help=True)
replies_app = typer.Typer(help="Replies and bounces from an IMAP mailbox.", no_args_is_help=True)
events_app = typer.Typer(help="Product events into the event store (load, status, compact); reply, bounce, meeting and "
                         "conversion events from elsewhere (ingest).", no_args_is_help=True)


def _fail(error: OutreachError) -> None:
    print_error(error.message, error.hint)
    raise typer.Exit(error.exit_code)


def _settings() -> "Settings":
    return get_settings()


@sequences_app.command("check")
def check_command(
    directory: Annotated[Path | None, typer.Option("--dir", help="Sequence directory (default: "
                                                   "OUTREACH_SEQUENCES_DIR, else the workspace's sequences/, else "
                                                   "the packaged ones).")] = None,
) -> None:
    """Validate every sequence file (step kinds, prompts, durations, branch targets); exit 2 on a bad one."""
    from outreach.sending.sequences import check_all, template_kinds

    settings = _settings()
    try:
        source = bundled.locate("sequences", settings, directory)
        err_console.print(f"Sequences: {source.describe()}", highlight=False, markup=False, soft_wrap=True)
        good, errors = check_all(source.path, template_kinds(settings.prompts_dir))
    except OutreachError as error:
        _fail(error)
        return
    for seq in good:
        console.print(f"[green]ok[/green]  {seq.path}: {seq.id} ({len(seq.steps)} steps, {', '.join(seq.motions)})")
    for bad in errors:
        print_error(bad.message)
    if errors:
        raise typer.Exit(2)


@sequences_app.command("list")
def list_command() -> None:
    """The sequences, their motions, window and steps."""
    from outreach.sending.sequences import (
        EmailStep,
        TaskStep,
        WaitStep,
        load_sequences,
        sequences_dir,
        template_kinds,
    )

    settings = _settings()
    try:
        sequences = load_sequences(sequences_dir(settings.sequences_dir), templates=template_kinds(settings.prompts_dir))
    except OutreachError as error:
        _fail(error)
        return
    table = Table("id", "motions", "window", "steps", "auto send")
    for seq in sequences.values():
        steps = []
        for step in seq.steps:
            if isinstance(step, EmailStep):
                steps.append(f"email({step.prompt or 'approved'})")
            elif isinstance(step, WaitStep):
                steps.append(f"wait {step.duration}")
            elif isinstance(step, TaskStep):
                steps.append("task")
            else:
                steps.append(f"branch {step.condition}")
        table.add_row(seq.id, ", ".join(seq.motions), seq.window.describe(), " → ".join(steps), str(seq.auto_send))
    console.print(table)


@sequences_app.command("enroll")
def enroll_command(
    draft_ids: Annotated[list[int], typer.Argument(help="Approved draft ids.")],
    data_option: Annotated[Path | None, typer.Option("--data", "-d", help="Data directory the gate is re-checked "
                                                     "against (default as for `outreach explain`).")] = None,
    as_option: ActorOption = None,
    sequence: Annotated[str | None, typer.Option("--sequence", "-s", help="Sequence id (default: by motion).")] = None,
) -> None:
    """Enroll approved drafts in a sequence; the worker sends each step when it is due."""
    from outreach.cli.common import data_dir
    from outreach.sending.scheduler import build_scheduler

    as_user = actor(as_option)
    data = data_dir(data_option)
    try:
        scheduler = build_scheduler(_settings())
        for draft_id in draft_ids:
            row = scheduler.enroll(draft_id, actor=as_user, data_dir=data, sequence_id=sequence)
            console.print(f"draft {draft_id} → enrollment {row.id} in '{row.sequence_id}' ({row.recipient})")
    except OutreachError as error:
        _fail(error)


@sequences_app.command("status")
def status_command(
    status: Annotated[EnrollmentStatus | None, typer.Option("--status", "-s", help="Only enrollments in this state.")] = None,
) -> None:
    """Enrollments with their step, next due time, hold or exit reason; a send being retried shows its attempts."""
    from sqlalchemy import select

    from outreach import db
    from outreach.sending.tables import EnrollmentRow, OutboxRow

    engine = db.make_engine(db.database_url(_settings()))
    run(lambda: db.require_current(engine))
    try:
        with db.session_factory(engine)() as session:
            current = (OutboxRow.enrollment_id == EnrollmentRow.id) & (OutboxRow.step_index == EnrollmentRow.step_index)
            query = (select(EnrollmentRow, OutboxRow).outerjoin(OutboxRow, current & (OutboxRow.kind == "email"))
                     .order_by(EnrollmentRow.id))
            if status:
                query = query.where(EnrollmentRow.status == status)
            table = Table("id", "account", "sequence", "step", "status", "next due (UTC)", "reason")
            for row, outbox in session.execute(query):
                due = f"{row.next_due_at:%Y-%m-%d %H:%M}" if row.next_due_at else ""
                reason = row.hold_reason or (f"{row.exit_reason}: {row.exit_detail}" if row.exit_reason else "")
                if outbox is not None and outbox.state == "retry" and row.status == "active":
                    reason = f"retrying (attempt {outbox.attempts + 1} next): {outbox.detail or ''}"
                table.add_row(str(row.id), row.account_id, row.sequence_id, str(row.step_index), row.status,
                              due, reason)
        console.print(table)
    finally:
        engine.dispose()


@sequences_app.command("stop")
def stop_command(
    enrollment_id: int,
    as_option: ActorOption = None,
    note: Annotated[str, typer.Option("--note", "-m", help="Why, for the audit log.")] = "",
) -> None:
    """Stop an enrollment now (exit reason manual_stop)."""
    from outreach.sending.scheduler import build_scheduler

    as_user = actor(as_option)
    try:
        build_scheduler(_settings()).stop(enrollment_id, actor=as_user, note=note)
    except OutreachError as error:
        _fail(error)
    console.print(f"enrollment {enrollment_id} stopped")


@sequences_app.command("release")
def release_command(
    enrollment_ids: Annotated[list[int] | None, typer.Argument(help="Held enrollment ids.")] = None,
    as_option: ActorOption = None,
    sent: Annotated[bool | None, typer.Option(
        "--sent/--not-sent", help="For a send whose outcome is unknown: you checked, it went out / it did not.")] = None,
    all_failed: Annotated[bool, typer.Option(
        "--all-failed", help="Every enrollment held because its send was refused or ran out of retries "
        "(outbox state failed), e.g. after fixing the relay.")] = False,
) -> None:
    """Resume held enrollments after checking them: a send in doubt (--sent/--not-sent), a refused send
    (tried again), a step sent back to review (after re-approving it)."""
    from outreach.sending.scheduler import build_scheduler

    first_error: OutreachError | None = None
    as_user = actor(as_option)
    try:
        scheduler = build_scheduler(_settings())
        ids = list(enrollment_ids or [])
        if all_failed:
            ids += [i for i in scheduler.held_failed() if i not in ids]
        if not ids:
            if not all_failed:
                print_error("give held enrollment ids, or --all-failed", "outreach sequences status -s held lists them")
                raise typer.Exit(2)
            console.print("nothing to release")
        for enrollment_id in ids:
            try:
                done = scheduler.release(enrollment_id, actor=as_user, was_sent=sent)
            except OutreachError as error:
                first_error = first_error or error
                print_error(error.message, error.hint)
                continue
            console.print(f"enrollment {enrollment_id}: {done}")
    except OutreachError as error:
        _fail(error)
    if first_error is not None:
        raise typer.Exit(first_error.exit_code)


def tick_command(
    recover_all: Annotated[bool, typer.Option("--recover-all", help="This is the only worker: treat every "
                                              "in-flight send as crashed.")] = False,
) -> None:
    """Run one scheduler pass (for cron) and print what it did."""
    from outreach.sending.scheduler import build_scheduler

    try:
        report = build_scheduler(_settings()).tick(recover_all=recover_all)
    except OutreachError as error:
        _fail(error)
        return
    for outcome in report.outcomes:
        console.print(f"{outcome.kind:<15} enrollment {outcome.enrollment_id} ({outcome.account_id}) "
                      f"step {outcome.step}: {outcome.reason}")
    console.print(report.line())


def worker_command(
    interval: Annotated[float | None, typer.Option("--interval", min=0, help="Seconds between idle passes.")] = None,
    passes: Annotated[int | None, typer.Option("--passes", min=1, help="Stop after this many passes.")] = None,
) -> None:
    """Run the scheduler loop until Ctrl-C / SIGTERM (finishes the current send first)."""
    from outreach.sending.scheduler import build_scheduler

    stopping: list[bool] = []

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.append(True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        scheduler = build_scheduler(_settings())
        for report in scheduler.worker(interval=interval, passes=passes, should_stop=lambda: bool(stopping)):
            if report.outcomes:
                console.print(f"{datetime.now(UTC):%H:%M:%S} {report.line()}")
    except OutreachError as error:
        _fail(error)


@events_app.command("ingest")
def ingest_command(
    path: Annotated[Path, typer.Argument(help="JSONL: one event per line (docs/sequences.md, docs/metrics.md).")],
) -> None:
    """Record reply, bounce, unsubscribe, click, meeting and conversion events, and expansion outcomes
    (upgrade, seat_add, addon_purchase, contraction, downgrade, churn), from a file ('-' = stdin)."""
    from outreach import db
    from outreach.metrics.ingest import ingest, parse_events

    settings = _settings()
    try:
        if str(path) == "-":
            import tempfile

            with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as handle:
                handle.write(sys.stdin.read())
            path = Path(handle.name)
        events = parse_events(path, accounts_dir=settings.data_dir)
        engine = db.make_engine(db.database_url(settings))
        db.require_current(engine)
        report = ingest(db.session_factory(engine), events, lambda: datetime.now(UTC), source="file")
        engine.dispose()
    except OutreachError as error:
        _fail(error)
        return
    console.print(report.line())


@replies_app.command("poll")
def poll_command() -> None:
    """Read new mail from the IMAP folder: replies, auto-replies (ignored) and bounces (RFC 3464)."""
    from outreach import db
    from outreach.sending.replies import poll

    settings = _settings()
    try:
        engine = db.make_engine(db.database_url(settings))
        db.require_current(engine)
        report = poll(settings, db.session_factory(engine), clock=lambda: datetime.now(UTC))
        engine.dispose()
    except OutreachError as error:
        _fail(error)
        return
    console.print(report.line())


def register(app: typer.Typer) -> None:
    """Add ``sequences``, ``events``, ``replies``, ``tick`` and ``worker`` to the main CLI."""
    app.add_typer(sequences_app, name="sequences")
    app.add_typer(events_app, name="events")
    app.add_typer(replies_app, name="replies")
    app.command("tick")(tick_command)
    app.command("worker")(worker_command)
