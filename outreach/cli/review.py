"""Review-queue commands: ``outreach db``, ``queue``, ``users``, ``tokens`` and ``serve``.

For scripted use and for teams without the web app. Every queue action is attributed to a user (``--as``,
default OUTREACH_USER), just like in the web app, so the audit log always says who did what. :func:`register` adds these commands
to the main ``outreach`` app; :func:`prepare_demo` is what ``outreach demo`` uses to fill the queue.
"""


import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table

from outreach import bundled
from outreach.cli.common import (
    ActorOption,
    AsOfOption,
    DraftVersionOption,
    JsonOption,
    actor,
    console,
    get_settings,
    parse_as_of,
    run,
)
from outreach.errors import NotFoundError, OutreachError
from outreach.types import DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS, DraftStatus, OfferMotion, RejectReason, Role

if TYPE_CHECKING:
    from outreach.application import Application
    from outreach.drafting.drafts import DraftRecord, Workspace
    from outreach.drafting.facts import SenderFacts
    from outreach.review.queue import DraftDetail, EnqueueResult, ReviewQueue
    from outreach.review.users import Principal, TokenInfo, UserInfo
    from outreach.settings import Settings

# The database layer (SQLAlchemy, the queue, argon2) is imported by the commands that use it, so `outreach
# --help` and the commands without a database start without it.

db_app = typer.Typer(help="Database schema: apply migrations.", no_args_is_help=True)
queue_app = typer.Typer(help="The review queue: list, show, approve and reject drafts.", no_args_is_help=True)
users_app = typer.Typer(help="Logins for the review web app.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for integrations (/api/).", no_args_is_help=True)

DataOption = Annotated[
    Path | None, typer.Option("--data", "-d", help="Data directory: re-check the account's gate against it first "
                              "('demo' for the packaged demo data).")
]
StatusFilter = Literal["all", DraftStatus]


def _display_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _queue(settings: "Settings", data: Path | None = None, as_of: str | None = None) -> "ReviewQueue":
    from outreach.application import Application
    from outreach.review.queue import DatasetGateCheck, ReviewQueue

    application = Application.from_settings(settings)
    gate_check = None
    if data is not None:
        data = bundled.data_dir(data, settings).path
        gate_check = DatasetGateCheck(data, parse_as_of(as_of), rules_path=settings.rules_path,
                                      dataset=application.dataset(data))
    return ReviewQueue(application.sessions, gate_check=gate_check)


def _actor(queue: "ReviewQueue", email: str) -> "Principal":
    from outreach.review.users import list_users, normalize_email

    address = normalize_email(email)
    with queue.factory() as session:
        for user in list_users(session):
            if user.email == address:
                return user
    raise NotFoundError(f"no user {address}", hint="create it with `outreach users add EMAIL --role sdr`")


# ------------------------------------------------------------------------------------------------ db


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database or bring it to the latest schema. Keeps existing data; safe to re-run."""
    from outreach import db

    def action() -> str:
        url = db.database_url(get_settings())
        db.upgrade(url)
        return url

    url = run(action)
    console.print(f"Database {_display_url(url)} is at revision {db.head_revision()}.", highlight=False)


# ------------------------------------------------------------------------------------------------ users


@users_app.command("add")
def users_add(
    email: Annotated[str, typer.Argument(help="Login email.")],
    role: Annotated[Role, typer.Option("--role", "-r", help="admin = manager.")],
    generate: Annotated[bool, typer.Option("--generate", help="Generate a password and print it once.")] = False,
    name: Annotated[str | None, typer.Option("--name", help="Full name: signs the drafts of accounts they own.")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Job title under the name, e.g. Account Manager.")] = None,
) -> None:
    """Create a login. Prompts for the password (or reads it from stdin when piped) unless --generate."""
    from outreach import db
    from outreach.review.users import add_user, generate_password

    if generate:
        password = generate_password()
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")

    def action() -> "Principal":
        queue = _queue(get_settings())
        with db.transaction(queue.factory) as session:
            return add_user(session, email, role, password, name=name, title=title)

    user = run(action)
    console.print(f"Created {user.email} ({user.role}).", highlight=False)
    if generate:
        console.print(f"Password (shown once): [bold]{password}[/]", highlight=False)


@users_app.command("set")
def users_set(
    email: Annotated[str, typer.Argument(help="Login email.")],
    name: Annotated[str | None, typer.Option("--name", help="Full name that signs their accounts' drafts.")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Job title under the name ('' clears it).")] = None,
) -> None:
    """Set the name and title a user signs drafts with (the accounts whose owner_email is theirs)."""
    from outreach import db
    from outreach.review.users import set_profile

    def action() -> None:
        queue = _queue(get_settings())
        with db.transaction(queue.factory) as session:
            set_profile(session, email, name=name, title=title)

    run(action)
    console.print(f"Updated {email}.", highlight=False)


@users_app.command("list")
def users_list() -> None:
    """List logins: email, role, active or deactivated, open web sessions (tab-separated)."""
    from outreach.review.users import user_infos

    def action() -> "list[UserInfo]":
        queue = _queue(get_settings())
        with queue.factory() as session:
            return user_infos(session)

    for user in run(action):
        state = "active" if user.active else "deactivated"
        sys.stdout.write(f"{user.email}\t{user.role}\t{state}\t{user.open_sessions} sessions\n")


def _user_change(change: Any) -> Any:
    from outreach import db

    def action() -> Any:
        queue = _queue(get_settings())
        with db.transaction(queue.factory) as session:
            return change(session)

    return run(action)


@users_app.command("deactivate")
def users_deactivate(email: Annotated[str, typer.Argument(help="Login email.")]) -> None:
    """Block a login: its web sessions end now and its API tokens stop working."""
    from outreach.review.users import deactivate_user, normalize_email

    ended = _user_change(lambda session: deactivate_user(session, email))
    console.print(f"Deactivated {normalize_email(email)}; {ended} web session(s) ended.", highlight=False)


@users_app.command("activate")
def users_activate(email: Annotated[str, typer.Argument(help="Login email.")]) -> None:
    """Let a deactivated login in again."""
    from outreach.review.users import activate_user, normalize_email

    _user_change(lambda session: activate_user(session, email))
    console.print(f"Re-activated {normalize_email(email)}.", highlight=False)


@users_app.command("set-role")
def users_set_role(
    email: Annotated[str, typer.Argument(help="Login email.")],
    role: Annotated[Role, typer.Argument(help="sdr, marketing or admin (admin = manager).")],
) -> None:
    """Change a login's role; their web sessions end so the new role applies at once."""
    from outreach.review.users import normalize_email, set_role

    ended = _user_change(lambda session: set_role(session, email, role))
    console.print(f"{normalize_email(email)} is now {role}; {ended} web session(s) ended.", highlight=False)


@users_app.command("reset-password")
def users_reset_password(
    email: Annotated[str, typer.Argument(help="Login email.")],
    generate: Annotated[bool, typer.Option("--generate", help="Generate a password and print it once.")] = False,
) -> None:
    """Set a new password (prompted, piped on stdin, or --generate); every web session of the user ends."""
    from outreach.review.users import generate_password, normalize_email, set_password

    if generate:
        password = generate_password()
    elif sys.stdin.isatty():
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    _user_change(lambda session: set_password(session, email, password))
    console.print(f"Password of {normalize_email(email)} changed; their web sessions ended.", highlight=False)
    if generate:
        console.print(f"Password (shown once): [bold]{password}[/]", highlight=False)


def owner_senders(application: "Application | Settings", *, migrate: bool) -> "dict[str, SenderFacts]":
    """Who signs each owner's drafts, from the users table (migrating it first when ``migrate``). Without a
    database at the latest schema there is nobody to look up, and the catalog's sender signs."""
    from sqlalchemy.engine import make_url

    from outreach.application import application_for
    from outreach.review.users import senders

    with application_for(application) as app:
        url = make_url(app.database_url)
        if not migrate and url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
            return {}
        try:
            if migrate:
                app.upgrade_database()
            with app.transaction() as session:
                return senders(session)
        except OutreachError:
            return {}


# ------------------------------------------------------------------------------------------------ tokens


@tokens_app.command("create")
def tokens_create(
    email: Annotated[str, typer.Argument(help="The user the token acts as.")],
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. slack.")] = "api",
    days: Annotated[int, typer.Option("--days", help=f"Days until the token expires (1-{MAX_TOKEN_DAYS}).")] = DEFAULT_TOKEN_DAYS,
) -> None:
    """Create an API token; it is printed once and only a hash is stored. It expires after --days."""
    from outreach import db
    from outreach.review.users import create_token

    def action() -> "tuple[TokenInfo, str]":
        queue = _queue(get_settings())
        with db.transaction(queue.factory) as session:
            return create_token(session, email, name, days=days)

    info, secret = run(action)
    sys.stdout.write(secret + "\n")
    expires = f"{info.expires_at:%Y-%m-%d}" if info.expires_at else "never"
    typer.echo(f"Store it now: it cannot be shown again (prefix {info.prefix}, expires {expires}). Use it as "
               "'Authorization: Bearer <token>'.", err=True)


@tokens_app.command("list")
def tokens_list(
    email: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
) -> None:
    """List API tokens (prefix, name, user, created, expires, last used, state) — never their secrets."""
    from datetime import UTC, datetime

    from outreach.review.users import list_tokens

    def action() -> "list[TokenInfo]":
        queue = _queue(get_settings())
        with queue.factory() as session:
            return list_tokens(session, email=email)

    now = datetime.now(UTC)
    table = Table(title="API tokens", expand=False)
    for column in ("Prefix", "Name", "User", "Created", "Expires", "Last used", "State"):
        table.add_column(column, overflow="fold")
    for token in run(action):
        table.add_row(token.prefix, token.name, token.email, f"{token.created_at:%Y-%m-%d}",
                      f"{token.expires_at:%Y-%m-%d}" if token.expires_at else "never",
                      f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "—", token.state(now))
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(prefix: Annotated[str, typer.Argument(help="The token's prefix (see `tokens list`).")]) -> None:
    """Revoke an API token: it stops working at once."""
    from outreach.review.users import revoke_token

    _user_change(lambda session: revoke_token(session, prefix))
    console.print(f"Revoked token {prefix}.", highlight=False)


# ------------------------------------------------------------------------------------------------ queue


def _print_detail(detail: "DraftDetail") -> None:
    s = detail.summary
    console.print(f"[bold]Draft {s.id}[/] · {s.account_name} ({s.account_id}) · {s.status} · v{s.version} · "
                  f"owner {s.owner_email or 'unassigned'}", highlight=False)
    if detail.offer:
        console.print(f"Offer: {detail.offer.get('name')} ${detail.offer.get('price_monthly', 0):,.0f}/mo",
                      highlight=False)
    console.print(f"\n[bold]Subject:[/] {detail.current.subject}\n", highlight=False)
    console.print(detail.current.body, highlight=False, markup=False)
    console.print("\n[bold]Friction and evidence[/]")
    for friction in detail.frictions:
        console.print(f"- {friction.statement}", highlight=False, markup=False)
        for item in friction.evidence:
            when = item.occurred_at.strftime("%Y-%m-%d") if item.occurred_at else "—"
            console.print(f"    {when}  {item.ref}  {item.summary}", highlight=False, markup=False)
    reasons = detail.gate.get("reasons") or []
    console.print("Gate: " + ("passes" if detail.gate.get("allowed") else "; ".join(r["message"] for r in reasons)),
                  highlight=False)


@queue_app.command("list")
def queue_list(
    status: Annotated[StatusFilter, typer.Option("--status", "-s", help="Drafts in this state, or all.")] = "pending_review",
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner's drafts.")] = None,
    motion: Annotated[OfferMotion | None, typer.Option("--motion", help="Only this motion.")] = None,
    trigger: Annotated[str | None, typer.Option("--trigger", help="Trigger kind, as `outreach explain --json` names it.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500, help="At most this many rows.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List drafts, newest change first, with counts per status."""
    from outreach.review.queue import QueueFilter
    from outreach.review.users import Principal

    def action() -> Any:
        queue = _queue(get_settings())
        flt = QueueFilter(status=None if status == "all" else status, owner=owner, motion=motion,
                          trigger=trigger, limit=limit)
        viewer = Principal(id=0, email="cli@localhost", role="marketing")  # reading needs no user
        return queue.page(viewer, flt)

    page = run(action)
    if as_json:
        sys.stdout.write(page.model_dump_json(indent=2) + "\n")
        return
    table = Table(title="Review queue", expand=False)
    for column in ("ID", "Ver", "Account", "Subject", "Trigger", "Offer", "Owner", "Status"):
        table.add_column(column, overflow="fold")
    for row in page.rows:
        offer = f"{row.offer_name} ${row.offer_price:,.0f}" if row.offer_name and row.offer_price is not None else "—"
        table.add_row(str(row.id), str(row.version), row.account_name, row.subject, row.trigger, offer,
                      row.owner_email or "unassigned", row.status)
    console.print(table)
    counts = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in page.counts.by_status.items() if count)
    console.print(f"{page.matching} matching; {counts or 'queue is empty'}", highlight=False)


@queue_app.command("show")
def queue_show(
    draft_id: Annotated[int, typer.Argument(help="Draft id (from `queue list`).")],
    as_json: JsonOption = False,
) -> None:
    """Show one draft beside its friction, evidence and gate."""
    from outreach.review.users import Principal

    def action() -> "DraftDetail":
        queue = _queue(get_settings())
        return queue.show(Principal(id=0, email="cli@localhost", role="marketing"), draft_id)

    detail = run(action)
    if as_json:
        sys.stdout.write(detail.model_dump_json(indent=2) + "\n")
    else:
        _print_detail(detail)


def _current_version(queue: "ReviewQueue", actor: "Principal", draft_id: int, version: int | None) -> int:
    return version if version is not None else queue.show(actor, draft_id).summary.version


@queue_app.command("approve")
def queue_approve(
    draft_id: Annotated[int, typer.Argument(help="Draft id (from `queue list`).")],
    as_option: ActorOption = None,
    version: DraftVersionOption = None,
    data: DataOption = None,
    as_of: AsOfOption = None,
) -> None:
    """Approve a pending draft. With --data the account's gate is re-checked first; a gated draft expires."""
    email = actor(as_option)

    def action() -> "DraftDetail":
        queue = _queue(get_settings(), data, as_of)
        user = _actor(queue, email)
        return queue.approve(user, draft_id, _current_version(queue, user, draft_id, version))

    detail = run(action)
    console.print(f"Approved draft {detail.summary.id} ({detail.summary.account_name}).", highlight=False)


@queue_app.command("reject")
def queue_reject(
    draft_id: Annotated[int, typer.Argument(help="Draft id (from `queue list`).")],
    reason: Annotated[RejectReason, typer.Option("--reason", help="Why the draft is wrong.")],
    as_option: ActorOption = None,
    note: Annotated[str, typer.Option("--note", "-m", help="Why, in a few words (required for 'other').")] = "",
    version: DraftVersionOption = None,
) -> None:
    """Reject a pending draft with a reason code."""
    email = actor(as_option)

    def action() -> "DraftDetail":
        queue = _queue(get_settings())
        user = _actor(queue, email)
        return queue.reject(user, draft_id, _current_version(queue, user, draft_id, version), reason, note)

    detail = run(action)
    console.print(f"Rejected draft {detail.summary.id} ({detail.reject_reason}).", highlight=False)


# ------------------------------------------------------------------------------------------------ serve


def serve_command(
    host: Annotated[
        str | None, typer.Option("--host", help="Interface to bind (default OUTREACH_HOST or 127.0.0.1; keep it unless behind a proxy).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", "-p", min=1, max=65535, help="Port (default OUTREACH_PORT or 8000).")] = None,
    data: Annotated[Path | None, typer.Option("--data", "-d", help="Data directory for gate re-checks and "
                                              "regeneration ('demo' for the packaged demo data; default "
                                              "OUTREACH_DATA_DIR, else the workspace's data/ if any).")] = None,
    as_of: AsOfOption = None,
) -> None:
    """Run the review web app."""
    from outreach.web.app import create_app, serve

    def action() -> Any:
        updates: dict[str, Any] = {}
        if host is not None:
            updates["host"] = host
        if port is not None:
            updates["port"] = port
        if data is not None:
            updates["data_dir"] = bundled.data_dir(data).path
        if as_of is not None:
            updates["as_of"] = parse_as_of(as_of)
        settings = get_settings().model_copy(update=updates)
        return create_app(settings), settings

    app, settings = run(action)
    console.print(f"Review app on http://{settings.host}:{settings.port}/ (Ctrl+C stops it)", highlight=False)
    serve(app, settings.host, settings.port)


# ------------------------------------------------------------------------------------------------ demo


@dataclass(frozen=True)
class DemoSetup:
    """What ``outreach demo`` needs to tell the user: where to log in and with what (shown once). ``email`` is
    the demo SDR — the rep who owns the most queued drafts — and ``admin_email`` a manager login."""

    email: str
    password: str
    admin_email: str
    admin_password: str
    results: "list[EnqueueResult]"
    pending_for_sdr: int = 0

    def line(self) -> str:
        created = sum(r.outcome == "created" for r in self.results)
        merged = sum(r.outcome == "merged" for r in self.results)
        return f"{created} drafts queued, {merged} merged, {len(self.results) - created - merged} skipped"


DEMO_EMAIL = "demo@outreach.example"
# The demo's account owners (accounts.csv owner_email), so demo drafts are signed by their rep.
DEMO_TEAM = (
    ("maya@ledgerly.example", "Maya Chen", "Account Manager"),
    ("priya@ledgerly.example", "Priya Raman", "Account Executive"),
    ("sam@ledgerly.example", "Sam Okafor", "Customer Success Manager"),
)


def seed_demo_team(application: "Application | Settings") -> "dict[str, SenderFacts]":
    """Migrate the database and make sure the demo's reps exist (sdr logins with random passwords nobody is
    shown) with their names and titles; returns who signs for each of them."""
    from outreach.application import application_for
    from outreach.review.users import add_user, generate_password, list_users, senders, set_profile

    with application_for(application) as app:
        app.upgrade_database()
        with app.transaction() as session:
            known = {u.email for u in list_users(session)}
            for email, name, title in DEMO_TEAM:
                if email in known:
                    set_profile(session, email, name=name, title=title, actor="demo")
                else:
                    add_user(session, email, "sdr", generate_password(), actor="demo", name=name, title=title)
        with app.transaction() as session:
            return senders(session)


def enqueue_drafts(
    application: "Application | Settings", workspace: "Workspace", records: "Sequence[DraftRecord]"
) -> "list[EnqueueResult]":
    """Put a drafting run into the review queue (migrating the database first), merging per account+motion."""
    from outreach.application import application_for
    from outreach.review.queue import ReviewQueue
    from outreach.review.redraft import inputs_by_account

    with application_for(application) as app:
        app.upgrade_database()
        queue = ReviewQueue(app.sessions)
        return queue.fill(workspace.decisions, inputs_by_account(list(records)), dataset=workspace.dataset)


def prepare_demo(
    application: "Application | Settings", data_dir: Path, as_of: date, *, provider_name: str | None = None
) -> DemoSetup:
    """Migrate the database, draft the demo data, fill the queue and (re)create two logins with fresh random
    passwords: the demo SDR (the account owner with the most pending drafts, so "Mine" is a real morning's
    queue) and a manager (``demo@outreach.example``, admin)."""
    from collections import Counter

    from outreach.application import application_for
    from outreach.drafting.drafts import open_workspace, run_drafts
    from outreach.review.queue import QueueFilter, ReviewQueue
    from outreach.review.users import (
        Principal,
        activate_user,
        add_user,
        generate_password,
        list_users,
        set_password,
        set_role,
    )

    with application_for(application) as app:
        settings = app.settings
        team = seed_demo_team(app)
        workspace = open_workspace(data_dir, as_of, rules_path=settings.rules_path, prompts_dir=settings.prompts_dir,
                                   senders=team)
        provider = app.provider(provider_name or "offline", workspace.context.config)
        records, _ = run_drafts(workspace.decisions, workspace.context, provider)
        results = enqueue_drafts(app, workspace, records)
        queue = ReviewQueue(app.sessions)
        pending = queue.page(Principal(id=0, email=DEMO_EMAIL, role="admin"), QueueFilter(limit=500)).rows
        owners = Counter(row.owner_email for row in pending if row.owner_email)
        sdr_email = min(owners, key=lambda owner: (-owners[owner], owner)) if owners else "sdr@outreach.example"
        passwords = {sdr_email: generate_password(), DEMO_EMAIL: generate_password()}
        with app.transaction() as session:
            existing = {user.email: user for user in list_users(session)}
            for email, role in ((sdr_email, "sdr"), (DEMO_EMAIL, "admin")):
                if email in existing:
                    set_password(session, email, passwords[email], actor="demo")
                    activate_user(session, email, actor="demo")
                    if existing[email].role != role:
                        set_role(session, email, role, actor="demo")
                else:
                    add_user(session, email, role, passwords[email], actor="demo")
    return DemoSetup(email=sdr_email, password=passwords[sdr_email], admin_email=DEMO_EMAIL,
                     admin_password=passwords[DEMO_EMAIL], results=results, pending_for_sdr=owners.get(sdr_email, 0))


def register(app: typer.Typer, *, names: Sequence[str] = ("db", "queue", "users", "tokens", "serve")) -> None:
    """Add the review commands to the main CLI."""
    groups = {"db": db_app, "queue": queue_app, "users": users_app, "tokens": tokens_app}
    for name in names:
        if name == "serve":
            app.command("serve")(serve_command)
        else:
            app.add_typer(groups[name], name=name)
