"""Integration commands: the event store (``outreach events load|status|compact``), the intake write key
(``outreach intake``), Zendesk (``outreach tickets sync``) and outbound notifications (``outreach notify``).

Thin wrappers over :mod:`outreach.engine.store` and :mod:`outreach.integrations`; :func:`register` adds them to
the main app (``events`` joins the group :mod:`outreach.cli.sequences` already has).
"""


from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from outreach.cli.common import ActorOption, DataOption, check_date, console, data_dir, optional_actor, run

if TYPE_CHECKING:
    from outreach.engine.store import FileLoad, StoreStatus

# The application, the event store and the integrations are imported by the commands that use them, so
# `outreach --help` starts without DuckDB or SQLAlchemy (tests/cli/test_startup.py).

intake_app = typer.Typer(help="The Segment-compatible event API on `outreach serve`: its write key.",
                         no_args_is_help=True)


def events_load_command(
    files: Annotated[list[Path], typer.Argument(help="Events files: JSON Lines, Parquet or CSV (docs/data-formats.md).")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the events stored earlier from a file that has changed.")
    ] = False,
) -> None:
    """Store events files in the workspace's event store once: later runs read the store instead of parsing
    them again. A file stored before is skipped when unchanged and only its new lines are stored when it grew."""
    from outreach.application import application_for

    def action() -> "list[FileLoad]":
        with application_for(None) as application:
            store = application.event_store(create=True)
            assert store is not None
            return [store.load_file(path, replace=replace) for path in files]

    for report in run(action):
        console.print(report.line(), highlight=False)


def events_status_command() -> None:
    """Show what the event store holds: events, accounts, time span, stored files."""
    from outreach.application import application_for

    def action() -> "StoreStatus | None":
        with application_for(None) as application:
            store = application.event_store()
            return store.status() if store is not None else None

    status = run(action)
    if status is None:
        console.print("No event store yet: `outreach events load FILE` or the /v1 API creates it.", highlight=False)
        raise typer.Exit(1)
    span = f"{status.first:%Y-%m-%d} – {status.last:%Y-%m-%d}" if status.first and status.last else "—"
    console.print(
        f"Event store ({status.backend}, {status.path}): {status.events:,} messages, {status.engine_events:,} "
        f"product events for {status.accounts:,} accounts, {span}; {status.unresolved:,} events wait for a "
        f"`group` call to name their account; {status.pending:,} API events not yet in the file",
        highlight=False,
    )
    if status.files:
        table = Table(title="Stored files")
        for column in ("File", "Rows", "Size", "Stored (UTC)"):
            table.add_column(column, overflow="fold")
        for record in status.files:
            table.add_row(record.path, f"{record.rows:,}", f"{record.size:,}", f"{record.loaded_at:%Y-%m-%d %H:%M}")
        console.print(table)


def events_compact_command() -> None:
    """Move events that arrived through the API from the database into the DuckDB file now (runs do this too)."""
    from outreach.application import application_for

    def action() -> int:
        with application_for(None) as application:
            store = application.event_store()
            return store.compact() if store is not None else 0

    console.print(f"{run(action):,} events moved into the event store file", highlight=False)


@intake_app.command("key")
def intake_key_command(actor: ActorOption = None) -> None:
    """Create the workspace's write key (the previous one stops working) and print it once."""
    from datetime import UTC, datetime

    from outreach.application import application_for
    from outreach.integrations.intake import create_key

    def action() -> str:
        with application_for(None) as application:
            application.upgrade_database()
            application.event_store(create=True)
            with application.transaction() as session:
                return create_key(session, optional_actor(actor) or "cli", datetime.now(UTC))

    key = run(action)
    console.print(key, highlight=False, soft_wrap=True)
    console.print("[dim]Shown once. Send it as the HTTP Basic username (analytics.write_key = …, host = "
                  "http(s)://<outreach serve>/) ; `outreach intake revoke` stops it.[/]", highlight=False)


@intake_app.command("revoke")
def intake_revoke_command() -> None:
    """Stop the workspace's write key: /v1 answers 401 until `outreach intake key` creates a new one."""
    from datetime import UTC, datetime

    from outreach.application import application_for
    from outreach.integrations.intake import revoke_keys

    def action() -> int:
        with application_for(None) as application, application.transaction() as session:
            return revoke_keys(session, datetime.now(UTC))

    console.print(f"{run(action)} key(s) revoked", highlight=False)


def notify_command(
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Put failed notifications back in the queue first.")
    ] = False,
    show: Annotated[bool, typer.Option("--list", help="List the latest notifications instead of delivering.")] = False,
) -> None:
    """Collect approvals, sends, holds and replies since the last pass and deliver them to Slack, the CRM and
    the outbound webhook (`outreach serve` does this every 15 s; cron this where nothing is served)."""
    from outreach.application import application_for
    from outreach.integrations import notify

    if show:
        def rows() -> list[tuple[object, ...]]:
            from sqlalchemy import select

            from outreach.integrations.tables import NotificationRow

            with application_for(None) as application, application.sessions() as session:
                return [(r.id, r.channel, r.kind, r.account_id or "", r.state, r.attempts, r.last_error or "")
                        for r in session.scalars(select(NotificationRow).order_by(NotificationRow.id.desc()).limit(50))]

        table = Table(title="Notifications (latest 50)")
        for column in ("Id", "Channel", "Kind", "Account", "State", "Attempts", "Error"):
            table.add_column(column, overflow="fold")
        for row in run(rows):
            table.add_row(*(str(value) for value in row))
        console.print(table)
        return

    def action() -> tuple[int, notify.DeliveryReport]:
        with application_for(None) as application:
            again = notify.retry_failed(application) if retry_failed else 0
            return again, notify.notify_pass(application)

    again, report = run(action)
    console.print((f"{again} failed notifications retried; " if retry_failed else "") + report.line(),
                  highlight=False)
    if report.failed:
        raise typer.Exit(1)


tickets_app = typer.Typer(help="Support tickets from Zendesk into a data directory.", no_args_is_help=True)


@tickets_app.command("sync")
def tickets_sync_command(
    data_option: DataOption = None,
    since: Annotated[str | None, typer.Option("--since", callback=check_date, metavar="YYYY-MM-DD",
                                              help="First sync only: tickets changed since this date "
                                              "(default 180 days ago).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Forget the saved cursor and read again from --since.")] = False,
) -> None:
    """Read Zendesk's organisations and Incremental Ticket Export (cursor-based, resumable) into the data
    directory's organizations.csv and tickets.jsonl."""
    from datetime import date

    from outreach.integrations.zendesk import sync
    from outreach.settings import get_settings

    data = data_dir(data_option)
    start = date.fromisoformat(since) if since else None  # checked while parsing
    console.print(run(lambda: sync(get_settings(), data, since=start, full=full).line()), highlight=False)


def register(app: typer.Typer) -> None:
    """Add the integration commands to the main CLI."""
    from outreach.cli.sequences import events_app

    events_app.command("load")(events_load_command)
    events_app.command("status")(events_status_command)
    events_app.command("compact")(events_compact_command)
    app.add_typer(intake_app, name="intake")
    app.add_typer(tickets_app, name="tickets")
    app.command("notify")(notify_command)
