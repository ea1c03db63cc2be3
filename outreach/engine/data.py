"""The data contract (v1): reading a data directory into typed records.

A data directory holds ``accounts.csv``, ``events.jsonl`` (or ``events.parquet`` / ``events.csv``),
``tickets.jsonl`` and ``catalog.yaml``; docs/data-formats.md describes each field. Accounts, tickets and the
catalog are small and become pydantic models. Events can be tens of millions of rows, so they are loaded into
an in-memory DuckDB table and only ever aggregated there.

Every problem is reported as a :class:`~outreach.errors.DataError` naming the file, the line or row and the
field. Unknown extra columns and properties are kept, never rejected.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import logging
import math
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime
from itertools import compress
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import orjson
from pydantic import BaseModel, ConfigDict, Field

from outreach.engine.catalog import Catalog, load_catalog
from outreach.engine.rules import EventNames
from outreach.engine.tables import (
    BOOL,
    DATE,
    FLOAT,
    INT,
    TEXT,
    TEXTS,
    TIME,
    create_table,
    sql_text,
    sql_texts,
)
from outreach.engine.values import (
    EMAIL_FAST_FORM,
    MAX_EMAIL_LENGTH,
    MAX_LOCAL_PART_LENGTH,
    SPECIAL_USE_DOMAINS,
    email_problem,
)
from outreach.errors import DataError, read_input

logger = logging.getLogger(__name__)

TicketStatus = Literal["new", "open", "pending", "hold", "solved", "closed"]
OPEN_TICKET_STATUSES: tuple[TicketStatus, ...] = ("new", "open", "pending", "hold")
TicketPriority = Literal["low", "normal", "high", "urgent"]

ACCOUNT_REQUIRED = ("account_id", "name", "plan")
ACCOUNTS_HINT = "a data directory needs accounts.csv: a header, then one row per account (docs/data-formats.md)"


class Account(BaseModel):
    """One customer account (a row of accounts.csv)."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    name: str
    plan: str
    domain: str | None = None
    seats_purchased: int | None = None
    mrr: float | None = None
    currency: str = "USD"
    contract_start: date | None = None
    renewal_date: date | None = None
    activated_at: date | None = None
    employees_at_contract: int | None = None
    employees_now: int | None = None
    owner_email: str | None = None
    champion_name: str | None = None
    champion_email: str | None = None
    champion_user_id: str | None = None
    timezone: str | None = None
    nps: int | None = None
    cs_veto: bool = False
    cs_veto_reason: str | None = None
    addons: tuple[str, ...] = Field(default=(), description="Add-on ids the account already owns.")
    last_contacted_at: date | None = Field(default=None, description="Last expansion email sent.")
    extra: dict[str, str] = Field(default_factory=dict, description="Columns the contract does not name.")


class Ticket(BaseModel):
    """One support ticket (a line of tickets.jsonl), Zendesk-style."""

    model_config = ConfigDict(frozen=True)

    id: str
    account_id: str
    created_at: datetime
    subject: str = ""
    description: str = ""
    status: TicketStatus = "open"
    priority: TicketPriority = "normal"
    tags: tuple[str, ...] = ()
    solved_at: datetime | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_TICKET_STATUSES


class Dataset:
    """Everything read from one data directory.

    ``events`` is a DuckDB connection holding the engine's inputs: the ``events`` view (columns line,
    message_id, event, user_id, ts, account_id, props) over the table ``event_rows``, and ``account_rows`` and
    ``ticket_rows`` (one typed row per account and ticket, in file order). The engine reads only those tables.

    ``accounts`` and ``tickets`` are the same files as pydantic records, built by the Python readers the first
    time someone asks (drafting, the queue, the web app): ``outreach explain`` never needs them, and building
    300k records cost more than deciding them (docs/BENCHMARKS.md). Both come from the bytes read at load time,
    so they always match the tables.
    """

    def __init__(
        self,
        root: Path,
        catalog: Catalog,
        events: duckdb.DuckDBPyConnection,
        events_file: Path | None,
        event_count: int,
        accounts: list[Account] | Callable[[], list[Account]],
        tickets: list[Ticket] | Callable[[set[str]], list[Ticket]],
    ) -> None:
        """``accounts`` and ``tickets`` are the records, or how to read them when first needed."""
        self.root = root
        self.catalog = catalog
        self.events = events
        self.events_file = events_file
        self.event_count = event_count
        self._accounts = accounts if isinstance(accounts, list) else None
        self._tickets = tickets if isinstance(tickets, list) else None
        self._read_accounts = accounts if callable(accounts) else list
        self._read_tickets = tickets if callable(tickets) else lambda _: []
        self._tickets_by_account: dict[str, list[Ticket]] | None = None
        self._lock = threading.RLock()  # web request threads may ask at once
        self.checked_numbers: set[tuple[tuple[str, str, bool], ...]] = set()  # see check_event_numbers
        self.wrong_number_line: int | None = None  # found when the events were read (default event names)
        # None: every event row is a line of events_file; else only rows up to this line are (the rest come from
        # the event store or a narrowed copy, and have no line there to name)
        self.file_last_line: int | None = None

    @property
    def accounts(self) -> list[Account]:
        """accounts.csv as records, in file order."""
        with self._lock:
            if self._accounts is None:
                with paused_gc():
                    self._accounts = self._read_accounts()
            return self._accounts

    @property
    def tickets(self) -> list[Ticket]:
        """tickets.jsonl as records, in file order."""
        with self._lock:
            if self._tickets is None:
                account_ids = {account.account_id for account in self.accounts}
                with paused_gc():
                    self._tickets = self._read_tickets(account_ids)
            return self._tickets

    @property
    def tickets_by_account(self) -> dict[str, list[Ticket]]:
        with self._lock:
            if self._tickets_by_account is None:
                by_account: dict[str, list[Ticket]] = {}
                for ticket in self.tickets:
                    by_account.setdefault(ticket.account_id, []).append(ticket)
                self._tickets_by_account = by_account
            return self._tickets_by_account

    def account(self, account_id: str) -> Account:
        for account in self.accounts:
            if account.account_id == account_id:
                return account
        from outreach.errors import NotFoundError

        raise NotFoundError(
            f"no account '{account_id}' in {self.root / 'accounts.csv'}",
            hint="list accounts with `outreach explain --data DIR`",
        )


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small frozen records.

    Loading and deciding 100k accounts allocates millions of objects without cycles; each full GC pass
    walks them all and frees nothing. Pausing it for the batch cut decide() time by a third in
    benchmarks/bench_signals.py. Reference counting still frees memory as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ---------------------------------------------------------------------------------------------- parsing


def parse_date(value: str, path: Path, line: int, field_name: str) -> date:
    try:
        if "T" in value or " " in value.strip():
            return parse_datetime(value, path, line, field_name).date()
        return date.fromisoformat(value.strip())
    except ValueError:
        raise DataError(
            path, f"'{value}' is not a date (use YYYY-MM-DD)", line=line, field=field_name
        ) from None


def parse_datetime(value: str, path: Path, line: int, field_name: str) -> datetime:
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(
            path,
            f"'{value}' is not an ISO 8601 timestamp (e.g. 2026-11-01T10:00:00Z)",
            line=line,
            field=field_name,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-05:00 is past the last representable instant
        raise DataError(
            path, f"'{value}' is out of range (after 9999-12-31 in UTC)", line=line, field=field_name
        ) from None


_MAX_INT = 2**63 - 1  # the engine keeps whole numbers as 64-bit integers


def _parse_int(
    value: str, path: Path, line: int, field_name: str, *, low: int = 0, high: int = _MAX_INT
) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise DataError(path, f"'{value}' is not a whole number", line=line, field=field_name) from None
    if number < low or number > high:
        bounds = f"{low}–{high}" if high != _MAX_INT else f">= {low}, at most {high}"
        raise DataError(path, f"{number} is out of range ({bounds})", line=line, field=field_name)
    return number


def _parse_float(value: str, path: Path, line: int, field_name: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise DataError(path, f"'{value}' is not a number", line=line, field=field_name) from None
    if not math.isfinite(number):
        raise DataError(path, f"'{value}' is not a finite number", line=line, field=field_name)
    if number < 0:
        raise DataError(path, f"{number} must not be negative", line=line, field=field_name)
    return number


def _parse_bool(value: str, path: Path, line: int, field_name: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "yes", "1", "y", "t"):
        return True
    if text in ("false", "no", "0", "n", "f", ""):
        return False
    raise DataError(path, f"'{value}' is not true/false", line=line, field=field_name)


# Every Account field but ``extra``, in declaration order: the columns load_accounts reads.
_ACCOUNT_COLUMNS = (
    "account_id",
    "name",
    "plan",
    "domain",
    "seats_purchased",
    "mrr",
    "currency",
    "contract_start",
    "renewal_date",
    "activated_at",
    "employees_at_contract",
    "employees_now",
    "owner_email",
    "champion_name",
    "champion_email",
    "champion_user_id",
    "timezone",
    "nps",
    "cs_veto",
    "cs_veto_reason",
    "addons",
    "last_contacted_at",
)
# Each name maps to itself: tickets share one string per status instead of one per ticket.
_TICKET_STATUSES = {name: name for name in ("new", "open", "pending", "hold", "solved", "closed")}
_TICKET_PRIORITIES = {name: name for name in ("low", "normal", "high", "urgent")}

_Model = TypeVar("_Model", bound=BaseModel)
_Value = TypeVar("_Value")
_new_object = object.__new__
_set_slot = object.__setattr__


def _trusted(model: type[_Model], values: dict[str, Any], fields_set: set[str]) -> _Model:
    """Build a model from values that were already validated, one entry per field in declaration order.

    What ``model_construct`` does for these plain models (no aliases, no extra='allow', no private attributes,
    no post-init hook), minus its per-field alias and default lookups: validating a record costs ~3 µs,
    ``model_construct`` ~7 µs, this ~1 µs. tests/test_data.py checks the result equals a validated model.

    Records of one file with the same fields set share one ``fields_set`` (~700 bytes each otherwise, a third
    of a ticket's memory): frozen records never change it and pydantic copies it before ``model_copy`` updates.
    """
    record = _new_object(model)
    _set_slot(record, "__dict__", values)
    _set_slot(record, "__pydantic_fields_set__", fields_set)
    _set_slot(record, "__pydantic_extra__", None)
    _set_slot(record, "__pydantic_private__", None)
    return record


def _parsed(
    memo: dict[str, _Value],
    text: str,
    parse: Callable[[str, Path, int, str], _Value],
    path: Path,
    line: int,
    field_name: str,
) -> _Value | None:
    """``parse`` of a non-empty ``text``, remembered per file: a text that fails raises and is never kept."""
    if not text:
        return None
    value = memo.get(text)
    if value is None:
        value = memo[text] = parse(text, path, line, field_name)
    return value


def load_accounts(path: Path, catalog: Catalog, data: bytes | None = None) -> list[Account]:
    """Read accounts.csv (or ``data``, its bytes read earlier). Row numbers in errors are file lines (the header
    is line 1)."""
    if data is None:
        data = read_input(path, missing_hint=ACCOUNTS_HINT)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(path, f"not UTF-8 text (byte {error.start})", line=line) from None
    with io.StringIO(text, newline="") as handle, paused_gc():
        reader = csv.reader(handle)
        rows = _csv_rows(reader, path)
        header = next(rows, None) or []
        if not header:
            raise DataError(
                path, "the file is empty", hint="its first line is the header: account_id,name,plan,…"
            )
        for column in ACCOUNT_REQUIRED:
            if column not in header:
                raise DataError(path, "required column is missing from the header", line=1, field=column)
        width = len(header)
        # A repeated column name keeps its last value, as csv.DictReader's dict did; a column the header
        # lacks reads as the empty string appended at index ``width``.
        position = {name: index for index, name in enumerate(header)}
        row_values = itemgetter(*(position.get(name, width) for name in _ACCOUNT_COLUMNS))
        known = set(ACCOUNT_REQUIRED) | set(Account.model_fields)
        extra_columns = [(name, position[name]) for name in dict.fromkeys(header) if name not in known]
        accounts: list[Account] = []
        seen: set[str] = set()
        plan_ids = catalog.plan_ids()
        addon_ids = {addon.id for addon in catalog.addons}
        zones: set[str] = set()  # time zone names already checked
        counts: dict[str, int] = {}  # parsed texts; a falsy value (0) is simply parsed again
        dates: dict[str, date] = {}
        amounts: dict[str, float] = {}
        field_sets: dict[tuple[str, ...], set[str]] = {}
        for row in rows:
            if not row:  # a blank line (csv.DictReader skipped these too)
                continue
            line = reader.line_num
            if len(row) > width:
                raise DataError(path, "row has more values than the header has columns", line=line)
            values = list(map(str.strip, row))
            values.extend([""] * (width + 1 - len(values)))
            raw = row_values(values)
            (
                account_id,
                name,
                plan,
                domain,
                seats_text,
                mrr_text,
                currency,
                start_text,
                renewal_text,
                activated_text,
                employees_then_text,
                employees_now_text,
                owner_email,
                champion_name,
                champion_email,
                champion_user_id,
                zone,
                nps_text,
                veto_text,
                veto_reason,
                addons_text,
                contacted_text,
            ) = raw
            if not account_id:
                raise DataError(path, "required value is empty", line=line, field="account_id")
            if not name:
                raise DataError(path, "required value is empty", line=line, field="name")
            if not plan:
                raise DataError(path, "required value is empty", line=line, field="plan")
            if account_id in seen:
                raise DataError(path, f"duplicate account_id '{account_id}'", line=line, field="account_id")
            seen.add(account_id)
            if plan not in plan_ids:
                raise DataError(
                    path,
                    f"unknown plan id '{plan}' (catalog plans: {', '.join(sorted(plan_ids))})",
                    line=line,
                    field="plan",
                    hint="add the plan to catalog.yaml or fix the account's plan",
                )
            # Checked in the order errors have always been reported: numbers, dates, mrr, nps, add-ons, ...
            # Each distinct text is parsed once per file (dates, seat counts and prices repeat across rows);
            # a text that fails is never remembered, so errors still come from the parser, in this order.
            seats = _parsed(counts, seats_text, _parse_int, path, line, "seats_purchased")
            employees_then = _parsed(
                counts, employees_then_text, _parse_int, path, line, "employees_at_contract"
            )
            employees_now = _parsed(counts, employees_now_text, _parse_int, path, line, "employees_now")
            start = _parsed(dates, start_text, parse_date, path, line, "contract_start")
            renewal = _parsed(dates, renewal_text, parse_date, path, line, "renewal_date")
            activated = _parsed(dates, activated_text, parse_date, path, line, "activated_at")
            contacted = _parsed(dates, contacted_text, parse_date, path, line, "last_contacted_at")
            mrr = _parsed(amounts, mrr_text, _parse_float, path, line, "mrr")
            nps = _parse_int(nps_text, path, line, "nps", low=0, high=10) if nps_text else None
            addons: tuple[str, ...] = ()
            if addons_text:
                addons = tuple(a.strip() for a in addons_text.replace(",", ";").split(";") if a.strip())
                for addon_id in addons:
                    if addon_id not in addon_ids:
                        raise DataError(path, f"unknown add-on id '{addon_id}'", line=line, field="addons")
            veto = _parse_bool(veto_text, path, line, "cs_veto") if veto_text else False
            if zone and zone not in zones:
                try:
                    ZoneInfo(zone)
                except (ZoneInfoNotFoundError, ValueError):
                    raise DataError(
                        path,
                        f"'{zone}' is not an IANA time zone (e.g. Europe/Berlin)",
                        line=line,
                        field="timezone",
                    ) from None
                zones.add(zone)
            for field_name, address in (("owner_email", owner_email), ("champion_email", champion_email)):
                if address and (problem := email_problem(address)):
                    raise DataError(path, problem, line=line, field=field_name)
            present = tuple(compress(_ACCOUNT_COLUMNS, raw))  # the fields Account(**data) was given
            fields_set = field_sets.get(present)
            if fields_set is None:
                fields_set = field_sets[present] = {*present, "extra"}
            accounts.append(
                _trusted(
                    Account,
                    {
                        "account_id": account_id,
                        "name": name,
                        "plan": plan,
                        "domain": domain or None,
                        "seats_purchased": seats,
                        "mrr": mrr,
                        "currency": currency or "USD",
                        "contract_start": start,
                        "renewal_date": renewal,
                        "activated_at": activated,
                        "employees_at_contract": employees_then,
                        "employees_now": employees_now,
                        "owner_email": owner_email or None,
                        "champion_name": champion_name or None,
                        "champion_email": champion_email or None,
                        "champion_user_id": champion_user_id or None,
                        "timezone": zone or None,
                        "nps": nps,
                        "cs_veto": veto,
                        "cs_veto_reason": veto_reason or None,
                        "addons": addons,
                        "last_contacted_at": contacted,
                        "extra": {column: values[i] for column, i in extra_columns if values[i]},
                    },
                    fields_set,
                )
            )
    if not accounts:
        raise DataError(path, "no accounts: the file has a header but no rows", hint=ACCOUNTS_HINT)
    return accounts


def _csv_rows(reader: Any, path: Path) -> Iterator[list[str]]:
    """The reader's rows; a line the csv module refuses (a field over its size limit) is a DataError."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise DataError(path, f"unreadable CSV ({error})", line=reader.line_num) from None
        yield row


def json_lines(path: Path, data: bytes | None = None) -> Iterator[tuple[int, Any]]:
    """Each non-blank line of a JSON Lines file (or of ``data``, its bytes) as (line number, parsed value); a
    line that is not JSON stops with a DataError naming the file and line. Shared by every JSONL reader
    (tickets, events, outcomes)."""
    try:
        handle = path.open("rb") if data is None else io.BytesIO(data)
    except OSError as error:
        raise DataError.unreadable(path, error) from None
    with handle:
        for line, raw in enumerate(handle, start=1):
            if raw.strip():
                yield line, _strict_json(path, line, raw)


def _utc_timestamp(value: Any, path: Path, line: int, field_name: str) -> datetime:
    """parse_datetime(str(value), ...), with a shortcut for the usual form 2026-11-01T10:00:00Z."""
    if type(value) is str and len(value) == 20 and value[19] == "Z" and value.find("Z") == 19:
        # One "Z", at the end: parse_datetime would parse "...+00:00", which gives the same UTC datetime.
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # parse_datetime raises the error
    return parse_datetime(str(value), path, line, field_name)


def load_tickets(
    path: Path, account_ids: set[str], data: bytes | None = None, organizations: dict[str, str] | None = None
) -> list[Ticket]:
    """Read tickets.jsonl (optional file; or ``data``, its bytes read earlier). ``organization_id`` is accepted
    for ``account_id``: through ``organizations`` (Zendesk organisation id -> account id, see
    :func:`organization_accounts`) when it names the organisation, else as the account id itself."""
    organizations = organizations or {}
    if data is None:
        if not path.exists():
            return []
        data = read_input(path)
    tickets: list[Ticket] = []
    first_lines: dict[str, int] = {}  # ticket id -> the line that gave it first
    known = set(Ticket.model_fields) | {"organization_id"}
    ticket_fields = set(Ticket.model_fields)  # Ticket(...) was always given every field; one set for all
    with paused_gc():
        for line, raw in json_lines(path, data):
            if not isinstance(raw, dict):
                raise DataError(path, "each line must be a JSON object", line=line)
            get = raw.get
            ticket_id = get("id")
            if ticket_id in (None, ""):
                raise DataError(path, "required value is missing", line=line, field="id")
            ticket_key = str(ticket_id)
            if first_lines.setdefault(ticket_key, line) != line:
                raise DataError(
                    path,
                    f"duplicate ticket id '{ticket_key}' (first on line {first_lines[ticket_key]})",
                    line=line,
                    field="id",
                )
            account_id = get("account_id")
            organization = None
            if not account_id and (organization := get("organization_id")) not in (None, ""):
                account_id = organizations.get(str(organization), organization)
            if not account_id:
                raise DataError(path, "required value is missing", line=line, field="account_id")
            account = str(account_id)
            if account not in account_ids:
                if organization is not None and str(organization) not in organizations:
                    raise DataError(
                        path, f"organization {organization} is not an account", line=line, field="organization_id",
                        hint="map Zendesk organisations to accounts in organizations.csv (zendesk_organization_id,"
                        "account_id) or a zendesk_organization_id column in accounts.csv",
                    )
                raise DataError(
                    path, f"account '{account_id}' is not in accounts.csv", line=line, field="account_id"
                )
            created_at = get("created_at")
            if not created_at:
                raise DataError(path, "required value is missing", line=line, field="created_at")
            status = str(get("status") or "open").lower()
            if (known_status := _TICKET_STATUSES.get(status)) is None:
                raise DataError(
                    path,
                    f"'{status}' is not a ticket status (new, open, pending, hold, solved, closed)",
                    line=line,
                    field="status",
                )
            priority = str(get("priority") or "normal").lower()
            if (known_priority := _TICKET_PRIORITIES.get(priority)) is None:
                raise DataError(
                    path,
                    f"'{priority}' is not a priority (low, normal, high, urgent)",
                    line=line,
                    field="priority",
                )
            tags = get("tags") or []
            if isinstance(tags, str):
                tags = [tag for tag in tags.replace(",", " ").split() if tag]
            if not isinstance(tags, list):
                raise DataError(path, "tags must be a list of strings", line=line, field="tags")
            created = _utc_timestamp(created_at, path, line, "created_at")
            solved_at = get("solved_at")
            solved = _utc_timestamp(solved_at, path, line, "solved_at") if solved_at else None
            tickets.append(
                _trusted(
                    Ticket,
                    {
                        "id": ticket_key,
                        "account_id": account,
                        "created_at": created,
                        "subject": str(get("subject") or ""),
                        "description": str(get("description") or ""),
                        "status": known_status,
                        "priority": known_priority,
                        "tags": tuple(map(str.lower, map(str, tags))),
                        "solved_at": solved,
                        "extra": {}
                        if raw.keys() <= known
                        else {k: v for k, v in raw.items() if k not in known},
                    },
                    ticket_fields,
                )
            )
    return tickets


# ---------------------------------------------------------------------------------------------- engine tables
#
# The engine reads accounts and tickets as the DuckDB tables ``account_rows`` and ``ticket_rows``. DuckDB fills
# them straight from the files when every value is in a form where its parsing provably equals the Python
# readers' (plain CSV without quotes, ISO dates, ASCII tags, ...). Anything else - and every error - goes
# through load_accounts / load_tickets, which name the exact line and field; their records then fill the
# same tables. tests/test_data.py checks both ways give the same rows.

# Every character str.strip() removes (str.isspace()): trim(value, this) in DuckDB strips what Python does.
STRIPPED = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_STRIPPED_CLASS = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in STRIPPED) + "]"  # the same, for RE2
_LINE_ONLY = b"\x1f"  # DuckDB's CSV reader cuts lines at this delimiter: one the file must not hold
_TRUE_TEXTS = ("true", "yes", "1", "y", "t")
_FALSE_TEXTS = ("false", "no", "0", "n", "f")

ACCOUNT_TABLE = {
    "ord": INT, "account_id": TEXT, "name": TEXT, "plan": TEXT, "domain": TEXT, "seats_purchased": INT,
    "mrr": FLOAT, "currency": TEXT, "contract_start": DATE, "renewal_date": DATE, "activated_at": DATE,
    "employees_at_contract": INT, "employees_now": INT, "owner_email": TEXT, "champion_name": TEXT,
    "champion_email": TEXT, "champion_user_id": TEXT, "timezone": TEXT, "nps": INT, "cs_veto": BOOL,
    "cs_veto_reason": TEXT, "addons": TEXTS, "last_contacted_at": DATE,
}  # fmt: skip
TICKET_TABLE = {
    "id": TEXT, "account_id": TEXT, "created_at": TIME, "subject": TEXT, "description": TEXT,
    "status": TEXT, "priority": TEXT, "tags": TEXTS,
}  # fmt: skip

_INT_COLUMNS = ("seats_purchased", "employees_at_contract", "employees_now")
_DATE_COLUMNS = ("contract_start", "renewal_date", "activated_at", "last_contacted_at")
# What the fast path accepts; Python's int(), float() and date.fromisoformat() read these the same way.
_INT_FORM = "[0-9]{1,18}"
_FLOAT_FORM = r"[0-9]{1,15}(\.[0-9]{1,15})?"
_DATE_FORM = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIMESTAMP_FORM = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?"
)


def _account_rows_from_records(con: duckdb.DuckDBPyConnection, accounts: list[Account]) -> None:
    fields = itemgetter(*list(ACCOUNT_TABLE)[1:])
    rows = [(position, *fields(a.__dict__)) for position, a in enumerate(accounts)]
    create_table(con, "account_rows", ACCOUNT_TABLE, rows, temporary=False)  # add-on tuples become lists


def _ticket_rows_from_records(con: duckdb.DuckDBPyConnection, tickets: list[Ticket]) -> None:
    rows = [
        (t.id, t.account_id, t.created_at.replace(tzinfo=None), t.subject, t.description, t.status, t.priority,
         t.tags)
        for t in tickets
    ]  # fmt: skip
    create_table(con, "ticket_table", TICKET_TABLE, rows, temporary=False)
    con.execute(_TICKET_VIEW)


# A table keeps the order rows were inserted in (the file's), so a ticket's position is its rowid.
_TICKET_VIEW = "CREATE OR REPLACE VIEW ticket_rows AS SELECT rowid AS seq, * FROM ticket_table"


def email_fast_form_sql(column: str) -> str:
    """SQL for :func:`outreach.engine.values.email_fast_form` of a text column."""
    return (
        f"(regexp_full_match({column}, {sql_text(EMAIL_FAST_FORM)}) AND length({column}) <= {MAX_EMAIL_LENGTH} "
        f"AND length(split_part({column}, '@', 1)) <= {MAX_LOCAL_PART_LENGTH} "
        f"AND NOT contains(split_part({column}, '@', 2), '--') "
        f"AND NOT list_contains({sql_texts(SPECIAL_USE_DOMAINS)}, lower(regexp_extract({column}, '[.]([A-Za-z]+)$', 1))))"
    )


def _accounts_in_duckdb(con: duckdb.DuckDBPyConnection, path: Path, data: bytes, catalog: Catalog) -> bool:
    with duckdb_source(path) as source:
        return _typed_accounts(con, source, data, catalog)


def _typed_accounts(con: duckdb.DuckDBPyConnection, source: str, data: bytes, catalog: Catalog) -> bool:
    """Fill ``account_rows`` straight from accounts.csv; False (nothing written) when the file holds anything
    this path leaves to :func:`load_accounts`: quotes or a carriage return outside a CRLF line end (the csv
    module's rules), a repeated column, a value in an unusual form, or an error.

    Without quotes and lone carriage returns, the csv module splits each line at every comma and nothing
    else, so DuckDB splits the lines itself: cheaper than its CSV reader, and short rows pad with empty values
    as in Python. DuckDB's CSV reader only cuts the file into lines (no delimiter, no quotes), in parallel;
    reading the whole file as one text and splitting that took three times the CPU and twice the memory.
    """
    if b'"' in data or b"\x00" in data or _LINE_ONLY in data or data.count(b"\r") != data.count(b"\r\n"):
        return False
    try:
        header = data.partition(b"\n")[0].decode("utf-8-sig").removesuffix("\r").split(",")
    except UnicodeDecodeError:
        return False
    if len(set(header)) != len(header) or not set(ACCOUNT_REQUIRED) <= set(header):
        return False
    position = {name: index for index, name in enumerate(header)}

    def text(name: str) -> str:
        if name not in position:
            return "''"
        cell = f"coalesce(cells[{position[name] + 1}], '')"
        return (
            f"CASE WHEN padded THEN trim({cell}, $stripped) ELSE {cell} END"  # trim costs: only when needed
        )

    addons = "list_filter(list_transform(string_split(replace(addons, ',', ';'), ';'), lambda a: trim(a, $stripped)), lambda a: a <> '')"
    unusual = " OR ".join(
        [
            f"long_line OR len(cells) > {len(header)} OR account_id = '' OR name = '' OR plan = ''",
            "NOT list_contains($plans, plan)",
            *(f"({c} <> '' AND NOT regexp_full_match({c}, '{_INT_FORM}'))" for c in _INT_COLUMNS),
            *(
                f"({c} <> '' AND NOT (regexp_full_match({c}, '{_DATE_FORM}') AND {c} >= '0001' "
                f"AND TRY_CAST({c} AS DATE) IS NOT NULL))"
                for c in _DATE_COLUMNS
            ),
            f"(mrr <> '' AND NOT regexp_full_match(mrr, '{_FLOAT_FORM}'))",
            "(nps <> '' AND NOT (regexp_full_match(nps, '[0-9]{1,2}') AND TRY_CAST(nps AS INTEGER) <= 10))",
            "(cs_veto <> '' AND NOT (regexp_full_match(cs_veto, '[A-Za-z0-9]+') "
            "AND list_contains($booleans, lower(cs_veto))))",
            f"(addons <> '' AND len(list_filter({addons}, lambda a: NOT list_contains($addons, a))) > 0)",
            *(f"({c} <> '' AND NOT {email_fast_form_sql(c)})" for c in ("owner_email", "champion_email")),
        ]
    )
    try:
        # The non-blank lines after the header, in file order: a line's position is its rowid. A line ends in at
        # most one CR (checked above); dropping it with rtrim cost three times the read of the lines.
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE account_lines AS
            SELECT line FROM (
                SELECT CASE WHEN ends_with(line, chr(13)) THEN left(line, -1) ELSE line END AS line
                FROM read_csv($path, columns={{'line': 'VARCHAR'}}, header=true, auto_detect=false,
                              delim={sql_text(_LINE_ONLY.decode())}, quote='', escape='', strict_mode=false,
                              max_line_size={2 * csv.field_size_limit() + 1024})
            ) WHERE line <> ''
            """,
            {"path": source},
        )
        # One pass: split, strip, type, and flag what this path must leave to load_accounts.
        con.execute(
            f"""
            CREATE OR REPLACE TABLE account_rows AS
            WITH cells AS (
                SELECT rowid AS ord, string_split(line, ',') AS cells,
                       length(line) > {csv.field_size_limit()} AS long_line,
                       regexp_matches(line, '(^|,){_STRIPPED_CLASS}|{_STRIPPED_CLASS}(,|$)') AS padded
                FROM account_lines
            ), texts AS (
                SELECT ord, cells, long_line, {", ".join(f"{text(name)} AS {name}" for name in _ACCOUNT_COLUMNS)}
                FROM cells
            )
            SELECT ord, account_id, name, plan, nullif(domain, '') AS domain,
                   TRY_CAST(nullif(seats_purchased, '') AS BIGINT) AS seats_purchased,
                   TRY_CAST(nullif(mrr, '') AS DOUBLE) AS mrr, coalesce(nullif(currency, ''), 'USD') AS currency,
                   TRY_CAST(nullif(contract_start, '') AS DATE) AS contract_start,
                   TRY_CAST(nullif(renewal_date, '') AS DATE) AS renewal_date,
                   TRY_CAST(nullif(activated_at, '') AS DATE) AS activated_at,
                   TRY_CAST(nullif(employees_at_contract, '') AS BIGINT) AS employees_at_contract,
                   TRY_CAST(nullif(employees_now, '') AS BIGINT) AS employees_now, nullif(owner_email, '') AS owner_email,
                   nullif(champion_name, '') AS champion_name, nullif(champion_email, '') AS champion_email,
                   nullif(champion_user_id, '') AS champion_user_id, nullif(timezone, '') AS timezone,
                   TRY_CAST(nullif(nps, '') AS BIGINT) AS nps, list_contains($true, lower(cs_veto)) AS cs_veto,
                   nullif(cs_veto_reason, '') AS cs_veto_reason,
                   CASE WHEN addons = '' THEN []::VARCHAR[] ELSE {addons} END AS addons,
                   TRY_CAST(nullif(last_contacted_at, '') AS DATE) AS last_contacted_at,
                   coalesce({unusual}, true) AS unusual
            FROM texts
            """,
            {
                "stripped": STRIPPED,
                "plans": sorted(catalog.plan_ids()),
                "addons": sorted(addon.id for addon in catalog.addons),
                "booleans": [*_TRUE_TEXTS, *_FALSE_TEXTS],
                "true": list(_TRUE_TEXTS),
            },
        )
        row = con.execute(
            "SELECT count(*) > 0 AND count(*) FILTER (WHERE unusual) = 0 AND count(DISTINCT account_id) = count(*), "
            "list(DISTINCT timezone) FILTER (WHERE timezone IS NOT NULL) FROM account_rows"
        ).fetchone()
    except duckdb.Error:
        row = None
    con.execute("DROP TABLE IF EXISTS account_lines")
    if row is None or not row[0] or not all(_is_zone(zone) for zone in row[1] or []):
        con.execute("DROP TABLE IF EXISTS account_rows")
        return False
    con.execute("ALTER TABLE account_rows DROP COLUMN unusual")
    return True


@contextmanager
def duckdb_source(path: Path) -> Iterator[str]:
    """``path`` as DuckDB's readers should get it: they expand ``*?[]{}`` as a glob, so a path holding one of
    those is read through a symlink in a fresh temporary directory instead."""
    text = str(path)
    if not any(char in text for char in "*?[]{}"):
        yield text
        return
    with tempfile.TemporaryDirectory(prefix="outreach-") as folder:
        link = Path(folder) / f"data{path.suffix}"
        link.symlink_to(path.resolve())
        yield str(link)


def _is_zone(zone: str) -> bool:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _tickets_in_duckdb(
    con: duckdb.DuckDBPyConnection, path: Path, data: bytes, organizations: dict[str, str] | None = None
) -> bool:
    """Fill ``ticket_rows`` straight from tickets.jsonl; False (nothing written) when the file holds anything
    this path leaves to :func:`load_tickets`: a line the JSON standard refuses (DuckDB's reader is more
    lenient: NaN, trailing commas, numbers beyond a double), a field of another JSON type or form, a non-ASCII
    tag, or an error. Every check is a query that looks at all rows; only :func:`load_tickets` names a line."""
    organizations = organizations or {}
    # The line check is Python on one core; DuckDB's read of the same file leaves most of a second one idle.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="outreach-ticket-lines") as pool:
        standard = pool.submit(_standard_json_lines, data)
        with duckdb_source(path) as source:
            try:
                filled = _text_tickets(con, source, organizations) or _typed_tickets(con, source, organizations)
                row = con.execute(
                    "SELECT NOT EXISTS (SELECT 1 FROM ticket_table ANTI JOIN account_rows USING (account_id)) "
                    # A hash repeated by two ids sends the file to load_tickets, which finds none: still right.
                    "AND (SELECT count(DISTINCT hash(id)) = count(*) FROM ticket_table)"
                ).fetchone() if filled else None
            except duckdb.Error:
                row = None
        if not standard.result():
            row = None
    if row is None or not row[0]:
        con.execute("DROP TABLE IF EXISTS ticket_table")
        return False
    con.execute(_TICKET_VIEW)
    return True


# Bytes as classes for the number check: digits and "+" -> "0", exponent markers -> "e".
_NUMBER_CLASSES = bytes.maketrans(b"0123456789+E", b"00000000000e")
_LINE_CHECK_CHUNK = 1 << 24  # bytes the line check holds at a time (whole lines), besides the file itself


def _standard_json_lines(data: bytes) -> bool:
    """Whether every non-blank line is standard JSON as orjson (the records' reader) parses it, checked
    without building values: msgspec reads the syntax (no NaN, Infinity, trailing commas or stray
    whitespace); DuckDB refuses invalid UTF-8 itself. msgspec does not weigh the numbers it skips, so a line
    with a number that could be beyond a double - a three-digit exponent, or 200 digits in a row (in a string
    too) - goes to orjson. Reads ``data`` a few MB of whole lines at a time."""
    import msgspec  # only here: the CLI's start-up does not pay for it

    lines = msgspec.json.Decoder(msgspec.Raw)
    view = memoryview(data)
    start = 0
    while start < len(data):
        end = data.find(b"\n", start + _LINE_CHECK_CHUNK)
        end = len(data) if end < 0 else end + 1
        try:
            lines.decode_lines(view[start:end])
        except msgspec.DecodeError:
            return False
        chunk = data[start:end]
        classes = chunk.translate(_NUMBER_CLASSES)
        for needle in (b"0e000", b"0" * 200):
            found = classes.find(needle)
            while found >= 0:
                line_end = chunk.find(b"\n", found)
                line_end = len(chunk) if line_end < 0 else line_end
                try:
                    orjson.loads(chunk[chunk.rfind(b"\n", 0, found) + 1 : line_end])
                except orjson.JSONDecodeError:
                    return False
                found = classes.find(needle, line_end)
        start = end
    return True


# What DuckDB writes for a JSON value that is not a string, read into a VARCHAR column: a number, true or
# false, an array or an object (minified). A text value of this form may have been one; plain integers read
# the same either way (str(5) == "5") where a field takes them.
_MAYBE_NOT_TEXT = r"-?[0-9][0-9.eE+-]*|true|false|\[.*\]|\{.*\}"
_PLAIN_INTEGER = r"-?[1-9][0-9]{0,17}"
# tags as minified JSON: an array of ASCII strings without escapes (their lower() is Python's).
_PLAIN_TAGS = r'\[("[ !#-\[\]-~]*"(,"[ !#-\[\]-~]*")*)?\]'
# A stamp must also stay within years 1-9999 in UTC, as Python's datetime does.
_STAMP_RANGE = "BETWEEN TIMESTAMP '0001-01-01' AND TIMESTAMP '9999-12-31 23:59:59.999999'"
_TICKET_FIELDS = ("id", "account_id", "organization_id", "created_at", "subject", "description", "status",
                  "priority", "tags", "solved_at")  # fmt: skip


def _stamp_sql(text: str) -> str:
    return (
        f"CASE WHEN regexp_full_match({text}, '{_TIMESTAMP_FORM}') AND {text} >= '0001' "
        f"THEN {utc_timestamp_sql(text)} END"
    )


def _organization_account_sql(organization: str) -> str:
    return (
        f"coalesce(map_extract_value(MAP($org_ids::VARCHAR[], $org_accounts::VARCHAR[]), {organization}), "
        f"{organization})"
    )


def _text_tickets(con: duckdb.DuckDBPyConnection, source: str, organizations: dict[str, str]) -> bool:
    """The usual file - every field a JSON string (or a plain integer id), tags ASCII - read once as text;
    False when a value may not have been a string, or is in a form this path does not take."""
    types = ", ".join(f"'{name}': '{'JSON' if name == 'tags' else 'VARCHAR'}'" for name in _TICKET_FIELDS)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE ticket_table AS
        SELECT nullif(id, '') AS id,
               CASE WHEN coalesce(account_id, '') <> '' THEN account_id
                    WHEN coalesce(organization_id, '') <> '' THEN {_organization_account_sql("organization_id")}
               END AS account_id,
               {_stamp_sql("created_at")} AS created_at,
               coalesce(subject, '') AS subject, coalesce(description, '') AS description,
               lower(coalesce(nullif(status, ''), 'open')) AS status,
               lower(coalesce(nullif(priority, ''), 'normal')) AS priority,
               CASE WHEN tags IS NULL OR tags::VARCHAR = 'null' THEN []::VARCHAR[]
                    WHEN tags::VARCHAR = '[]' THEN []::VARCHAR[]
                    -- ["a","b"] with no quote or backslash inside a tag: the tags are between '","'.
                    WHEN regexp_full_match(tags::VARCHAR, $tags) THEN string_split(lower(tags::VARCHAR)[3:-3], '","')
               END AS tags,
               CASE WHEN coalesce(account_id, '') = '' THEN organization_id END AS organization_read,
               coalesce(solved_at, '') = '' OR {_stamp_sql("solved_at")} {_STAMP_RANGE} AS solved_ok,
               strlen(coalesce(status, '') || coalesce(priority, ''))
                   = length(coalesce(status, '') || coalesce(priority, '')) AS ascii_words
        FROM read_json($path, format='newline_delimited', columns={{{types}}})
        """,
        {"path": source, "tags": _PLAIN_TAGS, "org_ids": list(organizations),
         "org_accounts": list(organizations.values())},
    )  # fmt: skip

    def maybe_not_text(column: str, *, integer: bool = False) -> str:
        # The first character's code point first (cheap): only a text that starts as such a value may be one.
        other = f"(list_contains($starts, ascii({column})) AND regexp_full_match({column}, $other))"
        return f"({other} AND NOT regexp_full_match({column}, $integer))" if integer else other

    row = con.execute(
        f"""
        SELECT NOT EXISTS (
            SELECT 1 FROM ticket_table
            WHERE id IS NULL OR account_id IS NULL OR created_at IS NULL OR NOT (created_at {_STAMP_RANGE})
               OR NOT coalesce(solved_ok, false) OR tags IS NULL OR NOT ascii_words
               OR NOT list_contains($statuses, status) OR NOT list_contains($priorities, priority)
               OR {maybe_not_text("id", integer=True)} OR {maybe_not_text("account_id", integer=True)}
               OR {maybe_not_text("organization_read", integer=True)}
               OR {maybe_not_text("subject")} OR {maybe_not_text("description")}
        )
        """,
        {"other": _MAYBE_NOT_TEXT, "starts": [ord(c) for c in "-0123456789tf[{"], "integer": _PLAIN_INTEGER,
         "statuses": list(_TICKET_STATUSES), "priorities": list(_TICKET_PRIORITIES)},
    ).fetchone()  # fmt: skip
    if not (row and row[0]):
        return False
    for column in ("organization_read", "solved_ok", "ascii_words"):
        con.execute(f"ALTER TABLE ticket_table DROP COLUMN {column}")
    return True


def _json_kind(value: str) -> str:
    """SQL for the JSON type of a JSON column (as ``json_type`` names it, for the kinds tickets.jsonl takes)
    from its first character: DuckDB keeps JSON minified, so no value needs parsing again (ten ``json_type``
    calls a line cost four times the read itself)."""
    text = f"{value}::VARCHAR"
    return (
        f"CASE WHEN {value} IS NULL OR {text} = 'null' THEN 'NULL' WHEN starts_with({text}, '\"') THEN 'VARCHAR' "
        f"WHEN starts_with({text}, '[') THEN 'ARRAY' WHEN regexp_full_match({text}, '-?[0-9]{{1,18}}') THEN 'BIGINT' "
        "ELSE 'OTHER' END"
    )


def _json_text(value: str) -> str:
    """SQL for the text of a JSON string column: the characters between the quotes, unless an escape needs
    the JSON parser (minified JSON escapes nothing else)."""
    text = f"{value}::VARCHAR"
    return f"CASE WHEN contains({text}, '\\') THEN {value}->>'$' ELSE ({text})[2:-2] END"


def _typed_tickets(con: duckdb.DuckDBPyConnection, source: str, organizations: dict[str, str]) -> bool:
    """Any other file: every field read as JSON and typed by its JSON type (a number id, a text organisation
    without a map, an escaped text); False when a value is of a type or form this path leaves to
    :func:`load_tickets`."""
    fields = _TICKET_FIELDS
    types = ", ".join(f"'{name}': 'JSON'" for name in fields)
    # Zendesk numbers organisations; without a map only a text id is taken (as the account id) on this path.
    organization_kinds = "'VARCHAR', 'BIGINT'" if organizations else "'VARCHAR'"

    def kind(name: str) -> str:
        return f"{name}_kind"  # computed once per row, below

    def text(name: str) -> str:
        return f"{name}_text"  # the value of a JSON string, unescaped once per row, below

    organization = (
        f"CASE WHEN {kind('organization_id')} = 'BIGINT' THEN organization_id::VARCHAR "
        f"ELSE {text('organization_id')} END"
    )

    def text_or(name: str, default: str) -> str:
        """``str(value or default)`` for a JSON string or a missing value, else NULL (unusual)."""
        return (
            f"CASE WHEN {kind(name)} = 'NULL' OR ({kind(name)} = 'VARCHAR' AND {text(name)} = '') THEN '{default}' "
            f"WHEN {kind(name)} = 'VARCHAR' THEN {text(name)} END"
        )

    def stamp(name: str) -> str:
        value = text(name)
        return (
            f"CASE WHEN {kind(name)} = 'VARCHAR' AND regexp_full_match({value}, '{_TIMESTAMP_FORM}') "
            f"AND {value} >= '0001' THEN {utc_timestamp_sql(value)} END"
        )

    in_range = _STAMP_RANGE
    ascii_tags = (
        f"{kind('tags')} = 'ARRAY' AND coalesce(list_bool_and(list_transform(tags::JSON[], "
        "lambda t: coalesce(starts_with(t::VARCHAR, '\"') AND strlen(t::VARCHAR) = length(t::VARCHAR), false))), "
        "true)"
    )
    # One pass: read, type, and flag what this path must leave to load_tickets.
    con.execute(
        f"""
        CREATE OR REPLACE TABLE ticket_table AS
        WITH parsed AS (
            SELECT *, {", ".join(f"{_json_kind(name)} AS {name}_kind" for name in fields)},
                   {", ".join(f"{_json_text(name)} AS {name}_text" for name in fields if name != "tags")}
            FROM read_json($path, format='newline_delimited', columns={{{types}}})
        ), typed AS (
            SELECT CASE WHEN {kind("id")} = 'VARCHAR' AND {text("id")} <> '' THEN {text("id")}
                        WHEN {kind("id")} = 'BIGINT' THEN id::VARCHAR END AS id,
                   CASE WHEN {kind("account_id")} = 'VARCHAR' AND {text("account_id")} <> '' THEN {text("account_id")}
                        WHEN ({kind("account_id")} = 'NULL'
                              OR ({kind("account_id")} = 'VARCHAR' AND {text("account_id")} = ''))
                             AND {kind("organization_id")} IN ({organization_kinds})
                             AND {organization} <> ''
                        THEN coalesce(map_extract_value(MAP($org_ids::VARCHAR[], $org_accounts::VARCHAR[]),
                                                        {organization}),
                                      {organization}) END AS account_id,
                   {stamp("created_at")} AS created_at,
                   {kind("solved_at")} = 'NULL' OR ({kind("solved_at")} = 'VARCHAR' AND {text("solved_at")} = '')
                       OR {stamp("solved_at")} {in_range} AS solved_ok,
                   {text_or("subject", "")} AS subject, {text_or("description", "")} AS description,
                   {text_or("status", "open")} AS status, {text_or("priority", "normal")} AS priority,
                   CASE WHEN {kind("tags")} = 'NULL' THEN []::VARCHAR[]
                        WHEN {ascii_tags} THEN list_transform(tags::JSON[], lambda t: lower(t->>'$')) END AS tags
            FROM parsed
        )
        SELECT id, account_id, created_at, subject, description, lower(status) AS status,
               lower(priority) AS priority, coalesce(tags, []::VARCHAR[]) AS tags,
               coalesce(id IS NULL OR account_id IS NULL OR NOT (created_at {in_range}) OR NOT solved_ok
                        OR subject IS NULL OR description IS NULL OR tags IS NULL
                        OR strlen(status) <> length(status) OR NOT list_contains($statuses, lower(status))
                        OR strlen(priority) <> length(priority)
                        OR NOT list_contains($priorities, lower(priority)), true) AS unusual
        FROM typed
        """,
        {"path": source, "statuses": list(_TICKET_STATUSES), "priorities": list(_TICKET_PRIORITIES),
         "org_ids": list(organizations), "org_accounts": list(organizations.values())},
    )
    row = con.execute("SELECT NOT EXISTS (SELECT 1 FROM ticket_table WHERE unusual)").fetchone()
    if not (row and row[0]):
        return False
    con.execute("ALTER TABLE ticket_table DROP COLUMN unusual")
    return True


# ---------------------------------------------------------------------------------------------- events

_EVENT_SQL = """
CREATE OR REPLACE TABLE event_rows AS
SELECT message_id, event, user_id, ts, account_id, props FROM ({source})
"""

# Rows keep the file's order (DuckDB preserves insertion order), so a row's line is its rowid plus the
# lines before the first row. Numbering rows with row_number() while reading cost more than the whole
# read in benchmarks/bench_signals.py; rowid is free.
_EVENT_VIEW = """
CREATE OR REPLACE VIEW events AS
SELECT rowid + {first_line} AS line,
       coalesce(message_id, '{label}#' || (rowid + {first_line})) AS message_id,
       event, user_id, ts, account_id, props
FROM event_rows
"""


def utc_timestamp_sql(text: str) -> str:
    """SQL for the naive UTC TIMESTAMP of a text column (NULL when it is not a timestamp).

    ``epoch_us`` and ``make_timestamp`` only move the UTC microseconds across; ``timezone('UTC', ...)`` gave
    the same values through ICU at 0.45 s more per 10M events (and turned 'infinity' into a timestamp).
    """
    return f"make_timestamp(epoch_us(TRY_CAST({text} AS TIMESTAMPTZ)))"


# DuckDB refuses a JSON line longer than this (its read_json ``maximum_object_size``); so does the Python check.
MAX_JSON_LINE = 16 * 2**20

_JSONL_SOURCE = """
SELECT
    "messageId" AS message_id,
    event,
    coalesce("userId", "anonymousId") AS user_id,
    {ts} AS ts,
    coalesce({group}, properties->>'account_id') AS account_id,
    coalesce(properties, '{{}}'::JSON) AS props
FROM read_json('{path}', format='newline_delimited', maximum_object_size={max_line}, columns={{
    'messageId': 'VARCHAR', 'event': 'VARCHAR', 'userId': 'VARCHAR', 'anonymousId': 'VARCHAR',
    'timestamp': 'VARCHAR', 'context': '{context}', 'properties': 'JSON'}})
"""
# ``context`` read as a STRUCT skips writing and re-parsing its JSON (0.1 s per 10M events); a context that is
# not an object fails that read, and the JSON form, which reads it as no group, takes over.
_CONTEXT_FORMS = (("STRUCT(groupId VARCHAR)", "context.groupId"), ("JSON", "context->>'groupId'"))

# DuckDB's JSON reader accepts what the JSON standard does not: NaN and Infinity (in any case), numbers beyond
# a double (1e400, kept as written), trailing commas. In the properties it keeps, a literal outside a string
# follows ':', ',' or '[' (and maybe spaces); a row matching this goes to the strict parser (orjson), which
# decides. Strings that merely contain such text (":NaN") pass that check.
_LENIENT_JSON = r"[:,\[]\s*-?[nNiI][aAnN]|[0-9][eE][+]?[0-9]{3}|[0-9]{300}"


def _file_line(path: Path, row: int) -> int:
    """The file line of the ``row``-th (1-based) non-blank line of a JSON Lines file: DuckDB skips blank lines,
    so row numbers and file lines part after the first one. Only error paths need this."""
    seen = 0
    with path.open("rb") as handle:
        for line, raw in enumerate(handle, start=1):
            if raw.strip():
                seen += 1
                if seen == row:
                    return line
    return row


def _read_line(path: Path, number: int) -> bytes:
    with path.open("rb") as handle:
        for line, raw in enumerate(handle, start=1):
            if line == number:
                return raw
    return b""


def _strict_json(path: Path, line: int, raw: bytes) -> Any:
    """One line as the JSON standard reads it (orjson is strict: no NaN, Infinity or trailing commas); a line
    too long or not JSON is a DataError naming it."""
    if len(raw) > MAX_JSON_LINE:
        raise DataError(
            path,
            f"the line is {len(raw) / 2**20:.1f} MB; one line may be at most {MAX_JSON_LINE >> 20} MB",
            line=line,
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        found = _nonstandard_value(raw)
        if found is not None:
            raise _nonstandard_error(path, line, *found) from None
        raise DataError(path, f"malformed JSON ({error.msg} at column {error.colno})", line=line) from None


def _nonstandard_error(path: Path, line: int, location: str, text: str) -> DataError:
    return DataError(
        path, f"malformed JSON: {text} is not a JSON number (write a finite number, or null)", line=line,
        field=location,
    )


def _jsonl_problem(path: Path, duckdb_error: duckdb.Error | None = None) -> DataError:
    """Slow path, only taken after DuckDB refused the file or a check found a bad row: the first line that is
    not a valid event, by the strict parser, with its line and field."""
    try:
        with path.open("rb") as handle:
            for line, raw in enumerate(handle, start=1):
                if raw.strip():
                    problem = _event_problem(_strict_json(path, line, raw), path, line)
                    if problem is not None:
                        return problem
    except DataError as error:
        return error
    except OSError as error:
        return DataError.unreadable(path, error)
    return _duckdb_problem(path, duckdb_error)


def _duckdb_problem(path: Path, error: duckdb.Error | None) -> DataError:
    """What DuckDB refused that the strict parser accepts: a key given twice in one object. DuckDB names a line
    near it; the exact line is the one whose object repeats a key."""
    detail = _duckdb_detail(error) if error is not None else "unreadable"
    near = re.search(r"in line (\d+)", detail)
    if near is None:
        return DataError(path, f"not a JSON Lines file DuckDB can read ({detail})")
    reported = int(near.group(1))
    for line in range(max(1, reported - 2), reported + 3):
        repeated = _repeated_key(_read_line(path, line))
        if repeated is not None:
            return DataError(path, f"the key '{repeated}' is given twice in one object", line=line)
    return DataError(path, f"not a JSON Lines file DuckDB can read ({detail})", line=reported)


def _repeated_key(raw: bytes) -> str | None:
    """The first key an object on this line gives twice (orjson keeps the last one silently)."""
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        if len(set(keys)) != len(keys) and not repeated:
            repeated.append(next(key for key in keys if keys.count(key) > 1))
        return dict(items)

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except ValueError:
        return None
    return repeated[0] if repeated else None


def _event_problem(doc: Any, path: Path, line: int) -> DataError | None:
    if not isinstance(doc, dict):
        return DataError(path, "each line must be a JSON object", line=line)
    if not doc.get("event"):
        return DataError(path, "required value is missing", line=line, field="event")
    stamp = doc.get("timestamp")
    if not stamp:
        return DataError(path, "required value is missing", line=line, field="timestamp")
    try:
        parse_datetime(str(stamp), path, line, "timestamp")
    except DataError as error:
        return error
    if "properties" in doc and not isinstance(doc.get("properties"), dict):
        return DataError(path, "properties must be a JSON object", line=line, field="properties")
    if _event_account(doc) is None:
        return DataError(
            path,
            "no account: set context.groupId (or properties.account_id)",
            line=line,
            field="context.groupId",
        )
    return None


def _load_jsonl_events(con: duckdb.DuckDBPyConnection, path: Path, source: str) -> int | None:
    """Fast path: DuckDB's parallel JSON reader. Only when it or the checks find a problem does a Python pass
    read the file line by line to name the exact line and field. Returns :attr:`_EventScan.wrong_number`."""
    for context, group in _CONTEXT_FORMS:
        query = _JSONL_SOURCE.format(
            path=source.replace("'", "''"),
            ts=utc_timestamp_sql('"timestamp"'),
            context=context,
            group=group,
            max_line=MAX_JSON_LINE,
        )
        try:
            con.execute(_EVENT_SQL.format(source=query))
            break
        except duckdb.Error as error:
            if group == _CONTEXT_FORMS[-1][1]:
                raise _jsonl_problem(path, error) from None
    con.execute(_EVENT_VIEW.format(label=path.name, first_line=1))
    scan = _scan_events(con)
    if scan.missing is not None:
        raise _jsonl_problem(path)
    _check_strict_properties(con, path, scan.lenient)
    return scan.wrong_number


class _EventScan(NamedTuple):
    missing: int | None  # the first row without event, timestamp or account, or whose properties are no object
    lenient: list[int]  # the rows whose properties DuckDB may have read leniently (NaN, 1e400, …)
    wrong_number: int | None  # the first row with a number the default trigger events cannot use


def _scan_events(con: duckdb.DuckDBPyConnection) -> _EventScan:
    """Every check of the loaded rows. A ``WHERE`` stops evaluating a row at its first true ``OR`` branch, an
    aggregate ``FILTER`` evaluates them all (one pass with three FILTERs cost ten times three queries), so one
    ``WHERE`` pass looks for any suspect row and only then does each check run on its own."""
    defaults = EventNames().model_dump()
    wrong_number = _wrong_number_sql(tuple((defaults[key], prop, whole) for key, prop, whole in EVENT_NUMBERS))
    # DuckDB writes JSON minified: an object starts with '{'.
    missing_sql = "event IS NULL OR ts IS NULL OR account_id IS NULL OR NOT starts_with(props::VARCHAR, '{')"
    lenient_sql = "length(props::VARCHAR) > 2 AND regexp_matches(props::VARCHAR, $lenient)"
    # A good file (the usual case) costs one pass; only when a row trips any check do the three say which.
    suspect = con.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM events WHERE {missing_sql} OR {wrong_number} OR ({lenient_sql}) "
        "LIMIT 1)",
        {"lenient": _LENIENT_JSON},
    ).fetchone()
    if not suspect or not suspect[0]:
        return _EventScan(None, [], None)
    missing = con.execute(f"SELECT min(line) FROM events WHERE {missing_sql}").fetchone()
    lenient = con.execute(
        f"SELECT line FROM events WHERE {lenient_sql} ORDER BY line", {"lenient": _LENIENT_JSON}
    ).fetchall()
    number = con.execute(f"SELECT min(line) FROM events WHERE {wrong_number}").fetchone()
    return _EventScan(
        missing[0] if missing else None, [row[0] for row in lenient], number[0] if number else None
    )


def _check_strict_properties(con: duckdb.DuckDBPyConnection, path: Path, rows: list[int]) -> None:
    """Properties DuckDB read leniently (NaN, Infinity, 1e400) are malformed JSON, named by their line."""
    suspects = (
        con.execute(
            "SELECT line, props::VARCHAR FROM events WHERE list_contains(?, line) ORDER BY line", [rows]
        ).fetchall()
        if rows
        else []
    )
    for row, props in suspects:
        try:
            orjson.loads(props)
            continue  # only a string looked like one
        except orjson.JSONDecodeError:
            pass
        line = _file_line(path, int(row)) if path.suffix == ".jsonl" else int(row)
        found = _nonstandard_value(props)
        if found is not None:
            raise _nonstandard_error(path, line, f"properties.{found[0]}", found[1])
        if path.suffix == ".jsonl":
            _strict_json(path, line, _read_line(path, line))  # raises, naming the column
        raise DataError(path, "not standard JSON (NaN, Infinity or a number beyond a double)", line=line,
                        field="properties")


class _Lenient:
    """A value only a lenient JSON reader takes: NaN, Infinity, or a number beyond a double."""

    def __init__(self, text: str) -> None:
        self.text = text


def _nonstandard_value(text: str | bytes) -> tuple[str, str] | None:
    """The dotted key and the text of the first NaN, Infinity or out-of-range number in a JSON object, by a
    reader that accepts them; None when the object is standard JSON."""

    def number(literal: str) -> float | _Lenient:
        value = float(literal)
        return value if math.isfinite(value) else _Lenient(literal)

    try:
        doc = json.loads(text, parse_constant=_Lenient, parse_float=number)
    except ValueError:
        return None

    def find(value: Any, location: str) -> tuple[str, str] | None:
        if isinstance(value, _Lenient):
            return location, value.text
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in children:
            found = find(child, f"{location}.{key}" if location else str(key))
            if found is not None:
                return found
        return None

    return find(doc, "")


def _duckdb_detail(error: duckdb.Error) -> str:
    """DuckDB's one-line reason, without its error class, the file name or the SQL it quotes."""
    first = str(error).split("\n", 1)[0]
    return re.sub(r'^[A-Za-z ]*Error: |\s*(in|while reading) file "[^"]*"[,:]?', "", first).strip() or type(error).__name__


def _tabular_reader(path: Path, source: str) -> tuple[str, list[str]]:
    """The DuckDB table function reading events.parquet / events.csv, and its column names.

    A CSV is read with the dialect fixed (comma, double quotes, the header's columns, every value text)
    instead of sniffed: DuckDB's sniffer guesses another dialect for a file with one bad row and then blames
    the header; fixed, it names the row.
    """
    quoted = sql_text(source)
    if path.suffix == ".parquet":
        reader = f"read_parquet({quoted})"
        try:
            columns = [str(row[0]) for row in duckdb.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
        except duckdb.Error as error:
            raise DataError(path, f"not a Parquet file DuckDB can read ({_duckdb_detail(error)})") from None
        return reader, columns
    try:
        with path.open("rb") as handle:
            first = handle.readline(2**20).decode("utf-8-sig")
    except OSError as error:
        raise DataError.unreadable(path, error) from None
    except UnicodeDecodeError as error:
        raise DataError(path, f"not UTF-8 text (byte {error.start})", line=1) from None
    header = next(csv.reader([first]), [])
    if not header:
        raise DataError(path, "the file is empty", hint="its first line is the header: event,userId,timestamp,groupId,…")
    repeated = next((name for name in header if header.count(name) > 1), None)
    if repeated is not None or "" in header:
        raise DataError(path, "each column needs its own name in the header", line=1, field=repeated or "")
    types = "{" + ", ".join(f"{sql_text(name)}: 'VARCHAR'" for name in header) + "}"
    reader = (
        f"read_csv({quoted}, header=true, auto_detect=false, columns={types}, delim=',', quote='\"', "
        "escape='\"', strict_mode=true)"
    )
    return reader, header


def _load_tabular_events(con: duckdb.DuckDBPyConnection, path: Path, source: str) -> int | None:
    """events.parquet / events.csv: flat columns event, userId, timestamp, groupId|account_id, messageId?,
    and either a ``properties`` JSON column or any other columns, which become properties.

    One statement reads the file into ``event_rows`` (Parquet is read once, a CSV parsed once); the checks
    run on that table, and only an error goes back to the file for the offending value.
    """
    reader, columns = _tabular_reader(path, source)
    lower = {name.lower(): name for name in columns}

    def col(*names: str) -> str | None:
        for name in names:
            if name.lower() in lower:
                return '"' + lower[name.lower()].replace('"', '""') + '"'
        return None

    event = col("event")
    stamp = col("timestamp")
    account = col("groupId", "group_id", "account_id")
    user = col("userId", "user_id", "anonymousId")
    message = col("messageId", "message_id")
    for required, name in ((event, "event"), (stamp, "timestamp"), (account, "groupId or account_id")):
        if required is None:
            raise DataError(path, "required column is missing", line=1, field=name)
    assert event and stamp and account  # found, or the loop above raised
    named = {lower[c.strip('"').lower()] for c in (event, stamp, account, user, message) if c}
    properties = col("properties")
    if properties:
        # Text that is not JSON becomes a JSON string, which the object check below refuses.
        props = (
            f"CASE WHEN {properties} IS NULL THEN '{{}}'::JSON "
            f"ELSE coalesce(TRY_CAST({properties} AS JSON), '\"\"'::JSON) END"
        )
    else:
        rest = [name for name in columns if name not in named]
        props = (
            "json_object(" + ", ".join(f"{sql_text(name)}, {col(name)}" for name in rest) + ")"
            if rest
            else "'{}'::JSON"
        )
    query = (
        f"SELECT {message or 'NULL'}::VARCHAR AS message_id, {event}::VARCHAR AS event, "
        f"{user or 'NULL'}::VARCHAR AS user_id, {utc_timestamp_sql(stamp)} AS ts, "
        f"{account}::VARCHAR AS account_id, {props} AS props FROM {reader}"
    )
    try:
        con.execute(_EVENT_SQL.format(source=query))
    except duckdb.Error as error:
        detail = _duckdb_detail(error)
        line = re.search(r"CSV Error on Line: (\d+)", str(error))
        reason = next(
            (text for text in str(error).split("\n")[1:] if text and not text.startswith(("Original Line", " "))),
            detail,
        )
        if line and path.suffix == ".csv":
            counts = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", reason)
            problem = (
                f"the row has {counts.group(2)} values; the header has {counts.group(1)} columns"
                if counts
                else f"unreadable CSV row ({reason.strip()})"
            )
            raise DataError(path, problem, line=int(line.group(1))) from None
        kind = "a Parquet file" if path.suffix == ".parquet" else "a CSV file"
        raise DataError(path, f"not {kind} DuckDB can read ({detail})") from None
    first_line = 1 if path.suffix == ".parquet" else 2  # a CSV's header is line 1
    con.execute(_EVENT_VIEW.format(label=path.name, first_line=first_line))
    scan = _scan_events(con)
    if scan.missing is not None:
        bad = con.execute(
            "SELECT line, event IS NULL, ts IS NULL, account_id IS NULL FROM events WHERE line = ?", [scan.missing]
        ).fetchone()
        assert bad is not None
        number, no_event, bad_stamp, _no_account = bad
        row = con.execute(
            f"SELECT CAST({stamp} AS VARCHAR) FROM {reader} LIMIT 1 OFFSET {int(number) - first_line}"
        ).fetchone()
        stamp_text = row[0] if row else None
        if no_event or bad_stamp or _no_account:
            field_name = "event" if no_event else "timestamp" if bad_stamp else "account_id"
            problem = (
                f"'{stamp_text}' is not an ISO 8601 timestamp"
                if bad_stamp and stamp_text
                else "required value is missing"
            )
        else:
            field_name, problem = "properties", "must be a JSON object, e.g. {\"limit\": \"reports\"}"
        raise DataError(path, problem, line=int(number), field=field_name)
    _check_strict_properties(con, path, scan.lenient)
    return scan.wrong_number


def find_events_file(root: Path) -> Path | None:
    for name in ("events.jsonl", "events.parquet", "events.csv"):
        candidate = root / name
        if candidate.exists() or candidate.is_symlink():  # a dangling link is an error, not "no events"
            return candidate
    return None


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar = false")  # the CLI shows its own progress; DuckDB's garbles it
    return con


def _read_events(con: duckdb.DuckDBPyConnection, path: Path | None) -> int | None:
    """Fill ``con`` with the ``events`` view (all timestamps UTC); no check against accounts.csv yet. Returns the
    first row whose number the default trigger events cannot use (see :func:`check_event_numbers`)."""
    if path is None:
        con.execute(
            "CREATE TABLE event_rows (message_id VARCHAR, event VARCHAR, user_id VARCHAR, "
            "ts TIMESTAMP, account_id VARCHAR, props JSON)"
        )
        con.execute(_EVENT_VIEW.format(label="events", first_line=1))
        return None
    try:  # DuckDB's own message for a directory or a file it may not open would be a bug report's
        path.open("rb").close()
    except OSError as error:
        raise DataError.unreadable(path, error) from None
    with duckdb_source(path) as source:
        if path.suffix == ".jsonl":
            return _load_jsonl_events(con, path, source)
        return _load_tabular_events(con, path, source)


def read_events(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Fill ``con`` with the ``event_rows`` table and ``events`` view of one events file, checked line by line as
    :func:`load_dataset` checks it (apart from the accounts): how the event store reads the files it stores."""
    _read_events(con, path)


class EventSource(Protocol):
    """Events stored outside the data directory (:class:`outreach.engine.store.EventStore`): the seam through
    which :func:`load_dataset` reads them instead of parsing the events file again."""

    def holds(self, path: Path) -> bool:
        """Whether this events file is stored as it is now (so it need not be read)."""
        ...

    def add_to(self, con: duckdb.DuckDBPyConnection, *, skip_known: bool = False) -> None:
        """Append the stored events to ``event_rows`` (``skip_known``: leave out evidence ids already there)."""
        ...


def _check_event_accounts(con: duckdb.DuckDBPyConnection, path: Path | None) -> None:
    if path is None:
        return
    # Distinct event accounts first (100k groups), then the anti join; the offending line only on error.
    strangers = [
        row[0]
        for row in con.execute(
            "SELECT account_id FROM (SELECT DISTINCT account_id FROM event_rows) "
            "ANTI JOIN account_rows USING (account_id)"
        ).fetchall()
    ]
    unknown = (
        con.execute(
            "SELECT line, account_id FROM events WHERE list_contains(?::VARCHAR[], account_id) ORDER BY line LIMIT 1",
            [strangers],
        ).fetchone()
        if strangers
        else None
    )
    if unknown:
        line = int(unknown[0])
        if path.suffix == ".jsonl":  # row numbers skip blank lines: the file line, on this error path only
            line = _file_line(path, line)
        raise DataError(
            path,
            f"account '{unknown[1]}' is not in accounts.csv",
            line=line,
            field="context.groupId" if path.suffix == ".jsonl" else "account_id",
        )


def _event_account(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return None
    context, props = doc.get("context"), doc.get("properties")
    group = context.get("groupId") if isinstance(context, dict) else None
    account = group or (props.get("account_id") if isinstance(props, dict) else None)
    return str(account) if account else None


# The numeric properties the built-in triggers read, by the rules.yaml ``events:`` key of their event and
# whether the trigger reads a whole number: where present, each must be a finite number >= 0.
EVENT_NUMBERS: tuple[tuple[str, str, bool], ...] = (
    ("limit_reached", "used", False),
    ("limit_reached", "cap", False),
    ("usage_reported", "used", False),
    ("export_created", "rows", True),
)


def _wrong_number_sql(checks: tuple[tuple[str, str, bool], ...]) -> str:
    """SQL true for an event row with one of ``checks``' (event, property, whole) numbers present but not a
    finite number >= 0 as the triggers cast it."""

    def cast(prop: str, whole: bool) -> str:
        return f"TRY_CAST(props->>{sql_text(prop)} AS {'BIGINT' if whole else 'DOUBLE'})"

    return "(" + " OR ".join(
        f"(event = {sql_text(event)} AND props->>{sql_text(prop)} IS NOT NULL "
        f"AND NOT coalesce(isfinite({cast(prop, whole)}::DOUBLE) AND {cast(prop, whole)} >= 0, false))"
        for event, prop, whole in checks
    ) + ")"


def check_event_numbers(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, event_names: Mapping[str, str]
) -> None:
    """Raise a DataError for the first event whose numeric property (:data:`EVENT_NUMBERS`, under the product's
    own event names) is not a number, not finite or negative: a trigger would otherwise read it as missing, or
    compare with NaN. Once per dataset and set of names: the default names were checked in the pass that
    loaded the events. A flat events file's properties are text, so "50" is a number there as everywhere."""
    checks = tuple((event_names[key], prop, whole) for key, prop, whole in EVENT_NUMBERS)
    path = dataset.events_file
    last = dataset.file_last_line  # rows after it (the event store's) have no line in the file to name
    if checks in dataset.checked_numbers or path is None or last == 0:
        return
    defaults = EventNames().model_dump()
    if checks == tuple((defaults[key], prop, whole) for key, prop, whole in EVENT_NUMBERS):
        line = dataset.wrong_number_line
    else:
        within = "" if last is None else f" AND line <= {int(last)}"
        found = con.execute(f"SELECT min(line) FROM events WHERE {_wrong_number_sql(checks)}{within}").fetchone()
        line = found[0] if found else None
    if line is not None:
        row = con.execute("SELECT event, props::VARCHAR FROM events WHERE line = ?", [line]).fetchone()
        assert row is not None
        raise _number_problem(path, int(line), checks, str(row[0]), orjson.loads(row[1]))
    dataset.checked_numbers.add(checks)


def number_problem(value: Any, whole: bool) -> str | None:
    """Why ``value`` cannot be one of :data:`EVENT_NUMBERS` (not a number, not finite, negative, beyond 64 bits
    for a whole one); None when the triggers can use it. Text holding a number counts, as the triggers cast it."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    try:
        number = int(text) if whole and isinstance(value, int) else float(text)
    except ValueError:
        return f"'{text}' is not a {'whole ' if whole else ''}number"
    if not math.isfinite(number):
        return f"'{text}' is not a finite number"
    if number < 0:
        return f"{text} must not be negative"
    if whole and number > _MAX_INT:
        return f"{text} is out of range (at most {_MAX_INT})"
    return None


def _number_problem(
    path: Path, line: int, checks: tuple[tuple[str, str, bool], ...], event: str, props: dict[str, Any]
) -> DataError:
    """What is wrong with the number on this event row (found by :func:`_wrong_number_sql`)."""
    file_line = _file_line(path, line) if path.suffix == ".jsonl" else line
    for name, prop, whole in checks:
        value = props.get(prop)
        problem = number_problem(value, whole) if name == event and value is not None else None
        if problem is not None:
            return DataError(path, f"{problem} ('{prop}' of a '{event}' event)", line=file_line,
                             field=f"properties.{prop}")
    return DataError(path, f"a number of this '{event}' event cannot be used", line=file_line, field="properties")


def _count_events(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM event_rows").fetchone()
    return int(row[0]) if row else 0


def load_dataset(root: Path | str, *, events: EventSource | None = None) -> Dataset:
    """Read a whole data directory. Raises DataError on the first problem; nothing is written anywhere.

    With ``events`` (the workspace's event store) the stored events join the data directory's: its events file
    is only read when the store does not hold it as it is now."""
    started = time.perf_counter()
    with paused_gc():
        dataset = _load_dataset(Path(root), events)
    _one_thread_for_small_data(dataset)
    source = dataset.events_file.name if dataset.events_file else "no events file"
    if events is not None:
        source += " and the event store"
    logger.info("loaded %s: %d events (%s) in %.2f s", root, dataset.event_count, source,
                time.perf_counter() - started)
    return dataset


# DuckDB parallelises by row groups of this many rows: a data set with fewer events, accounts and tickets gains
# nothing from a second thread and pays for waking it in each of the engine's ~30 statements (10-20 % of a demo
# decide on a busy machine; docs/BENCHMARKS.md, "Start-up"). Loading has run with every thread by then.
ROW_GROUP_ROWS = 122_880


def _one_thread_for_small_data(dataset: Dataset) -> None:
    con = dataset.events
    if dataset.event_count >= ROW_GROUP_ROWS:
        return
    row = con.execute("SELECT (SELECT count(*) FROM account_rows), (SELECT count(*) FROM ticket_rows)").fetchone()
    if row is not None and max(row) < ROW_GROUP_ROWS:
        con.execute("SET threads = 1")


def _fill_events(con: duckdb.DuckDBPyConnection, path: Path | None, events: EventSource | None) -> int | None:
    """:func:`_read_events`, then the stored events when no file was read; the file's first wrong number."""
    wrong_number_line = _read_events(con, path)
    if events is not None and path is None:
        events.add_to(con)
    return wrong_number_line


def _load_dataset(root: Path, stored: EventSource | None = None) -> Dataset:
    if not root.is_dir():
        raise DataError(root, "not a directory", hint="pass --data DIR pointing at a data directory")
    from outreach.engine.sources import has_sources, materialized

    if not has_sources(root):
        return _load_inputs(root, stored, {})
    with materialized(root) as inputs:  # sources.yaml: inputs from SQL queries, written where the loader reads
        try:
            return _load_inputs(root, stored, inputs.paths)
        except DataError as error:
            raise inputs.translate(error) from None


def _load_inputs(root: Path, stored: EventSource | None, queried: dict[str, Path]) -> Dataset:
    """Load the data directory, reading the inputs in ``queried`` (name -> file) from there instead."""
    catalog = load_catalog(root / "catalog.yaml")
    accounts_path = queried.get("accounts", root / "accounts.csv")
    tickets_path = queried.get("tickets", root / "tickets.jsonl")
    account_stamp = _stamp(accounts_path)
    account_data = read_input(accounts_path, missing_hint=ACCOUNTS_HINT)
    has_tickets = tickets_path.exists() or tickets_path.is_symlink()
    ticket_stamp = _stamp(tickets_path)
    ticket_data = read_input(tickets_path) if has_tickets else b""
    events_file = queried.get("events") or find_events_file(root)
    read_file = None if stored is not None and events_file is not None and stored.holds(events_file) else events_file
    events = _connect()
    # One input after the other: reading the events on a worker thread while this one filled the account and
    # ticket tables saved nothing (DuckDB already uses every core for each) and made a Parquet read 2-3x slower.
    with events.cursor() as con:
        con.execute("SET TimeZone='UTC'")
        accounts = _account_rows(con, accounts_path, account_data, catalog)
        organizations = organization_accounts(root, accounts_path, account_data, con)
        tickets = _ticket_rows(con, tickets_path, ticket_data, accounts, organizations)
    # Records are built on first use from the file read again, not from bytes held since the load (600 MB at a
    # million accounts, and alive while the events load); a file that changed since is an error, not records
    # that differ from the tables. Only a sources.yaml query's file, gone once the load is over, is kept.
    kept_accounts = account_data if "accounts" in queried else None
    kept_tickets = ticket_data if "tickets" in queried else None
    del account_data, ticket_data
    wrong_number_line = _fill_events(events, read_file, stored)
    _check_event_accounts(events, read_file)
    # With an event store, rows after the file's are the store's: they have no line in the file to blame.
    file_last_line = None if stored is None else _last_line(events) if read_file is not None else 0
    if stored is not None and read_file is not None:
        stored.add_to(events, skip_known=True)
    dataset = Dataset(
        root=root,
        catalog=catalog,
        events=events,
        events_file=events_file,
        event_count=_count_events(events),
        accounts=accounts
        if accounts is not None
        else lambda: load_accounts(accounts_path, catalog, _later(accounts_path, account_stamp, kept_accounts)),
        tickets=tickets
        if tickets is not None
        else lambda account_ids: load_tickets(
            tickets_path, account_ids, _later(tickets_path, ticket_stamp, kept_tickets) if has_tickets else b"",
            organizations,
        ),
    )
    dataset.wrong_number_line = wrong_number_line
    dataset.file_last_line = file_last_line
    return dataset


def _stamp(path: Path) -> tuple[int, int] | None:
    """Size and modification time: what tells a file read again from the file read at load time."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns


def _later(path: Path, stamp: tuple[int, int] | None, kept: bytes | None) -> bytes:
    """A file's bytes for records built after the load: the bytes ``kept`` since then (a sources.yaml query's
    file, gone once the load is over), else the file read again (checked unchanged)."""
    return kept if kept is not None else _reread(path, stamp)


def _last_line(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT coalesce(max(line), 0) FROM events").fetchone()
    return int(row[0]) if row else 0


def _reread(path: Path, stamp: tuple[int, int] | None) -> bytes:
    if _stamp(path) != stamp:
        raise DataError(
            path,
            "changed since outreach loaded it",
            hint="run the command again (the web app and the scheduler reload a changed data directory themselves)",
        )
    return read_input(path)


# Below this size the Python readers are quicker than planning the DuckDB pass (the demo's 40 accounts read in
# ~1 ms against ~40 ms); above it, DuckDB is (docs/BENCHMARKS.md). Both fill the same tables.
SMALL_FILE_BYTES = 256 * 1024


ORGANIZATIONS_FILE = "organizations.csv"
ORGANIZATION_COLUMN = "zendesk_organization_id"


def organization_accounts(
    root: Path, accounts_path: Path, account_data: bytes, con: duckdb.DuckDBPyConnection
) -> dict[str, str]:
    """Zendesk organisation id -> account id, from ``organizations.csv`` (columns ``zendesk_organization_id``,
    ``account_id``) and the ``zendesk_organization_id`` column of accounts.csv: Zendesk exports name a ticket's
    organisation by number. One organisation belongs to one account; every account named must exist."""
    known: set[str] = set()  # read on the first mapping: most data sets have none (a million ids cost 0.7 s)
    found: dict[str, tuple[str, Path, int]] = {}

    def add(organization: str, account: str, path: Path, line: int, field_name: str) -> None:
        if not known:
            known.update(str(row[0]) for row in con.execute("SELECT account_id FROM account_rows").fetchall())
        if account not in known:
            raise DataError(path, f"account '{account}' is not in accounts.csv", line=line, field=field_name)
        earlier = found.get(organization)
        if earlier is not None and earlier[0] != account:
            raise DataError(path, f"organization {organization} is already mapped to '{earlier[0]}' "
                            f"({earlier[1].name}:{earlier[2]})", line=line, field=ORGANIZATION_COLUMN)
        found[organization] = (account, path, line)

    mapping_path = root / ORGANIZATIONS_FILE
    if mapping_path.is_file():
        try:
            text = mapping_path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise DataError(mapping_path, f"not UTF-8 text (byte {error.start})") from None
        reader = csv.reader(io.StringIO(text, newline=""))
        rows = _csv_rows(reader, mapping_path)
        header = [name.strip() for name in next(rows, None) or []]
        for column in (ORGANIZATION_COLUMN, "account_id"):
            if column not in header:
                raise DataError(mapping_path, "required column is missing from the header", line=1, field=column)
        org_at, account_at = header.index(ORGANIZATION_COLUMN), header.index("account_id")
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            values = [cell.strip() for cell in row] + [""] * len(header)
            for column, at in ((ORGANIZATION_COLUMN, org_at), ("account_id", account_at)):
                if not values[at]:
                    raise DataError(mapping_path, "required value is empty", line=reader.line_num, field=column)
            add(values[org_at], values[account_at], mapping_path, reader.line_num, "account_id")
    if ORGANIZATION_COLUMN.encode() in account_data.partition(b"\n")[0]:
        reader = csv.reader(io.StringIO(account_data.decode("utf-8-sig"), newline=""))
        columns: list[str] = next(reader, [])
        if ORGANIZATION_COLUMN in columns:
            org_at, account_at = columns.index(ORGANIZATION_COLUMN), columns.index("account_id")
            for row in reader:
                if len(row) > max(org_at, account_at) and row[org_at].strip():
                    add(row[org_at].strip(), row[account_at].strip(), accounts_path, reader.line_num,
                        ORGANIZATION_COLUMN)
    return {organization: account for organization, (account, _, _) in found.items()}


def _account_rows(
    con: duckdb.DuckDBPyConnection, path: Path, data: bytes, catalog: Catalog
) -> list[Account] | None:
    """Fill ``account_rows``; the records too when the Python reader had to read them (else None)."""
    if len(data) >= SMALL_FILE_BYTES and _accounts_in_duckdb(con, path, data, catalog):
        return None
    accounts = load_accounts(path, catalog, data)
    _account_rows_from_records(con, accounts)
    return accounts


def _ticket_rows(
    con: duckdb.DuckDBPyConnection, path: Path, data: bytes, accounts: list[Account] | None,
    organizations: dict[str, str] | None = None,
) -> list[Ticket] | None:
    """Fill ``ticket_rows``; the records too when the Python reader had to read them (else None)."""
    if len(data) >= SMALL_FILE_BYTES and _tickets_in_duckdb(con, path, data, organizations):
        return None
    if accounts is None:
        account_ids = {str(row[0]) for row in con.execute("SELECT account_id FROM account_rows").fetchall()}
    else:
        account_ids = {account.account_id for account in accounts}
    tickets = load_tickets(path, account_ids, data, organizations)
    _ticket_rows_from_records(con, tickets)
    return tickets
