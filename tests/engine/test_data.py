"""Bad input gets one clear error naming the file, the line or row and the field; good input in every format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pydantic import ValidationError

from outreach import bundled
from outreach.engine import data
from outreach.engine.catalog import load_catalog
from outreach.engine.data import Account, Ticket, load_accounts, load_dataset, load_tickets
from outreach.engine.decisions import decide, rules_for
from outreach.errors import DataError
from tests.datadir import AS_OF, DataDir


@pytest.fixture(autouse=True)
def duckdb_reads_small_files_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The data here is small; these tests check the DuckDB pass that reads large files, so it reads all."""
    from outreach.engine import data

    monkeypatch.setattr(data, "SMALL_FILE_BYTES", 0)


@pytest.fixture
def root(datadir: DataDir, tmp_path: Path) -> Path:
    datadir.account("acme", extra_column="kept").active("acme")
    datadir.account("beta").active("beta")
    datadir.ticket("acme", 3, "Export question", tags="exports, billing")
    return datadir.write(tmp_path / "data")


def error_of(root: Path) -> DataError:
    with pytest.raises(DataError) as caught:
        load_dataset(root)
    return caught.value


def replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_loads_and_keeps_unknown_columns(root: Path) -> None:
    dataset = load_dataset(root)
    assert [a.account_id for a in dataset.accounts] == ["acme", "beta"]
    assert dataset.accounts[0].extra == {"extra_column": "kept"}
    assert dataset.tickets[0].tags == ("exports", "billing")
    assert dataset.event_count > 0


def test_missing_required_column(root: Path) -> None:
    path = root / "accounts.csv"
    path.write_text(path.read_text().replace("plan,", "tier,", 1))
    error = error_of(root)
    assert (error.path.name, error.line, error.field) == ("accounts.csv", 1, "plan")
    assert str(error).startswith(f"{path}:1: field 'plan': required column is missing")


def test_unknown_plan_names_row_and_field(root: Path) -> None:
    path = root / "accounts.csv"
    path.write_text(path.read_text().replace(",team,", ",platinum,", 2))
    error = error_of(root)
    assert (error.line, error.field) == (2, "plan") and "platinum" in str(error)


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("contract_start", "2025-13-01", "is not a date"),
        ("nps", "11", "out of range"),
        ("seats_purchased", "many", "not a whole number"),
        ("cs_veto", "maybe", "true/false"),
        ("timezone", "Mars/Olympus", "IANA"),
        ("mrr", "-5", "negative"),
        ("mrr", "nan", "not a finite number"),
        ("employees_now", "9223372036854775808", "out of range (>= 0, at most 9223372036854775807)"),
    ],
)
def test_bad_account_values(root: Path, column: str, value: str, problem: str) -> None:
    path = root / "accounts.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[2].split(",")
    row[header.index(column)] = value
    replace_line(path, 3, ",".join(row))
    error = error_of(root)
    assert (error.line, error.field) == (3, column) and problem in str(error)


def test_malformed_event_line(root: Path) -> None:
    path = root / "events.jsonl"
    replace_line(path, 4, '{"event": "Signed In", "timestamp": ')
    error = error_of(root)
    assert (error.path.name, error.line) == ("events.jsonl", 4) and "malformed JSON" in str(error)


@pytest.mark.parametrize("stamp", ["yesterday", "infinity"])  # DuckDB reads 'infinity' as a timestamp
def test_event_with_bad_timestamp(root: Path, stamp: str) -> None:
    path = root / "events.jsonl"
    doc = json.loads(path.read_text().splitlines()[1])
    doc["timestamp"] = stamp
    replace_line(path, 2, json.dumps(doc))
    error = error_of(root)
    assert (error.line, error.field) == (2, "timestamp")


def test_event_without_account(root: Path) -> None:
    path = root / "events.jsonl"
    doc = json.loads(path.read_text().splitlines()[2])
    del doc["context"]
    replace_line(path, 3, json.dumps(doc))
    error = error_of(root)
    assert (error.line, error.field) == (3, "context.groupId")


def test_event_for_unknown_account(root: Path) -> None:
    path = root / "events.jsonl"
    doc = json.loads(path.read_text().splitlines()[4])
    doc["context"]["groupId"] = "nobody"
    replace_line(path, 5, json.dumps(doc))
    error = error_of(root)
    assert (error.line, error.field) == (5, "context.groupId") and "nobody" in str(error)


def test_account_id_from_properties(root: Path) -> None:
    path = root / "events.jsonl"
    doc = json.loads(path.read_text().splitlines()[0])
    doc.pop("context")
    doc["properties"]["account_id"] = "beta"
    replace_line(path, 1, json.dumps(doc))
    dataset = load_dataset(root)
    row = dataset.events.execute("SELECT account_id FROM events WHERE line = 1").fetchone()
    assert row == ("beta",)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("status", "lost", "not a ticket status"),
        ("priority", "p1", "not a priority"),
        ("created_at", "Monday", "ISO 8601"),
        ("account_id", "nobody", "not in accounts.csv"),
    ],
)
def test_bad_ticket(root: Path, field: str, value: str, problem: str) -> None:
    path = root / "tickets.jsonl"
    doc = json.loads(path.read_text().splitlines()[0])
    doc[field] = value
    replace_line(path, 1, json.dumps(doc))
    error = error_of(root)
    assert (error.path.name, error.line, error.field) == ("tickets.jsonl", 1, field) and problem in str(error)


def test_catalog_error_names_yaml_line(root: Path) -> None:
    path = root / "catalog.yaml"
    path.write_text(path.read_text().replace("price_monthly: 199", "price_monthly: lots", 1))
    error = error_of(root)
    line = path.read_text().splitlines().index("  price_monthly: lots") + 1
    assert (error.path.name, error.line, error.field) == ("catalog.yaml", line, "plans.1.price_monthly")


def test_catalog_unknown_field_is_rejected(root: Path) -> None:
    path = root / "catalog.yaml"
    path.write_text(path.read_text().replace("  price_monthly: 49", "  price_monthly: 49\n  prise: 3", 1))
    error = error_of(root)
    assert error.field == "plans.0.prise" and "unknown field" in str(error)


def test_rules_file_error_names_line(root: Path) -> None:
    (root / "rules.yaml").write_text("triggers:\n  frequent_exports:\n    min_exports: -1\n")
    dataset = load_dataset(root)
    with pytest.raises(DataError) as caught:
        rules_for(dataset)
    assert (caught.value.line, caught.value.field) == (3, "triggers.frequent_exports.min_exports")


def test_policy_threshold_override(root: Path) -> None:
    path = root / "catalog.yaml"
    path.write_text(
        path.read_text().replace("thresholds: {}", "thresholds:\n    frequent_exports.min_exports: 2")
    )
    assert rules_for(load_dataset(root)).triggers.frequent_exports.min_exports == 2
    path.write_text(path.read_text().replace("min_exports: 2", "min_exports: -2"))
    with pytest.raises(DataError) as caught:
        rules_for(load_dataset(root))
    line = path.read_text().splitlines().index("    frequent_exports.min_exports: -2") + 1
    assert (caught.value.path, caught.value.line) == (path, line)
    assert caught.value.field == "policy.thresholds.frequent_exports.min_exports"


def _same_decisions(jsonl_root: Path, other_root: Path) -> None:
    first = load_dataset(jsonl_root)
    second = load_dataset(other_root)
    a = [d.to_json() for d in decide(first, rules_for(first), AS_OF)]
    b = [d.to_json() for d in decide(second, rules_for(second), AS_OF)]
    for left, right in zip(a, b, strict=True):
        for signal in left["signals"] + right["signals"]:
            signal.pop("evidence")
    assert a == b


def _with_signals(datadir: DataDir, tmp_path: Path) -> Path:
    datadir.account("acme").active("acme")
    for days in (1, 2, 3):
        datadir.event("acme", "Limit Reached", days, limit="reports", used=50, cap=50)
    return datadir.write(tmp_path / "jsonl")


def test_events_parquet_gives_same_decisions(datadir: DataDir, tmp_path: Path) -> None:
    root = _with_signals(datadir, tmp_path)
    other = tmp_path / "parquet"
    other.mkdir()
    for name in ("accounts.csv", "tickets.jsonl", "catalog.yaml"):
        (other / name).write_bytes((root / name).read_bytes())
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT json_extract_string(j, '$.messageId') AS messageId, j->>'event' AS event, "
        f"j->>'userId' AS userId, j->>'timestamp' AS timestamp, j->'context'->>'groupId' AS groupId, "
        f"CAST(j->'properties' AS VARCHAR) AS properties "
        f"FROM (SELECT CAST(json AS JSON) AS j FROM read_json_objects('{root / 'events.jsonl'}'))) "
        f"TO '{other / 'events.parquet'}' (FORMAT parquet)"
    )
    _same_decisions(root, other)


def test_events_csv_with_property_columns(datadir: DataDir, tmp_path: Path) -> None:
    root = _with_signals(datadir, tmp_path)
    other = tmp_path / "csv"
    other.mkdir()
    for name in ("accounts.csv", "tickets.jsonl", "catalog.yaml"):
        (other / name).write_bytes((root / name).read_bytes())
    lines = ["event,userId,timestamp,account_id,limit,used,cap,feature"]
    for line in (root / "events.jsonl").read_text().splitlines():
        doc = json.loads(line)
        props = doc["properties"]
        lines.append(
            ",".join(
                [
                    doc["event"],
                    doc["userId"],
                    doc["timestamp"],
                    doc["context"]["groupId"],
                    str(props.get("limit", "")),
                    str(props.get("used", "")),
                    str(props.get("cap", "")),
                    str(props.get("feature", "")),
                ]
            )
        )
    (other / "events.csv").write_text("\n".join(lines) + "\n")
    dataset = load_dataset(other)
    [decision] = decide(dataset, rules_for(dataset), AS_OF)
    assert [f.kind for f in decision.frictions] == ["repeated_limit_hits"]
    assert decision.frictions[0].figures["hits"] == 3
    ids = dataset.events.execute("SELECT line, message_id FROM events ORDER BY line LIMIT 2").fetchall()
    assert ids == [(2, "events.csv#2"), (3, "events.csv#3")]  # no messageId column: ids name the file line


def test_events_csv_bad_row(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme")
    root = datadir.write(tmp_path / "d")
    (root / "events.jsonl").unlink()
    (root / "events.csv").write_text(
        "event,userId,timestamp,account_id\nSigned In,u1,2026-11-01T00:00:00Z,acme\n"
        "Signed In,u1,not-a-date,acme\n"
    )
    error = error_of(root)
    assert (error.path.name, error.line, error.field) == ("events.csv", 3, "timestamp")


def test_missing_events_file_is_allowed(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", nps=9)
    root = datadir.write(tmp_path / "d")
    (root / "events.jsonl").unlink()
    dataset = load_dataset(root)
    [decision] = decide(dataset, rules_for(dataset), AS_OF)
    assert [f.kind for f in decision.frictions] == ["strong_nps"]


def test_unknown_account_after_a_blank_line_names_the_file_line(root: Path) -> None:
    path = root / "events.jsonl"
    lines = path.read_text().splitlines()
    doc = json.loads(lines[3])
    doc["context"]["groupId"] = "nobody"
    lines[3] = json.dumps(doc)
    path.write_text("\n".join([lines[0], "", *lines[1:]]) + "\n")  # the bad event is now on line 5
    error = error_of(root)
    assert (error.line, error.field) == (5, "context.groupId") and "nobody" in str(error)


def test_events_without_message_id_get_file_line_ids(root: Path) -> None:
    path = root / "events.jsonl"
    docs = [json.loads(line) for line in path.read_text().splitlines()]
    for doc in docs:
        doc.pop("messageId", None)
    path.write_text("\n".join(json.dumps(doc) for doc in docs) + "\n")
    dataset = load_dataset(root)
    ids = [row[0] for row in dataset.events.execute("SELECT message_id FROM events ORDER BY line").fetchall()]
    assert ids == [f"events.jsonl#{n}" for n in range(1, len(docs) + 1)]


def test_accounts_error_wins_over_an_events_error_read_at_the_same_time(root: Path) -> None:
    """Events are read on a worker thread while accounts.csv is parsed; the first file's error is reported."""
    accounts = root / "accounts.csv"
    accounts.write_text(accounts.read_text().replace(",team,", ",platinum,", 1))
    replace_line(root / "events.jsonl", 2, "{not json")
    error = error_of(root)
    assert (error.path.name, error.line, error.field) == ("accounts.csv", 2, "plan")


def test_ticket_line_that_is_not_utf8_is_a_clean_error(root: Path) -> None:
    path = root / "tickets.jsonl"
    path.write_bytes(path.read_bytes() + b'{"id": "T-9", "subject": "caf\xe9"}\n')
    error = error_of(root)
    assert (error.path.name, error.line) == ("tickets.jsonl", 2) and "malformed JSON" in str(error)


def test_ticket_timestamps_in_every_iso_form_become_utc(datadir: DataDir, tmp_path: Path) -> None:
    """The common form (...Z) takes a shortcut; every other form goes through parse_datetime as before."""
    datadir.account("acme")
    stamps = {
        "2026-07-25T13:19:17Z": datetime(2026, 7, 25, 13, 19, 17, tzinfo=UTC),
        "2026-07-25T15:19:17+02:00": datetime(2026, 7, 25, 13, 19, 17, tzinfo=UTC),
        "2026-07-25T13:19:17.250Z": datetime(2026, 7, 25, 13, 19, 17, 250000, tzinfo=UTC),
        "2026-07-25T08:49:17.5-04:30": datetime(2026, 7, 25, 13, 19, 17, 500000, tzinfo=UTC),
        "2026-07-25T13:19:17": datetime(2026, 7, 25, 13, 19, 17, tzinfo=UTC),  # no offset: UTC
        " 2026-07-25 13:19:17Z ": datetime(2026, 7, 25, 13, 19, 17, tzinfo=UTC),
        "2026-07-25": datetime(2026, 7, 25, tzinfo=UTC),  # a date alone is midnight UTC
    }
    for stamp in stamps:
        datadir.ticket("acme", 1, "Question", created_at=stamp, solved_at=stamp)
    root = datadir.write(tmp_path / "d")
    tickets = load_tickets(root / "tickets.jsonl", {"acme"})
    assert [t.created_at for t in tickets] == list(stamps.values())
    assert [t.solved_at for t in tickets] == list(stamps.values())
    assert all(t.created_at.tzinfo is UTC and t.solved_at and t.solved_at.tzinfo is UTC for t in tickets)


@pytest.mark.parametrize(
    "stamp", ["2026-07-25Z13:19:17Z", "2026-07-25T13:19:1Z", "2026-13-25T13:19:17Z", "Monday"]
)
def test_bad_ticket_timestamp_that_looks_like_the_common_form(root: Path, stamp: str) -> None:
    path = root / "tickets.jsonl"
    doc = json.loads(path.read_text().splitlines()[0])
    doc["solved_at"] = stamp
    replace_line(path, 1, json.dumps(doc))
    error = error_of(root)
    assert (error.path.name, error.line, error.field) == ("tickets.jsonl", 1, "solved_at")
    assert str(error).endswith(f"'{stamp}' is not an ISO 8601 timestamp (e.g. 2026-11-01T10:00:00Z)")


def test_timestamp_past_the_last_utc_instant_is_a_clean_error(root: Path) -> None:
    path = root / "tickets.jsonl"
    doc = json.loads(path.read_text().splitlines()[0])
    doc["created_at"] = "9999-12-31T23:59:59-05:00"
    replace_line(path, 1, json.dumps(doc))
    error = error_of(root)
    assert (error.path.name, error.line, error.field) == ("tickets.jsonl", 1, "created_at")
    assert "out of range" in str(error)


def test_loaded_records_equal_validated_models(root: Path) -> None:
    """Records are built without re-validating every field; they must match what validation would give."""
    catalog = load_catalog(root / "catalog.yaml")
    accounts = load_accounts(root / "accounts.csv", catalog)
    tickets = load_tickets(root / "tickets.jsonl", {a.account_id for a in accounts})
    for record in [*accounts, *tickets]:
        validated = type(record).model_validate(record.model_dump())
        assert record == validated and record.model_dump() == validated.model_dump()
        assert list(record.__dict__) == list(type(record).model_fields)
        assert record.__pydantic_extra__ is None and record.__pydantic_private__ is None
        with pytest.raises(ValidationError):
            record.__setattr__("extra", {})  # frozen
    acme = accounts[0]
    assert acme.model_fields_set == {name for name, value in acme.model_dump().items() if value} | {
        "cs_veto",
        "extra",
    }
    assert acme.cs_veto is False and acme.addons == () and acme.last_contacted_at is None
    assert tickets[0].model_fields_set == set(Ticket.model_fields)
    # records may share one fields-set object; copying one with an update must not touch the others
    copy = acme.model_copy(update={"nps": 3})
    assert "nps" in copy.model_fields_set and accounts[1].model_fields_set == acme.model_fields_set


def test_accounts_csv_blank_lines_short_rows_and_repeated_columns(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(
        "account_id,name,plan,note,nps,note\n"
        "\n"
        "acme,Acme,team,first,7,second\n"
        "beta,Beta,team\n"
        "\n"
        "gamma,Gamma,team,,,,\n"
    )
    catalog = load_catalog(bundled.DEMO_DATA / "catalog.yaml")
    with pytest.raises(DataError) as caught:
        load_accounts(path, catalog)
    assert caught.value.line == 6 and "more values than the header" in str(caught.value)
    path.write_text(path.read_text().replace("gamma,Gamma,team,,,,", "gamma,Gamma,team,, 9 "))
    acme, beta, gamma = load_accounts(path, catalog)
    assert (acme.extra, acme.nps) == ({"note": "second"}, 7)  # a repeated column keeps its last value
    assert (beta.extra, beta.nps, beta.currency) == ({}, None, "USD")
    assert (gamma.extra, gamma.nps) == ({}, 9)


# ------------------------------------------------------------------------------ account and ticket tables
# DuckDB fills account_rows / ticket_rows straight from the files when every value is in a form it reads
# exactly as the Python readers do; anything else goes through load_accounts / load_tickets. Both ways must
# give the same rows, and the records (built lazily) must be the Python readers' own.

DEMO = bundled.DEMO_DATA


def tables_of(con: duckdb.DuckDBPyConnection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    return (
        con.execute("SELECT * FROM account_rows ORDER BY ord").fetchall(),
        con.execute("SELECT * FROM ticket_rows ORDER BY seq").fetchall(),
    )


def python_tables(root: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The tables as the Python readers' records fill them (the path taken when the fast one declines)."""
    from outreach.engine.data import _account_rows_from_records, _ticket_rows_from_records

    catalog = load_catalog(root / "catalog.yaml")
    accounts = load_accounts(root / "accounts.csv", catalog)
    tickets = load_tickets(root / "tickets.jsonl", {a.account_id for a in accounts})
    con = duckdb.connect()
    _account_rows_from_records(con, accounts)
    _ticket_rows_from_records(con, tickets)
    return tables_of(con)


def record_dumps(records: list[Account] | list[Ticket]) -> list[tuple[str, list[str]]]:
    return [(repr(r.model_dump()), sorted(r.model_fields_set)) for r in records]


def test_demo_tables_come_straight_from_duckdb_and_equal_the_python_readers() -> None:
    dataset = load_dataset(DEMO)
    assert dataset._accounts is None and dataset._tickets is None  # nothing built yet: the fast path ran
    assert tables_of(dataset.events) == python_tables(DEMO)
    catalog = load_catalog(DEMO / "catalog.yaml")
    accounts = load_accounts(DEMO / "accounts.csv", catalog)
    assert record_dumps(dataset.accounts) == record_dumps(accounts)
    tickets = load_tickets(DEMO / "tickets.jsonl", {a.account_id for a in accounts})
    assert record_dumps(dataset.tickets) == record_dumps(tickets)
    first = tickets[0].account_id
    assert dataset.tickets_by_account[first] == [t for t in tickets if t.account_id == first]


ACCOUNT_FORMS = {
    # header, then one row per form; each kept by the fast path unless it says "python"
    "plain": "acme,Acme,team,2026-01-15,12,450.5,7,true,advanced-analytics;,Europe/Berlin",
    "padded values": "beta,  Beta Co\u3000, team , 2026-01-15,12 ,450,7,FALSE, advanced-analytics ; hubspot-sync,UTC",
    "short row": "gamma,Gamma,team",
    "empty optional values": "delta,Delta,team,,,,,,,",
    "crlf line end": "epsilon,Epsilon,team,2026-01-15,12,450,7,t,,UTC\r",
}
ACCOUNT_HEADER = "account_id,name,plan,contract_start,seats_purchased,mrr,nps,cs_veto,addons,timezone"
PYTHON_ACCOUNT_FORMS = {
    "quoted": 'acme,"Acme, Inc",team,2026-01-15,12,450,7,true,,UTC',
    "lone carriage return": "acme,Acme,team,2026-01-15,12,450,7,true,,UTC\rbeta,Beta,team",
    "plus sign": "acme,Acme,team,2026-01-15,+12,450,7,true,,UTC",
    "exponent": "acme,Acme,team,2026-01-15,12,4.5e2,7,true,,UTC",
    "week date": "acme,Acme,team,2026-W03-4,12,450,7,true,,UTC",
    "datetime": "acme,Acme,team,2026-01-15T10:00:00Z,12,450,7,true,,UTC",
}


def write_data(root: Path, accounts: str, tickets: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "catalog.yaml").write_text((DEMO / "catalog.yaml").read_text())
    (root / "accounts.csv").write_text(accounts, newline="")
    (root / "tickets.jsonl").write_text("".join(line + "\n" for line in tickets))
    return root


def test_account_forms_read_alike_either_way(tmp_path: Path) -> None:
    text = ACCOUNT_HEADER + "\n" + "\n".join(ACCOUNT_FORMS.values()) + "\n\n"
    root = write_data(tmp_path / "fast", text, [])
    dataset = load_dataset(root)
    assert dataset._accounts is None
    assert tables_of(dataset.events) == python_tables(root)
    beta = dataset.accounts[1]
    assert (beta.name, beta.plan, beta.seats_purchased, beta.cs_veto, beta.addons) == (
        "Beta Co", "team", 12, False, ("advanced-analytics", "hubspot-sync")
    )  # fmt: skip
    for name, row in PYTHON_ACCOUNT_FORMS.items():
        root = write_data(tmp_path / name.replace(" ", "-"), ACCOUNT_HEADER + "\n" + row + "\n", [])
        dataset = load_dataset(root)
        assert dataset._accounts is not None, name  # the Python reader read it
        assert tables_of(dataset.events) == python_tables(root), name


TICKET = {"id": "T-1", "account_id": "acme", "created_at": "2026-11-01T10:00:00Z", "subject": "Exports", "tags": ["Exports"]}  # fmt: skip


def ticket_line(**changes: object) -> str:
    doc = {**TICKET, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...})


def test_ticket_forms_read_alike_either_way(tmp_path: Path) -> None:
    accounts = ACCOUNT_HEADER + "\nacme,Acme,team\nbeta,Beta,team\n"
    fast = [
        ticket_line(),
        ticket_line(id=42, created_at="2026-11-01T12:00:00+02:00", status="Pending", priority="HIGH"),
        ticket_line(id="T-3", account_id=..., organization_id="beta", tags=None, subject=None),
        ticket_line(id="T-4", account_id="", organization_id="beta", tags=[], solved_at="2026-11-02T08:30:00.25Z"),
        ticket_line(
            id="T-5", description="caf\u00e9 \u2014 SSO", extra={"kept": [1, 2]}, created_at="2026-11-01T10:00:00"
        ),
        "",
        ticket_line(id="T-7", status="", priority=None, solved_at=""),
    ]
    root = write_data(tmp_path / "fast", accounts, fast)
    dataset = load_dataset(root)
    assert dataset._tickets is None
    assert tables_of(dataset.events) == python_tables(root)
    python = {
        "tags as text": ticket_line(tags="exports, billing"),
        "non-ASCII tag": ticket_line(tags=["Facturación"]),
        "null tag": ticket_line(tags=["a", None]),  # Python keeps it as "none"
        "numeric subject": ticket_line(subject=7),
        "false status": ticket_line(status=False),
        "float id": ticket_line(id=1.5),
        "offset with seconds": ticket_line(created_at="2026-11-01T10:00:00+02:00:30"),
        "date only": ticket_line(created_at="2026-11-01"),
        "repeated key": ticket_line()[:-1] + ', "id": "T-2"}',
    }
    for name, line in python.items():
        root = write_data(tmp_path / name.replace(" ", "-"), accounts, [ticket_line(id="T-0"), line])
        dataset = load_dataset(root)
        assert dataset._tickets is not None, name  # the Python reader read it
        assert tables_of(dataset.events) == python_tables(root), name


def test_ticket_text_pass_leaves_values_that_may_not_be_text_to_the_typed_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first DuckDB pass reads every field as text; a value that could have been a number, a boolean, an
    array or an object (``"0"``, ``"true"``, ``"[x]"``) sends the file to the JSON-typed pass, which reads the
    same rows as the records do."""
    accounts = ACCOUNT_HEADER + "\nacme,Acme,team\n7,Seven,team\n"
    passes: list[str] = []
    for name in ("_text_tickets", "_typed_tickets"):
        original = getattr(data, name)

        def spy(*args: object, _original: Any = original, _name: str = name) -> bool:
            passes.append(_name)
            return bool(_original(*args))

        monkeypatch.setattr(data, name, spy)
    cases = {
        "usual": ([ticket_line(), ticket_line(id="T-2", subject="2 exports failed", description="[EU] region")],
                  ["_text_tickets"]),
        "integer id and account": ([ticket_line(id=42, account_id=7)], ["_text_tickets"]),
        "numeric text subject": ([ticket_line(subject="1234")], ["_text_tickets", "_typed_tickets"]),
        "zero id": ([ticket_line(id=0)], ["_text_tickets", "_typed_tickets"]),
        "boolean text": ([ticket_line(description="true")], ["_text_tickets", "_typed_tickets"]),
        "array text": ([ticket_line(subject="[x]")], ["_text_tickets", "_typed_tickets"]),
        "escaped tag": ([ticket_line(tags=['say "hi"'])], ["_text_tickets", "_typed_tickets"]),
    }  # fmt: skip
    for name, (lines, expected) in cases.items():
        passes.clear()
        root = write_data(tmp_path / name.replace(" ", "-"), accounts, lines)
        dataset = load_dataset(root)
        assert (passes, dataset._tickets) == (expected, None), name
        assert tables_of(dataset.events) == python_tables(root), name


@pytest.mark.parametrize("chunk", [1 << 24, 40])
def test_ticket_number_scan_sends_only_lines_with_long_numbers_to_the_strict_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """A number that may be beyond a double hides from DuckDB's reader in a field it does not read; a line
    that has one (or text that looks like one) is parsed by orjson, which decides. The check reads whole lines a
    chunk at a time: a chunk smaller than a line gives the same answers."""
    monkeypatch.setattr(data, "_LINE_CHECK_CHUNK", chunk)
    accounts = ACCOUNT_HEADER + "\nacme,Acme,team\n"
    text = ticket_line(note="quoted 1e400 and 1E+999 are text")[:-1] + ', "n": 1e-400}'
    root = write_data(tmp_path / "text", accounts, [text, ticket_line(id="T-2")])
    assert load_dataset(root)._tickets is None  # still the DuckDB pass
    for number in ("2E+308", "1e0400", "1" + "0" * 250 + "e99"):
        line = ticket_line(id="T-2")[:-1] + f', "n": {number}}}'
        root = write_data(tmp_path / number[:6], accounts, [ticket_line(), line])
        error = error_of(root)
        assert (error.path.name, error.line) == ("tickets.jsonl", 2) and "malformed JSON" in str(error), number
    root = write_data(tmp_path / "nan", accounts, [ticket_line(), ticket_line(id="T-2")[:-1] + ', "n": NaN}'])
    error = error_of(root)
    assert (error.path.name, error.line) == ("tickets.jsonl", 2) and "NaN is not a JSON number" in str(error)


@pytest.mark.parametrize(
    "extra",
    ['"x": NaN', '"x": Infinity', '"x": 1e400', '"x": [1,]'],
)
def test_ticket_json_only_duckdb_would_accept_is_still_an_error(root: Path, extra: str) -> None:
    """DuckDB's JSON reader is more lenient than the JSON standard; the records' reader decides."""
    path = root / "tickets.jsonl"
    path.write_text(path.read_text().rstrip("\n")[:-1] + ", " + extra + "}\n")
    error = error_of(root)
    assert (error.path.name, error.line) == ("tickets.jsonl", 1) and "malformed JSON" in str(error)


def test_accounts_csv_field_over_the_csv_limit_is_a_clean_error(root: Path) -> None:
    path = root / "accounts.csv"
    path.write_text(path.read_text() + "gamma,Gamma,team\n" + "delta," + "x" * 140_000 + ",team\n")
    error = error_of(root)
    assert (error.path.name, error.line) == ("accounts.csv", 5) and "field larger than field limit" in str(
        error
    )


def test_accounts_csv_that_is_not_utf8_is_a_clean_error(root: Path) -> None:
    path = root / "accounts.csv"
    path.write_bytes(path.read_bytes() + b"caf\xe9,Caf\xe9,team\n")
    error = error_of(root)
    assert (error.path.name, error.line) == ("accounts.csv", 4) and "not UTF-8" in str(error)


def test_event_context_that_is_not_an_object_falls_back_to_properties(root: Path) -> None:
    path = root / "events.jsonl"
    doc = json.loads(path.read_text().splitlines()[0])
    doc["context"] = "web"
    doc["properties"]["account_id"] = "beta"
    replace_line(path, 1, json.dumps(doc))
    dataset = load_dataset(root)
    assert dataset.events.execute("SELECT account_id FROM events WHERE line = 1").fetchone() == ("beta",)


def test_stripped_characters_are_pythons_whitespace() -> None:
    import sys

    from outreach.engine.data import STRIPPED

    assert "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()) == STRIPPED


def test_a_data_directory_whose_path_looks_like_a_glob_is_read_as_is(root: Path, tmp_path: Path) -> None:
    """DuckDB's readers expand *?[]; data[1]/ must not read data1/ beside it."""
    import shutil

    globbed = tmp_path / "data[1]"
    shutil.copytree(root, globbed)
    decoy = tmp_path / "data1"
    shutil.copytree(root, decoy)
    (decoy / "accounts.csv").write_text("account_id,name,plan\nother,Other,team\n")
    dataset = load_dataset(globbed)
    assert dataset._accounts is None  # DuckDB read accounts.csv itself
    assert [a.account_id for a in dataset.accounts] == ["acme", "beta"]
    assert dataset.events.execute("SELECT count(DISTINCT account_id) FROM account_rows").fetchone() == (2,)
    assert dataset.event_count == load_dataset(root).event_count > 0


def test_event_numbers_are_checked_under_the_products_own_event_names(root: Path) -> None:
    """rules.yaml maps limit_reached to "Quota Hit": its numbers are checked, "Limit Reached" is any event."""
    path = root / "events.jsonl"
    lines = path.read_text().splitlines()
    quota = json.loads(lines[0]) | {"event": "Quota Hit", "properties": {"limit": "reports", "used": -1}}
    other = json.loads(lines[1]) | {"event": "Limit Reached", "properties": {"used": "lots"}}
    path.write_text("\n".join([json.dumps(other), *lines[1:], json.dumps(quota)]) + "\n")
    dataset = load_dataset(root)
    with pytest.raises(DataError) as caught:
        decide(dataset, rules_for(dataset), AS_OF)  # the default names: "Limit Reached" is read, "lots" is not a number
    assert (caught.value.line, caught.value.field) == (1, "properties.used") and "'lots'" in str(caught.value)
    (root / "rules.yaml").write_text("events:\n  limit_reached: Quota Hit\n")
    with pytest.raises(DataError) as caught:
        decide(dataset, rules_for(dataset), AS_OF)
    assert (caught.value.line, caught.value.field) == (len(lines) + 1, "properties.used")
    assert "-1 must not be negative ('used' of a 'Quota Hit' event)" in str(caught.value)


def test_records_built_later_come_from_the_file_as_loaded(root: Path) -> None:
    """Records are read again on first use; a file changed since the load is an error, not other records."""
    dataset = load_dataset(root)
    assert dataset._accounts is None  # the DuckDB pass read it; no records, no bytes kept
    path = root / "accounts.csv"
    path.write_text(path.read_text() + "gamma,Gamma,team\n")
    with pytest.raises(DataError, match="changed since outreach loaded it"):
        _ = dataset.accounts
    assert [a.account_id for a in load_dataset(root).accounts] == ["acme", "beta", "gamma"]


def test_a_data_set_smaller_than_a_row_group_is_decided_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB cannot split less than a row group between threads; waking a second one only costs (start-up)."""
    from outreach.engine import data

    def threads(dataset: data.Dataset) -> int:
        row = dataset.events.execute("SELECT current_setting('threads')").fetchone()
        assert row is not None
        return int(row[0])

    default = threads(data.Dataset(root=DEMO, catalog=load_catalog(DEMO / "catalog.yaml"),
                                   events=duckdb.connect(), events_file=None, event_count=0, accounts=[], tickets=[]))
    assert threads(load_dataset(DEMO)) == 1
    monkeypatch.setattr(data, "ROW_GROUP_ROWS", 50)  # the demo has more events and tickets than that
    assert threads(load_dataset(DEMO)) == default
