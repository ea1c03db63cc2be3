"""Zendesk: ``outreach tickets sync`` keeps a data directory's tickets.jsonl and organizations.csv up to date.

It reads the organisations (``GET /api/v2/organizations.json``, cursor-paginated) and maps each to an account:
its ``external_id`` when that is an ``account_id`` of accounts.csv, else one of its ``domain_names`` when that is
an account's ``domain``. Then the Incremental Ticket Export, cursor-based
(``GET /api/v2/incremental/tickets/cursor.json``: ``start_time`` the first time, ``cursor`` after that), merges
every new or changed ticket into tickets.jsonl by id (deleted tickets leave it) and saves the cursor after each
page in ``.zendesk-sync.json`` beside it, so an interrupted sync resumes where it stopped. A 429 waits as long as
``Retry-After`` says (tenacity, the one retry layer); 5xx and connection errors are retried a few times too.

Tickets keep Zendesk's fields (``id``, ``organization_id``, ``created_at``, ``subject``, ``description``,
``status``, ``priority``, ``tags``); the loader maps ``organization_id`` to the account through
organizations.csv, so a mapping fixed later applies without syncing again. Credentials come from
``OUTREACH_ZENDESK_SUBDOMAIN``, ``OUTREACH_ZENDESK_EMAIL`` and ``OUTREACH_ZENDESK_API_TOKEN``.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from outreach.engine.data import ORGANIZATION_COLUMN, ORGANIZATIONS_FILE, json_lines
from outreach.errors import ConfigError, DataError, OutreachError
from outreach.settings import Settings

log = logging.getLogger(__name__)

CURSOR_FILE = ".zendesk-sync.json"
TICKET_FIELDS = ("id", "organization_id", "created_at", "updated_at", "subject", "description", "status", "priority",
                 "tags", "requester_id", "via")
ATTEMPTS = 5


class ZendeskError(OutreachError):
    """Zendesk refused or failed: the message says what it answered."""


class _Retry(Exception):
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class SyncReport:
    organizations: int = 0
    mapped: int = 0
    pages: int = 0
    tickets: int = 0
    deleted: int = 0
    unmapped: int = 0
    waited: float = 0.0
    resumed: bool = False

    def line(self) -> str:
        wait = f", waited {self.waited:.0f} s for rate limits" if self.waited else ""
        start = "resumed from the saved cursor" if self.resumed else "from the start time"
        return (f"{self.tickets} tickets new or changed ({self.deleted} deleted) in {self.pages} pages, {start}; "
                f"{self.mapped} of {self.organizations} organisations mapped to accounts; {self.unmapped} tickets "
                f"name no mapped organisation{wait}")


class ZendeskClient:
    """The two endpoints, with Basic API-token auth and Retry-After honoured."""

    def __init__(self, subdomain: str, email: str, token: str, *, sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base = f"https://{subdomain}.zendesk.com"
        self.http = httpx.Client(auth=(f"{email}/token", token), timeout=30.0, transport=transport,
                                 headers={"Accept": "application/json", "User-Agent": "outreach-zendesk-sync/1"})
        self.sleep = sleep
        self.waited = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> ZendeskClient:
        if not (settings.zendesk_subdomain and settings.zendesk_email and settings.zendesk_api_token):
            raise ConfigError("Zendesk is not configured",
                              hint="set OUTREACH_ZENDESK_SUBDOMAIN, OUTREACH_ZENDESK_EMAIL and "
                              "OUTREACH_ZENDESK_API_TOKEN (docs/integrations.md)")
        return cls(settings.zendesk_subdomain, settings.zendesk_email,
                   settings.zendesk_api_token.get_secret_value(), **options)

    def get(self, url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            seconds = error.retry_after if isinstance(error, _Retry) and error.retry_after is not None \
                else min(2.0 ** state.attempt_number, 60.0)
            self.waited += seconds
            return float(seconds)

        retrying = Retrying(stop=stop_after_attempt(ATTEMPTS), wait=wait, sleep=self.sleep, reraise=True,
                            retry=retry_if_exception(lambda e: isinstance(e, _Retry)))
        try:
            return retrying(self._get, url, params)
        except _Retry as error:
            raise ZendeskError(f"Zendesk kept failing: {error}", hint="try again later; the sync resumes "
                               "from its saved cursor") from None

    def _get(self, url: str, params: dict[str, Any] | None) -> dict[str, Any]:
        target = url if url.startswith("https://") else self.base + url
        try:
            response = self.http.get(target, params=params)
        except httpx.HTTPError as error:
            raise _Retry(f"{target}: {error}", None) from None
        if response.status_code == 429 or response.status_code >= 500:
            after = response.headers.get("Retry-After")
            raise _Retry(f"{response.status_code} from {target}",
                         float(after) if after and after.replace(".", "", 1).isdigit() else None)
        if response.status_code in (401, 403):
            raise ZendeskError(f"Zendesk answered {response.status_code}: check the API token and the agent email",
                               hint="OUTREACH_ZENDESK_EMAIL is the agent's address; the token is under Admin → "
                               "Apps and integrations → Zendesk API")
        if response.status_code != 200:
            raise ZendeskError(f"Zendesk answered {response.status_code} for {target}: {response.text[:200]}")
        body = response.json()
        if not isinstance(body, dict):
            raise ZendeskError(f"Zendesk answered {target} with something that is not a JSON object")
        return body

    def organizations(self) -> Iterator[dict[str, Any]]:
        url: str = "/api/v2/organizations.json"
        params: dict[str, Any] | None = {"page[size]": 100}
        while True:
            page = self.get(url, params)
            yield from page.get("organizations") or []
            meta, links = page.get("meta") or {}, page.get("links") or {}
            if not meta.get("has_more") or not links.get("next"):
                return
            url, params = str(links["next"]), None

    def close(self) -> None:
        self.http.close()


def _accounts(data_dir: Path) -> tuple[set[str], dict[str, str]]:
    """Account ids, and account id by domain, from accounts.csv."""
    path = data_dir / "accounts.csv"
    if not path.is_file():
        raise DataError(path, "file not found", hint="tickets sync maps Zendesk organisations to these accounts")
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline=""))
    ids: set[str] = set()
    domains: dict[str, str] = {}
    for row in reader:
        account = (row.get("account_id") or "").strip()
        if account:
            ids.add(account)
            domain = (row.get("domain") or "").strip().lower()
            if domain:
                domains.setdefault(domain, account)
    return ids, domains


def _write_atomically(path: Path, data: bytes) -> None:
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(name, path)


def sync_organizations(client: ZendeskClient, data_dir: Path, report: SyncReport) -> dict[str, str]:
    """Write organizations.csv: Zendesk's organisations matched to accounts, plus rows someone wrote by hand
    for organisations Zendesk's data does not match."""
    ids, domains = _accounts(data_dir)
    mapping: dict[str, tuple[str, str]] = {}
    for organization in client.organizations():
        report.organizations += 1
        org_id = str(organization.get("id"))
        external = str(organization.get("external_id") or "").strip()
        account = external if external in ids else next(
            (domains[d.lower()] for d in organization.get("domain_names") or [] if d.lower() in domains), None)
        if account:
            mapping[org_id] = (account, str(organization.get("name") or ""))
    report.mapped = len(mapping)
    path = data_dir / ORGANIZATIONS_FILE
    if path.is_file():
        for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")):
            org_id = (row.get(ORGANIZATION_COLUMN) or "").strip()
            if org_id and org_id not in mapping and (row.get("account_id") or "").strip():
                mapping[org_id] = (row["account_id"].strip(), (row.get("zendesk_name") or "").strip())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([ORGANIZATION_COLUMN, "account_id", "zendesk_name"])
    for org_id in sorted(mapping, key=lambda value: (len(value), value)):
        writer.writerow([org_id, *mapping[org_id]])
    _write_atomically(path, out.getvalue().encode())
    return {org: account for org, (account, _) in mapping.items()}


def _ticket_line(ticket: dict[str, Any]) -> dict[str, Any]:
    line = {name: ticket.get(name) for name in TICKET_FIELDS if ticket.get(name) is not None}
    line["priority"] = ticket.get("priority") or "normal"
    line["source"] = "zendesk"
    return line


def sync_tickets(client: ZendeskClient, data_dir: Path, report: SyncReport, *, since: date | None,
                 organizations: dict[str, str], now: datetime) -> None:
    """Merge the Incremental Ticket Export into tickets.jsonl, saving the cursor after every page."""
    tickets_path, cursor_path = data_dir / "tickets.jsonl", data_dir / CURSOR_FILE
    tickets: dict[str, dict[str, Any]] = {}
    if tickets_path.is_file():
        for _, doc in json_lines(tickets_path):
            if isinstance(doc, dict) and doc.get("id") not in (None, ""):
                tickets[str(doc["id"])] = doc
    state = orjson.loads(cursor_path.read_bytes()) if cursor_path.is_file() else {}
    params: dict[str, Any] | None
    if state.get("cursor"):
        params = {"cursor": state["cursor"]}
        report.resumed = True
    else:
        start = since or (now - timedelta(days=180)).date()
        start_time = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())
        # Zendesk refuses a start time less than a minute old.
        params = {"start_time": min(start_time, int(now.timestamp()) - 60)}
    url = "/api/v2/incremental/tickets/cursor.json"
    while True:
        page = client.get(url, params)
        report.pages += 1
        for ticket in page.get("tickets") or []:
            key = str(ticket.get("id"))
            if ticket.get("status") == "deleted":
                report.deleted += int(tickets.pop(key, None) is not None)
                continue
            tickets[key] = _ticket_line(ticket)
            report.tickets += 1
        _write_atomically(tickets_path, b"".join(orjson.dumps(t) + b"\n" for t in tickets.values()))
        cursor = page.get("after_cursor")
        if cursor:
            _write_atomically(cursor_path, orjson.dumps({"cursor": cursor, "synced_at": now.isoformat()}))
        if page.get("end_of_stream") or not cursor:
            break
        url, params = str(page.get("after_url") or url), None if page.get("after_url") else {"cursor": cursor}
    report.unmapped = sum(
        1 for t in tickets.values()
        if not t.get("account_id") and str(t.get("organization_id")) not in organizations
    )


def sync(settings: Settings, data_dir: Path, *, since: date | None = None, full: bool = False,
         sleep: Callable[[float], None] = time.sleep, now: datetime | None = None) -> SyncReport:
    """``outreach tickets sync``: organisations, then tickets since the saved cursor (``full``: from ``since``)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(data_dir, "not a directory", hint="pass --data DIR pointing at a data directory")
    now = now or datetime.now(UTC)
    if full and (data_dir / CURSOR_FILE).exists():
        (data_dir / CURSOR_FILE).unlink()
    client = ZendeskClient.from_settings(settings, sleep=sleep)
    report = SyncReport()
    try:
        organizations = sync_organizations(client, data_dir, report)
        sync_tickets(client, data_dir, report, since=since, organizations=organizations, now=now)
    finally:
        report.waited = client.waited
        client.close()
    return report
