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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import compress
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import orjson
from pydantic import BaseModel, ConfigDict, Field

from outreach.catalog import Catalog, load_catalog
from outreach.errors import DataError

TicketStatus = Literal["new", "open", "pending", "hold", "solved", "closed"]
TicketPriority = Literal["low", "normal", "high", "urgent"]

ACCOUNT_REQUIRED = ("account_id", "name", "plan")


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
        return self.status in ("new", "open", "pending", "hold")


@dataclass
class Dataset:
    """Everything read from one data directory. ``events`` is a DuckDB connection with an ``events`` view
    (columns line, message_id, event, user_id, ts, account_id, props) over the table ``event_rows``."""

    root: Path
    accounts: list[Account]
    tickets: list[Ticket]
    catalog: Catalog
    events: duckdb.DuckDBPyConnection
    events_file: Path | None
    event_count: int = 0
    tickets_by_account: dict[str, list[Ticket]] = field(default_factory=dict)

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


def _parse_int(
    value: str, path: Path, line: int, field_name: str, *, low: int = 0, high: int | None = None
) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise DataError(path, f"'{value}' is not a whole number", line=line, field=field_name) from None
    if number < low or (high is not None and number > high):
        bounds = f"{low}–{high}" if high is not None else f">= {low}"
        raise DataError(path, f"{number} is out of range ({bounds})", line=line, field=field_name)
    return number


def _parse_float(value: str, path: Path, line: int, field_name: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise DataError(path, f"'{value}' is not a number", line=line, field=field_name) from None
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


def load_accounts(path: Path, catalog: Catalog) -> list[Account]:
    """Read accounts.csv. Row numbers in errors are file lines (the header is line 1)."""
    if not path.exists():
        raise DataError(path, "file not found", hint="a data directory needs accounts.csv")
    with path.open(newline="", encoding="utf-8-sig") as handle, paused_gc():
        reader = csv.reader(handle)
        header = next(reader, None) or []
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
        for row in reader:
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
    return accounts


def json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """Each non-blank line of a JSON Lines file as (line number, parsed value); a line that is not JSON stops
    with a DataError naming the file and line. Shared by every JSONL reader (tickets, events, outcomes)."""
    with path.open("rb") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield line, orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                raise DataError(
                    path, f"malformed JSON ({error.msg} at column {error.colno})", line=line
                ) from None


def _utc_timestamp(value: Any, path: Path, line: int, field_name: str) -> datetime:
    """parse_datetime(str(value), ...), with a shortcut for the usual form 2026-11-01T10:00:00Z."""
    if type(value) is str and len(value) == 20 and value[19] == "Z" and value.find("Z") == 19:
        # One "Z", at the end: parse_datetime would parse "...+00:00", which gives the same UTC datetime.
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # parse_datetime raises the error
    return parse_datetime(str(value), path, line, field_name)


def load_tickets(path: Path, account_ids: set[str]) -> list[Ticket]:
    """Read tickets.jsonl (optional file). ``organization_id`` is accepted for ``account_id``."""
    if not path.exists():
        return []
    tickets: list[Ticket] = []
    known = set(Ticket.model_fields) | {"organization_id"}
    ticket_fields = set(Ticket.model_fields)  # Ticket(...) was always given every field; one set for all
    with paused_gc():
        for line, raw in json_lines(path):
            if not isinstance(raw, dict):
                raise DataError(path, "each line must be a JSON object", line=line)
            get = raw.get
            ticket_id = get("id")
            if ticket_id in (None, ""):
                raise DataError(path, "required value is missing", line=line, field="id")
            account_id = get("account_id") or get("organization_id")
            if not account_id:
                raise DataError(path, "required value is missing", line=line, field="account_id")
            account = str(account_id)
            if account not in account_ids:
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
                        "id": str(ticket_id),
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

_JSONL_SOURCE = """
SELECT
    "messageId" AS message_id,
    event,
    coalesce("userId", "anonymousId") AS user_id,
    timezone('UTC', TRY_CAST("timestamp" AS TIMESTAMPTZ)) AS ts,
    coalesce(context->>'groupId', properties->>'account_id') AS account_id,
    coalesce(properties, '{{}}'::JSON) AS props
FROM read_json('{path}', format='newline_delimited', columns={{
    'messageId': 'VARCHAR', 'event': 'VARCHAR', 'userId': 'VARCHAR', 'anonymousId': 'VARCHAR',
    'timestamp': 'VARCHAR', 'context': 'JSON', 'properties': 'JSON'}})
"""


def _jsonl_problem(path: Path) -> DataError | None:
    """Slow path, only taken after the fast check found a bad line: find the first one and say what is wrong."""
    try:
        for line, doc in json_lines(path):
            problem = _event_problem(doc, path, line)
            if problem is not None:
                return problem
    except DataError as error:
        return error
    return None


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


def _load_jsonl_events(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Fast path: DuckDB's parallel JSON reader. Only when it or the field check finds a problem does a
    Python pass read the file line by line to name the exact line and field."""
    source = _JSONL_SOURCE.format(path=str(path).replace("'", "''"))
    try:
        con.execute(_EVENT_SQL.format(source=source))
    except duckdb.Error:
        raise _jsonl_problem(path) or DataError(path, "unreadable JSON lines file") from None
    con.execute(_EVENT_VIEW.format(label=path.name, first_line=1))
    bad = con.execute(
        "SELECT min(line) FROM events WHERE event IS NULL OR ts IS NULL OR account_id IS NULL "
        "OR NOT starts_with(props::VARCHAR, '{')"  # DuckDB writes JSON minified: an object starts with '{'.
    ).fetchone()
    if bad is not None and bad[0] is not None:
        raise _jsonl_problem(path) or DataError(path, "malformed event", line=int(bad[0]))


def _load_tabular_events(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """events.parquet / events.csv: flat columns event, userId, timestamp, groupId|account_id, messageId?,
    and either a ``properties`` JSON column or any other columns, which become properties."""
    reader = "read_parquet(?)" if path.suffix == ".parquet" else "read_csv(?, header=true, all_varchar=true)"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE raw_flat AS SELECT * FROM {reader}",
        [str(path)],
    )
    columns = [str(row[0]) for row in con.execute("DESCRIBE raw_flat").fetchall()]
    lower = {name.lower(): name for name in columns}

    def col(*names: str) -> str | None:
        for name in names:
            if name.lower() in lower:
                return '"' + lower[name.lower()] + '"'
        return None

    event = col("event")
    stamp = col("timestamp")
    account = col("groupId", "group_id", "account_id")
    user = col("userId", "user_id", "anonymousId")
    message = col("messageId", "message_id")
    for required, name in ((event, "event"), (stamp, "timestamp"), (account, "groupId or account_id")):
        if required is None:
            raise DataError(path, "required column is missing", line=1, field=name)
    named = {c.strip('"') for c in (event, stamp, account, user, message) if c}
    if "properties" in lower:
        props = f"TRY_CAST({col('properties')} AS JSON)"
    else:
        rest = [name for name in columns if name not in named]
        props = (
            "json_object(" + ", ".join(f"'{name}', \"{name}\"" for name in rest) + ")"
            if rest
            else "'{}'::JSON"
        )
    row_label = "row" if path.suffix == ".parquet" else "line"
    first_line = 1 if path.suffix == ".parquet" else 2  # a CSV's header is line 1
    line_expr = f"rowid + {first_line}"
    bad = con.execute(
        f"SELECT {line_expr}, {event} IS NULL, TRY_CAST({stamp} AS TIMESTAMPTZ) IS NULL, {account} IS NULL, "
        f"CAST({stamp} AS VARCHAR) FROM raw_flat "
        f"WHERE {event} IS NULL OR TRY_CAST({stamp} AS TIMESTAMPTZ) IS NULL OR {account} IS NULL "
        "ORDER BY rowid LIMIT 1"
    ).fetchone()
    if bad:
        number, no_event, bad_stamp, _no_account, stamp_text = bad
        field_name = "event" if no_event else "timestamp" if bad_stamp else "account_id"
        problem = (
            f"'{stamp_text}' is not an ISO 8601 timestamp"
            if bad_stamp and stamp_text
            else "required value is missing"
        )
        raise DataError(path, f"{problem} ({row_label} {number})", line=int(number), field=field_name)
    source = (
        f"SELECT {message or 'NULL'}::VARCHAR AS message_id, {event}::VARCHAR AS event, "
        f"{user or 'NULL'}::VARCHAR AS user_id, timezone('UTC', TRY_CAST({stamp} AS TIMESTAMPTZ)) AS ts, "
        f"{account}::VARCHAR AS account_id, coalesce({props}, '{{}}'::JSON) AS props FROM raw_flat"
    )
    con.execute(_EVENT_SQL.format(source=source))
    con.execute(_EVENT_VIEW.format(label=path.name, first_line=first_line))
    con.execute("DROP TABLE raw_flat")


def find_events_file(root: Path) -> Path | None:
    for name in ("events.jsonl", "events.parquet", "events.csv"):
        candidate = root / name
        if candidate.exists():
            return candidate
    return None


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar = false")  # the CLI shows its own progress; DuckDB's garbles it
    return con


def _read_events(con: duckdb.DuckDBPyConnection, path: Path | None) -> None:
    """Fill ``con`` with the ``events`` view (all timestamps UTC); no check against accounts.csv yet."""
    if path is None:
        con.execute(
            "CREATE TABLE event_rows (message_id VARCHAR, event VARCHAR, user_id VARCHAR, "
            "ts TIMESTAMP, account_id VARCHAR, props JSON)"
        )
        con.execute(_EVENT_VIEW.format(label="events", first_line=1))
    elif path.suffix == ".jsonl":
        _load_jsonl_events(con, path)
    else:
        _load_tabular_events(con, path)


def _check_event_accounts(con: duckdb.DuckDBPyConnection, path: Path | None, account_ids: set[str]) -> None:
    if path is None:
        return
    # The distinct accounts (one pass, 100k rows back) and a set difference in Python cost half of an anti
    # join against the account list; the first offending line is looked up only when there is one.
    seen = {row[0] for row in con.execute("SELECT DISTINCT account_id FROM event_rows").fetchall()}
    strangers = sorted(seen - account_ids)
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
        if (
            path.suffix == ".jsonl"
        ):  # row numbers skip blank lines: find the file line on this error path only
            line = next((n for n, doc in json_lines(path) if _event_account(doc) == unknown[1]), line)
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


def _count_events(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM event_rows").fetchone()
    return int(row[0]) if row else 0


def load_dataset(root: Path | str) -> Dataset:
    """Read a whole data directory. Raises DataError on the first problem; nothing is written anywhere."""
    with paused_gc():
        return _load_dataset(Path(root))


def _load_dataset(root: Path) -> Dataset:
    if not root.is_dir():
        raise DataError(root, "not a directory", hint="pass --data DIR pointing at a data directory")
    catalog = load_catalog(root / "catalog.yaml")
    events_file = find_events_file(root)
    events = _connect()
    # DuckDB reads the events (releasing the GIL) while Python reads accounts and tickets: the two
    # overlap instead of adding up. Errors keep their order: accounts, tickets, then events.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="outreach-events") as pool:
        reading = pool.submit(_read_events, events, events_file)
        try:
            accounts = load_accounts(root / "accounts.csv", catalog)
            account_ids = {account.account_id for account in accounts}
            tickets = load_tickets(root / "tickets.jsonl", account_ids)
        except BaseException:
            events.interrupt()
            wait([reading])
            raise
        reading.result()
    _check_event_accounts(events, events_file, account_ids)
    count = _count_events(events)
    by_account: dict[str, list[Ticket]] = {}
    for ticket in tickets:
        by_account.setdefault(ticket.account_id, []).append(ticket)
    return Dataset(
        root=root,
        accounts=accounts,
        tickets=tickets,
        catalog=catalog,
        events=events,
        events_file=events_file,
        event_count=count,
        tickets_by_account=by_account,
    )
