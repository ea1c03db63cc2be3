"""Zendesk: organisations mapped to accounts, the Incremental Ticket Export merged into tickets.jsonl, resumed
from its cursor, Retry-After honoured; and file-based tickets that name organisations by number."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from outreach.cli.main import app as cli
from outreach.engine.data import load_dataset, load_tickets
from outreach.errors import ConfigError, DataError
from outreach.integrations.zendesk import CURSOR_FILE, sync
from outreach.settings import Settings
from tests.datadir import DataDir
from tests.integrations.cassettes import cassette

SETTINGS = Settings(zendesk_subdomain="acme", zendesk_email="agent@ledgerly.example", zendesk_api_token="token")


@pytest.fixture
def root(datadir: DataDir, tmp_path: Path) -> Path:
    datadir.account("acme", domain="acme.example").active("acme")
    datadir.account("globex", domain="globex.example").active("globex")
    return datadir.write(tmp_path / "data")


def test_sync_maps_organizations_and_resumes_from_its_cursor(root: Path) -> None:
    waits: list[float] = []
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with cassette("test_zendesk", "test_sync_maps_organizations_and_resumes_from_its_cursor.yaml") as played:
        first = sync(SETTINGS, root, since=date(2026, 5, 1), sleep=waits.append, now=now)
        assert (first.organizations, first.mapped, first.pages, first.tickets, first.deleted) == (3, 2, 2, 5, 1)
        assert waits == [7.0] and not first.resumed
        assert json.loads((root / CURSOR_FILE).read_text())["cursor"] == "MTU3NjYxMzU0MC4wfHw0Njh8"
        second = sync(SETTINGS, root, sleep=waits.append, now=now)
        assert second.resumed and second.tickets == 0
    assert played.all_played
    # external_id names acme, a domain names globex; the third organisation is not a customer
    assert (root / "organizations.csv").read_text().splitlines() == [
        "zendesk_organization_id,account_id,zendesk_name", "509974,acme,Acme Corp", "509975,globex,Globex"]
    lines = [json.loads(line) for line in (root / "tickets.jsonl").read_text().splitlines()]
    zendesk = {t["id"]: t for t in lines if t.get("source") == "zendesk"}
    assert set(zendesk) == {35436, 35438, 35439}  # 35437 was deleted
    assert (zendesk[35436]["status"], zendesk[35436]["priority"]) == ("pending", "high")
    assert first.unmapped == 2  # no organisation, and an organisation no account has
    # the loader maps organisation numbers to accounts; tickets of unmapped organisations are refused clearly
    for ticket in (35438, 35439):
        del zendesk[ticket]
    (root / "tickets.jsonl").write_text("".join(json.dumps(t) + "\n" for t in zendesk.values()))
    tickets = load_dataset(root).tickets_by_account
    assert [t.id for t in tickets["acme"]] == ["35436"]


def test_sync_needs_credentials(root: Path) -> None:
    with pytest.raises(ConfigError, match="Zendesk is not configured"):
        sync(Settings(), root)
    result = CliRunner().invoke(cli, ["tickets", "sync", "--data", str(root), "--since", "someday"])
    assert result.exit_code == 2 and "Invalid value for '--since': 'someday' is not a date" in result.output


def _zendesk_ticket(ticket_id: int, organization: int | str, **fields: object) -> str:
    return json.dumps({"id": ticket_id, "organization_id": organization, "created_at": "2026-11-10T10:00:00Z",
                       "subject": "Permissions for the finance team", "status": "open", "tags": ["permissions"],
                       **fields})


def test_file_tickets_map_organizations_through_organizations_csv(root: Path) -> None:
    (root / "tickets.jsonl").write_text(_zendesk_ticket(1, 509974) + "\n" + _zendesk_ticket(2, "509975") + "\n")
    (root / "organizations.csv").write_text("zendesk_organization_id,account_id\n509974,acme\n509975,globex\n")
    dataset = load_dataset(root)
    rows = dataset.events.execute("SELECT id, account_id FROM ticket_rows ORDER BY seq").fetchall()
    assert rows == [("1", "acme"), ("2", "globex")]  # the DuckDB reader
    records = load_tickets(root / "tickets.jsonl", {"acme", "globex"},
                           organizations={"509974": "acme", "509975": "globex"})
    assert [(t.id, t.account_id) for t in records] == [("1", "acme"), ("2", "globex")]  # the Python reader
    assert [(t.id, t.account_id) for t in dataset.tickets] == [("1", "acme"), ("2", "globex")]


def test_file_tickets_map_organizations_through_an_accounts_column(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", zendesk_organization_id="509974").active("acme")
    datadir.account("globex", zendesk_organization_id="").active("globex")
    root = datadir.write(tmp_path / "data")
    (root / "tickets.jsonl").write_text(_zendesk_ticket(1, 509974) + "\n")
    assert [(t.id, t.account_id) for t in load_dataset(root).tickets] == [("1", "acme")]


@pytest.mark.parametrize(
    ("mapping", "tickets", "message"),
    [
        (None, _zendesk_ticket(1, 4242), "tickets.jsonl:1: field 'organization_id': organization 4242 is not an account"),
        ("zendesk_organization_id,account_id\n4242,nobody\n", _zendesk_ticket(1, 4242),
         "organizations.csv:2: field 'account_id': account 'nobody' is not in accounts.csv"),
        ("zendesk_organization_id,account_id\n4242,acme\n4242,globex\n", _zendesk_ticket(1, 4242),
         "organizations.csv:3: field 'zendesk_organization_id': organization 4242 is already mapped to 'acme' "
         "(organizations.csv:2)"),
        ("organization,account_id\n4242,acme\n", _zendesk_ticket(1, 4242),
         "organizations.csv:1: field 'zendesk_organization_id': required column is missing from the header"),
        ("zendesk_organization_id,account_id\n4242,\n", _zendesk_ticket(1, 4242),
         "organizations.csv:2: field 'account_id': required value is empty"),
    ],
)
def test_organization_mapping_errors_name_file_line_and_field(root: Path, mapping: str | None, tickets: str,
                                                              message: str) -> None:
    if mapping is not None:
        (root / "organizations.csv").write_text(mapping)
    (root / "tickets.jsonl").write_text(tickets + "\n")
    with pytest.raises(DataError) as caught:
        load_dataset(root)
    assert caught.value.message == f"{root}/{message}"
