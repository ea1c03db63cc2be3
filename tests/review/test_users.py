"""Users, roles, password hashing and API tokens; and the review CLI commands (db, users, tokens, queue)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from outreach import db
from outreach.cli.common import OutreachGroup
from outreach.cli.review import prepare_demo, register
from outreach.errors import ConflictError, NotFoundError, OutreachError, PermissionDeniedError
from outreach.review.storage import ApiTokenRow, UserRow
from outreach.review.users import add_user, authenticate, create_token, principal_for_token, revoke_token
from outreach.settings import Settings
from tests.review_world import MAYA, PASSWORD, ReviewWorld


def test_add_and_authenticate(db_url: str) -> None:
    factory = db.session_factory(db.make_engine(db_url))
    with db.transaction(factory) as session:
        user = add_user(session, " Rep@Example.COM ", "sdr", PASSWORD)
    assert (user.email, user.role, user.is_manager, user.can_review) == ("rep@example.com", "sdr", False, True)
    with db.transaction(factory) as session:
        assert authenticate(session, "rep@example.com", PASSWORD).id == user.id
        stored = session.scalar(select(UserRow.password_hash))
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored
    for email, password in (("rep@example.com", "wrong password"), ("nobody@example.com", PASSWORD)):
        with pytest.raises(PermissionDeniedError, match="wrong email or password"), db.transaction(factory) as s:
            authenticate(s, email, password)


def test_add_user_validation(db_url: str) -> None:
    factory = db.session_factory(db.make_engine(db_url))
    with db.transaction(factory) as session:
        add_user(session, "rep@example.com", "admin", PASSWORD)
    cases = [
        (("rep@example.com", "sdr", PASSWORD), ConflictError, "already exists"),
        (("other@example.com", "boss", PASSWORD), OutreachError, "not a role"),
        (("not-an-email", "sdr", PASSWORD), OutreachError, "not an email"),
        (("other@example.com", "sdr", "short"), OutreachError, "too short"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=message), db.transaction(factory) as session:
            add_user(session, *args)


def test_api_tokens_are_stored_hashed_and_revocable(db_url: str) -> None:
    factory = db.session_factory(db.make_engine(db_url))
    with db.transaction(factory) as session:
        add_user(session, "bot@example.com", "sdr", PASSWORD)
        info, secret = create_token(session, "bot@example.com", "slack")
    assert secret.startswith(f"otk_{info.prefix}_")
    with db.transaction(factory) as session:
        assert principal_for_token(session, secret).email == "bot@example.com"
        row = session.scalar(select(ApiTokenRow))
        assert row is not None and secret.split("_", 2)[2] not in row.token_hash and row.last_used_at is not None
    for bad in ("otk_" + info.prefix + "_wrong", "garbage", f"otk_nope_{secret.split('_', 2)[2]}"):
        with pytest.raises(PermissionDeniedError), db.transaction(factory) as session:
            principal_for_token(session, bad)
    with db.transaction(factory) as session:
        revoke_token(session, info.prefix)
    with pytest.raises(PermissionDeniedError), db.transaction(factory) as session:
        principal_for_token(session, secret)
    with pytest.raises(NotFoundError), db.transaction(factory) as session:
        create_token(session, "ghost@example.com", "x")


# ------------------------------------------------------------------------------------------------ CLI


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer(cls=OutreachGroup)  # the real CLI's error format

    @app.callback()
    def main() -> None:
        """outreach (test harness)"""

    register(app)
    return app


def test_db_upgrade_command(cli: typer.Typer, isolated_home: Path) -> None:
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"is at revision {db.head_revision()}" in result.output
    assert (isolated_home / "outreach.db").exists()
    assert CliRunner().invoke(cli, ["db", "upgrade"]).exit_code == 0  # idempotent


def test_users_and_tokens_commands(cli: typer.Typer, isolated_home: Path) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["db", "upgrade"])
    added = runner.invoke(cli, ["users", "add", "rep@example.com", "--role", "sdr"], input=PASSWORD + "\n")
    assert added.exit_code == 0 and "Created rep@example.com (sdr)" in added.output
    generated = runner.invoke(cli, ["users", "add", "boss@example.com", "--role", "admin", "--generate"])
    assert "Password (shown once):" in generated.output
    duplicate = runner.invoke(cli, ["users", "add", "rep@example.com", "--role", "sdr"], input=PASSWORD + "\n")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    bad_role = runner.invoke(cli, ["users", "add", "x@example.com", "--role", "boss"], input=PASSWORD + "\n")
    assert bad_role.exit_code == 2 and "'boss' is not one of 'sdr', 'marketing', 'admin'" in bad_role.output
    listed = runner.invoke(cli, ["users", "list"])
    assert "boss@example.com\tadmin" in listed.output
    token = runner.invoke(cli, ["tokens", "create", "rep@example.com", "--name", "slack"])
    assert token.exit_code == 0 and token.stdout.startswith("otk_")
    missing = runner.invoke(cli, ["tokens", "create", "ghost@example.com"])
    assert missing.exit_code == 2 and "no user ghost@example.com" in missing.output


def test_commands_refuse_an_unmigrated_database(cli: typer.Typer, isolated_home: Path) -> None:
    result = CliRunner().invoke(cli, ["queue", "list"])
    assert result.exit_code == 2 and "outreach db upgrade" in result.output


def test_queue_commands(cli: typer.Typer, isolated_home: Path, tmp_path: Path) -> None:
    url = db.database_url(Settings())
    db.upgrade(url)
    world = ReviewWorld.build(url, tmp_path)
    runner = CliRunner()
    listed = runner.invoke(cli, ["queue", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    page = json.loads(listed.stdout)
    assert page["counts"]["by_status"]["pending_review"] == 3
    table = runner.invoke(cli, ["queue", "list", "--owner", MAYA])
    assert "Acme" in table.output and "Globex" not in table.output and "1 matching" in table.output
    acme = world.draft_ids["acme"]
    shown = runner.invoke(cli, ["queue", "show", str(acme)])
    assert "hit the reports limit 3 times" in shown.output and "Limit Reached by acme-u1" in shown.output
    assert json.loads(runner.invoke(cli, ["queue", "show", str(acme), "--json"]).stdout)["summary"]["id"] == acme
    denied = runner.invoke(cli, ["queue", "approve", str(world.draft_ids["globex"]), "--as", MAYA])
    assert denied.exit_code == 1 and "assigned to" in denied.output
    stale = runner.invoke(cli, ["queue", "approve", str(acme), "--as", MAYA, "--draft-version", "99"])
    assert stale.exit_code == 1 and "changed since you opened it" in stale.output
    approved = runner.invoke(cli, ["queue", "approve", str(acme), "--as", MAYA, "--data", str(world.data_dir),
                                   "--as-of", "2026-11-20"])
    assert approved.exit_code == 0 and "Approved draft" in approved.output
    rejected = runner.invoke(cli, ["queue", "reject", str(world.draft_ids["initech"]), "--as", MAYA,
                                   "--reason", "tone", "--note", "too pushy"])
    assert rejected.exit_code == 0 and "(tone)" in rejected.output
    bad = runner.invoke(cli, ["queue", "list", "--status", "nope"])
    assert bad.exit_code == 2 and "'nope' is not one of 'all', 'pending_review'" in bad.output
    unknown = runner.invoke(cli, ["queue", "approve", str(acme), "--as", "ghost@example.com"])
    assert unknown.exit_code == 2 and "no user ghost@example.com" in unknown.output
    world.close()


def test_prepare_demo_fills_the_queue_and_resets_the_login(tmp_path: Path) -> None:
    from tests.review_world import build_data

    data_dir = tmp_path / "demo"
    build_data().write(data_dir)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}")
    first = prepare_demo(settings, data_dir, __import__("datetime").date(2026, 11, 20))
    assert first.line() == "3 drafts queued, 0 merged, 0 skipped"
    second = prepare_demo(settings, data_dir, __import__("datetime").date(2026, 11, 20))
    assert second.line() == "0 drafts queued, 3 merged, 0 skipped" and second.password != first.password
    factory = db.session_factory(db.make_engine(settings.resolved_database_url()))
    with db.transaction(factory) as session:
        # the demo login is a rep who owns queued drafts; the manager login is separate
        assert authenticate(session, first.email, second.password).role == "sdr"
        assert authenticate(session, second.admin_email, second.admin_password).role == "admin"
    assert second.pending_for_sdr >= 1


def test_names_and_titles_sign_the_owners_drafts(db_url: str) -> None:
    from outreach.review.users import senders, set_profile

    factory = db.session_factory(db.make_engine(db_url))
    with db.transaction(factory) as session:
        add_user(session, "priya@example.com", "sdr", PASSWORD, name=" Priya  Raman ", title="Account Executive")
        add_user(session, "noname@example.com", "sdr", PASSWORD)
    with db.transaction(factory) as session:
        found = senders(session)
    assert list(found) == ["priya@example.com"]  # a user without a name does not sign: the catalog's sender does
    assert found["priya@example.com"].signature == "Priya Raman, Account Executive" and found["priya@example.com"].owner
    with db.transaction(factory) as session:
        set_profile(session, "NoName@example.com", name="Sam Okafor", title="CSM")
        set_profile(session, "priya@example.com", title="")
    with db.transaction(factory) as session:
        found = senders(session)
    assert found["noname@example.com"].name == "Sam Okafor" and found["priya@example.com"].title == ""
    with pytest.raises(NotFoundError), db.transaction(factory) as session:
        set_profile(session, "ghost@example.com", name="Ghost")


def test_users_set_cli(tmp_path: Path, isolated_home: Path) -> None:
    app = typer.Typer()
    register(app, names=("db", "users"))
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    added = runner.invoke(app, ["users", "add", "rep@example.com", "--role", "sdr", "--generate",
                                "--name", "Rae Park", "--title", "Account Manager"])
    assert added.exit_code == 0, added.output
    changed = runner.invoke(app, ["users", "set", "rep@example.com", "--title", "Senior Account Manager"])
    assert changed.exit_code == 0, changed.output
    factory = db.session_factory(db.make_engine(f"sqlite:///{isolated_home / 'outreach.db'}"))
    with factory() as session:
        row = session.scalar(select(UserRow).where(UserRow.email == "rep@example.com"))
        assert row is not None and (row.name, row.title) == ("Rae Park", "Senior Account Manager")
