"""Every bad input the data contract rules out, run through `outreach explain`: exit 2 and one line
``Error: FILE:LINE: field 'X': problem`` naming where it is, never a traceback (docs/data-formats.md, "Errors").

Each case changes one thing in a copy of the demo data; the expected line is (file, line, field, a phrase of
the problem). Lines are found by content, so the demo can change without these tests.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tests.engine.badinput import demo_copy, explain

Mutate = Callable[[Path], None]


def text_sub(name: str, old: str, new: str) -> Mutate:
    def mutate(root: Path) -> None:
        path = root / name
        text = path.read_text()
        assert old in text, (name, old)
        path.write_text(text.replace(old, new, 1))

    return mutate


def line_of(root: Path, name: str, needle: str) -> int:
    """The 1-based line of ``name`` that first contains ``needle``."""
    for number, line in enumerate((root / name).read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} is not in {name}")


def replace_line(root: Path, name: str, number: int, change: Callable[[str], str]) -> None:
    path = root / name
    lines = path.read_text().split("\n")
    lines[number - 1] = change(lines[number - 1])
    path.write_text("\n".join(lines))


def account_cell(column: str, value: str, row: int = 2) -> Mutate:
    def mutate(root: Path) -> None:
        header = (root / "accounts.csv").read_text().split("\n", 1)[0].split(",")

        def change(line: str) -> str:
            cells = line.split(",")
            cells[header.index(column)] = value
            return ",".join(cells)

        replace_line(root, "accounts.csv", row, change)

    return mutate


def first_event(event: str, change: Callable[[str], str]) -> Mutate:
    """Change the raw text of the first event named ``event``."""

    def mutate(root: Path) -> None:
        replace_line(root, "events.jsonl", line_of(root, "events.jsonl", f'"event":"{event}"'), change)

    return mutate


def event_doc(number: int, **changes: object) -> Mutate:
    def change(line: str) -> str:
        doc = json.loads(line)
        for key, value in changes.items():
            if value is ...:
                doc.pop(key)
            else:
                doc[key] = value
        return json.dumps(doc)

    return lambda root: replace_line(root, "events.jsonl", number, change)


def ticket_doc(number: int, **changes: object) -> Mutate:
    def change(line: str) -> str:
        return json.dumps({**json.loads(line), **changes})

    return lambda root: replace_line(root, "tickets.jsonl", number, change)


def yaml_value(key: str, value: str) -> Mutate:
    """Set the catalog's first ``key:`` to ``value`` (YAML text)."""

    def mutate(root: Path) -> None:
        path = root / "catalog.yaml"
        path.write_text(re.sub(rf"(?m)^(\s*{key}:) .*$", rf"\1 {value}", path.read_text(), count=1))

    return mutate


def write(name: str, data: str | bytes) -> Mutate:
    def mutate(root: Path) -> None:
        path = root / name
        if path.is_dir():
            path.rmdir()
        path.write_bytes(data if isinstance(data, bytes) else data.encode())

    return mutate


def directory_instead(name: str) -> Mutate:
    def mutate(root: Path) -> None:
        (root / name).unlink()
        (root / name).mkdir()

    return mutate


def dangling_link(name: str) -> Mutate:
    def mutate(root: Path) -> None:
        (root / name).unlink()
        (root / name).symlink_to(root / "gone" / name)

    return mutate


def events_as(kind: str, sql: str = "SELECT * FROM events") -> Mutate:
    """Replace events.jsonl by a flat events.parquet or events.csv written from it (``sql`` over ``events``)."""

    def mutate(root: Path) -> None:
        source = root / "events.jsonl"
        con = duckdb.connect()
        con.execute(
            "CREATE TABLE events AS SELECT event, userId, timestamp, context.groupId AS groupId, messageId, "
            "properties::VARCHAR AS properties, row_number() OVER () AS row FROM read_json(?, columns={"
            "'event': 'VARCHAR', 'userId': 'VARCHAR', 'timestamp': 'VARCHAR', "
            "'context': 'STRUCT(groupId VARCHAR)', 'messageId': 'VARCHAR', 'properties': 'JSON'})",
            [str(source)],
        )
        target = root / f"events.{kind}"
        options = "(FORMAT parquet)" if kind == "parquet" else "(HEADER)"
        con.execute(f"COPY ({sql}) TO '{target}' {options}")
        source.unlink()

    return mutate


def truncate(name: str, keep: float) -> Mutate:
    def mutate(root: Path) -> None:
        data = (root / name).read_bytes()
        (root / name).write_bytes(data[: int(len(data) * keep)])

    return mutate


def then(*steps: Mutate) -> Mutate:
    def mutate(root: Path) -> None:
        for step in steps:
            step(root)

    return mutate


LIMIT = "Limit Reached"
# (case id, the change, file, line (or a function of the changed data dir giving it; None = file level),
#  field, a phrase of the problem)
Line = int | None | Callable[[Path], int]
CASES: list[tuple[str, Mutate, str, Line, str | None, str]] = [
    # files that cannot be read
    ("accounts is a directory", directory_instead("accounts.csv"), "accounts.csv", None, None, "is a directory"),
    ("events is a directory", directory_instead("events.jsonl"), "events.jsonl", None, None, "is a directory"),
    ("tickets is a directory", directory_instead("tickets.jsonl"), "tickets.jsonl", None, None, "is a directory"),
    ("catalog is a directory", directory_instead("catalog.yaml"), "catalog.yaml", None, None, "is a directory"),
    ("rules is a directory", lambda root: (root / "rules.yaml").mkdir(), "rules.yaml", None, None, "is a directory"),
    ("accounts is a dangling link", dangling_link("accounts.csv"), "accounts.csv", None, None, "file not found"),
    ("events is a dangling link", dangling_link("events.jsonl"), "events.jsonl", None, None, "file not found"),
    ("truncated parquet", then(events_as("parquet"), truncate("events.parquet", 0.5)), "events.parquet", None,
     None, "not a Parquet file"),
    ("empty parquet", then(events_as("parquet"), write("events.parquet", b"")), "events.parquet", None, None,
     "not a Parquet file"),
    # numbers in events
    ("used NaN", first_event(LIMIT, lambda s: re.sub(r'"used":\d+', '"used":NaN', s)), "events.jsonl",
     lambda root: line_of(root, "events.jsonl", '"used":NaN'), "properties.used", "NaN is not a JSON number"),
    ("used Infinity", first_event(LIMIT, lambda s: re.sub(r'"used":\d+', '"used":Infinity', s)), "events.jsonl",
     lambda root: line_of(root, "events.jsonl", "Infinity"), "properties.used", "Infinity is not a JSON number"),
    ("used 1e400", first_event(LIMIT, lambda s: re.sub(r'"used":\d+', '"used":1e400', s)), "events.jsonl",
     lambda root: line_of(root, "events.jsonl", "1e400"), "properties.used", "1e400 is not a JSON number"),
    ("cap -Infinity", first_event(LIMIT, lambda s: re.sub(r'"cap":\d+', '"cap":-Infinity', s)), "events.jsonl",
     lambda root: line_of(root, "events.jsonl", "-Infinity"), "properties.cap", "is not a JSON number"),
    ("used lowercase nan", first_event(LIMIT, lambda s: re.sub(r'"used":\d+', '"used":nan', s)), "events.jsonl",
     lambda root: line_of(root, "events.jsonl", '"used":nan'), None, "malformed JSON"),
    ("NaN in any property", text_sub("events.jsonl", '"properties":{}', '"properties":{"ratio":NaN}'),
     "events.jsonl", 1, "properties.ratio", "NaN is not a JSON number"),
    ("used negative", first_event(LIMIT, lambda s: re.sub(r'"used":\d+', '"used":-5', s)), "events.jsonl",
     lambda root: line_of(root, "events.jsonl", '"used":-5'), "properties.used", "must not be negative"),
    ("cap negative", first_event(LIMIT, lambda s: re.sub(r'"cap":\d+', '"cap":-1', s)), "events.jsonl",
     lambda root: line_of(root, "events.jsonl", '"cap":-1'), "properties.cap", "must not be negative"),
    ("used not a number", first_event(LIMIT, lambda s: re.sub(r'"used":\d+', '"used":"lots"', s)),
     "events.jsonl", lambda root: line_of(root, "events.jsonl", '"lots"'), "properties.used", "'lots' is not a number"),
    ("used true", first_event(LIMIT, lambda s: re.sub(r'"used":\d+', '"used":true', s)), "events.jsonl",
     lambda root: line_of(root, "events.jsonl", '"used":true'), "properties.used", "'true' is not a number"),
    ("usage snapshot negative", first_event("Usage Reported", lambda s: re.sub(r'"used":\d+', '"used":-3', s)),
     "events.jsonl", lambda root: line_of(root, "events.jsonl", '"used":-3'), "properties.used", "negative"),
    ("export rows not whole", first_event("Export Created", lambda s: re.sub(r'"rows":\d+', '"rows":"all"', s)),
     "events.jsonl", lambda root: line_of(root, "events.jsonl", '"rows":"all"'), "properties.rows",
     "not a whole number"),
    # JSON
    ("truncated events", truncate("events.jsonl", 0.5), "events.jsonl",
     lambda root: len((root / "events.jsonl").read_text().splitlines()), None, "malformed JSON"),
    ("events not UTF-8", lambda root: (root / "events.jsonl").write_bytes(
        (root / "events.jsonl").read_bytes().replace(b"Signed In", b"Signed \xff", 1)), "events.jsonl", 1, None,
     "malformed JSON"),
    ("a key twice in an event", lambda root: replace_line(root, "events.jsonl", 3, lambda s: s[:-1] + ',"event":"X"}'),
     "events.jsonl", 3, None, "given twice"),
    ("50 MB JSON line", event_doc(6, properties={"blob": "x" * 50_000_000}), "events.jsonl", 6, None,
     "at most 16 MB"),
    ("event line is an array", lambda root: replace_line(root, "events.jsonl", 2, lambda s: "[1, 2]"),
     "events.jsonl", 2, None, "must be a JSON object"),
    ("properties is an array", event_doc(4, properties=[1]), "events.jsonl", 4, "properties", "JSON object"),
    ("event without account", event_doc(5, context=...), "events.jsonl", 5, "context.groupId", "no account"),
    ("event of an unknown account", event_doc(5, context={"groupId": "nobody"}), "events.jsonl", 5,
     "context.groupId", "not in accounts.csv"),
    ("event with a bad timestamp", event_doc(7, timestamp="2026-02-30T00:00:00Z"), "events.jsonl", 7, "timestamp",
     "not an ISO 8601 timestamp"),
    ("event without a name", event_doc(7, event=...), "events.jsonl", 7, "event", "required value is missing"),
    # flat events
    ("parquet properties not JSON", events_as("parquet", "SELECT * EXCLUDE (row) REPLACE (CASE WHEN row = 9 "
                                                         "THEN '{not json' ELSE properties END AS properties) "
                                                         "FROM events ORDER BY row"),
     "events.parquet", 9, "properties", "JSON object"),
    ("parquet properties NaN", events_as("parquet", "SELECT * EXCLUDE (row) REPLACE (CASE WHEN row = 9 "
                                                    "THEN '{\"used\": NaN}' ELSE properties END AS properties) "
                                                    "FROM events ORDER BY row"),
     "events.parquet", 9, "properties.used", "NaN is not a JSON number"),
    ("parquet without a group column", events_as("parquet", "SELECT * EXCLUDE (row, groupId) FROM events"),
     "events.parquet", 1, "groupId or account_id", "required column is missing"),
    ("csv row with an extra value", then(events_as("csv", "SELECT * EXCLUDE (row, properties) FROM events "
                                                          "ORDER BY row"),
                                         lambda root: replace_line(root, "events.csv", 3, lambda s: s + ",extra")),
     "events.csv", 3, None, "the row has 6 values; the header has 5 columns"),
    ("empty csv", then(events_as("csv"), write("events.csv", "")), "events.csv", None, None, "the file is empty"),
    # accounts.csv
    ("accounts with only a header", lambda root: (root / "accounts.csv").write_text(
        (root / "accounts.csv").read_text().split("\n", 1)[0] + "\n"), "accounts.csv", None, None, "no accounts"),
    ("empty accounts", write("accounts.csv", ""), "accounts.csv", None, None, "the file is empty"),
    ("champion email not an address", account_cell("champion_email", "dana at northwind"), "accounts.csv", 2,
     "champion_email", "is not an email address"),
    ("owner email not an address", account_cell("owner_email", "maya@", 3), "accounts.csv", 3, "owner_email",
     "is not an email address"),
    ("champion email on a reserved domain", account_cell("champion_email", "dana@intranet.local"),
     "accounts.csv", 2, "champion_email", "special-use"),
    ("duplicate account", lambda root: replace_line(
        root, "accounts.csv", 4, lambda s: (root / "accounts.csv").read_text().split("\n")[1]),
     "accounts.csv", 4, "account_id", "duplicate account_id"),
    ("mrr infinite", account_cell("mrr", "inf"), "accounts.csv", 2, "mrr", "not a finite number"),
    ("seats negative", account_cell("seats_purchased", "-3"), "accounts.csv", 2, "seats_purchased", "out of range"),
    ("accounts not UTF-8", lambda root: (root / "accounts.csv").write_bytes(
        (root / "accounts.csv").read_bytes().replace(b"Northwind", b"N\xf6rthwind", 1)), "accounts.csv", 2, None,
     "not UTF-8"),
    # tickets.jsonl
    ("duplicate ticket id", lambda root: replace_line(
        root, "tickets.jsonl", 3, lambda s: json.dumps({**json.loads(s), "id": json.loads(
            (root / "tickets.jsonl").read_text().split("\n")[0])["id"]})),
     "tickets.jsonl", 3, "id", "duplicate ticket id"),
    ("ticket NaN", lambda root: replace_line(root, "tickets.jsonl", 2, lambda s: s[:-1] + ', "score": NaN}'),
     "tickets.jsonl", 2, "score", "NaN is not a JSON number"),
    ("ticket trailing comma", lambda root: replace_line(root, "tickets.jsonl", 2, lambda s: s[:-1] + ",}"),
     "tickets.jsonl", 2, None, "malformed JSON"),
    ("ticket status", ticket_doc(2, status="done"), "tickets.jsonl", 2, "status", "not a ticket status"),
    # catalog.yaml
    ("duplicate key in the catalog", text_sub("catalog.yaml", "price_monthly: 199", "price_monthly: 149\n"
                                                                                    "    price_monthly: 14900"),
     "catalog.yaml", lambda root: line_of(root, "catalog.yaml", "14900"), "plans.1.price_monthly",
     "duplicate key 'price_monthly'"),
    ("duplicate key in a flow mapping", text_sub("catalog.yaml", "seats: 5, reports: 20", "seats: 5, seats: 50"),
     "catalog.yaml", lambda root: line_of(root, "catalog.yaml", "seats: 5, seats: 50"), "plans.0.limits.seats",
     "duplicate key 'seats'"),
    ("upgrade_url not a URL", yaml_value("upgrade_url", "not a url"),
     "catalog.yaml", lambda root: line_of(root, "catalog.yaml", "upgrade_url:"), "company.upgrade_url",
     "is not an http(s) URL"),
    ("unsubscribe_url javascript", yaml_value("unsubscribe_url", "'javascript:alert(1)'"),
     "catalog.yaml", lambda root: line_of(root, "catalog.yaml", "unsubscribe_url:"), "company.unsubscribe_url",
     "scheme should be 'http' or 'https'"),
    ("sender_email not an address", yaml_value("sender_email", "maya"),
     "catalog.yaml", lambda root: line_of(root, "catalog.yaml", "sender_email:"), "company.sender_email",
     "is not an email address"),
    ("price NaN", text_sub("catalog.yaml", "price_monthly: 49", "price_monthly: .nan"), "catalog.yaml",
     lambda root: line_of(root, "catalog.yaml", ".nan"), "plans.0.price_monthly", "not a finite number"),
    ("price as text", text_sub("catalog.yaml", "price_monthly: 49", "price_monthly: '49'"), "catalog.yaml",
     lambda root: line_of(root, "catalog.yaml", "'49'"), "plans.0.price_monthly", "valid number"),
    ("limit beyond 64 bits", text_sub("catalog.yaml", "seats: 5,", "seats: 100000000000000000000,"),
     "catalog.yaml", lambda root: line_of(root, "catalog.yaml", "100000000000000000000"), "plans.0.limits.seats",
     "out of range"),
    ("evidence cap beyond 64 bits", write("rules.yaml", "evidence_cap: 99999999999999999999\n"), "rules.yaml", 1,
     "evidence_cap", "out of range"),
    ("window of a million days", write("rules.yaml", "triggers:\n  frequent_exports: {window_days: 1000000}\n"),
     "rules.yaml", 2, "triggers.frequent_exports.window_days", "more than 3650"),
    ("policy threshold that is no rule", text_sub("catalog.yaml", "thresholds: {}",
                                                  "thresholds: {frequent_exports.min_exportz: 2}"),
     "catalog.yaml", lambda root: line_of(root, "catalog.yaml", "min_exportz"),
     "policy.thresholds.frequent_exports.min_exportz", "not a rule name"),
    ("limit yes", text_sub("catalog.yaml", "seats: 5,", "seats: yes,"), "catalog.yaml",
     lambda root: line_of(root, "catalog.yaml", "seats: yes"), "plans.0.limits.seats", "valid integer"),
    ("bundle names a missing add-on", text_sub("catalog.yaml", "addons: [scheduled-delivery]",
                                               "addons: [scheduled-delivery, teleport]"),
     "catalog.yaml", lambda root: line_of(root, "catalog.yaml", "teleport"), "bundles.0.addons.1",
     "unknown add-on 'teleport'"),
    ("unknown requires_plan", text_sub("catalog.yaml", "requires_plan: business", "requires_plan: gold"),
     "catalog.yaml", lambda root: line_of(root, "catalog.yaml", "requires_plan: gold"), "addons.2.requires_plan",
     "unknown plan 'gold'"),
    ("duplicate plan id", text_sub("catalog.yaml", "id: business", "id: team"), "catalog.yaml",
     lambda root: line_of(root, "catalog.yaml", "id: team") + 5, "plans.2.id", "already used by plans.1"),
    ("catalog not UTF-8", lambda root: (root / "catalog.yaml").write_bytes(
        (root / "catalog.yaml").read_bytes().replace(b"Ledgerly Inc.", b"L\xe9dgerly Inc.")), "catalog.yaml",
     lambda root: (root / "catalog.yaml").read_bytes().split(b"L\xe9dgerly")[0].count(b"\n") + 1, None,
     "not UTF-8"),
    ("catalog is a list", write("catalog.yaml", "- plans\n"), "catalog.yaml", 1, None, "must be a YAML mapping"),
    ("catalog without company", lambda root: (root / "catalog.yaml").write_text(
        (root / "catalog.yaml").read_text().split("company:")[0]), "catalog.yaml", None, "company",
     "required field is missing"),
    # rules.yaml in the data directory
    ("duplicate key in rules", write("rules.yaml", "evidence_cap: 3\nevidence_cap: 4\n"), "rules.yaml", 2,
     "evidence_cap", "duplicate key"),
    ("infinite threshold in rules", write("rules.yaml", "triggers:\n  usage_near_limit:\n    pct: .inf\n"),
     "rules.yaml", 3, "triggers.usage_near_limit.pct", "not a finite number"),
]
CASES += [
    ("csv used nan", events_as("csv", "SELECT event, userId, timestamp, groupId, messageId, "
                                      "properties->>'limit' AS \"limit\", "
                                      "CASE WHEN properties->>'limit' IS NOT NULL THEN 'nan' END AS used "
                                      "FROM events ORDER BY row"),
     "events.csv", lambda root: line_of(root, "events.csv", ",nan"), "properties.used", "'nan' is not a finite number"),
]


@pytest.mark.parametrize(("mutate", "name", "line", "field", "phrase"),
                         [pytest.param(case[1], *case[2:], id=case[0]) for case in CASES])
def test_bad_input_is_exit_2_and_one_line(
    tmp_path: Path, mutate: Mutate, name: str, line: Line, field: str | None, phrase: str
) -> None:
    root = demo_copy(tmp_path / "data")
    mutate(root)
    outcome = explain(root)
    assert outcome.exit_code == 2 and outcome.error is not None
    expected_line = line(root) if callable(line) else line
    found = (outcome.error["file"], outcome.error["line"], outcome.error["field"])
    assert found == (name, None if expected_line is None else str(expected_line), field), outcome.stderr
    assert phrase in outcome.error["problem"], outcome.stderr
    assert "Value error" not in outcome.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file whatever its mode")
def test_unreadable_accounts_file(tmp_path: Path) -> None:
    root = demo_copy(tmp_path / "data")
    (root / "accounts.csv").chmod(0)
    outcome = explain(root)
    assert outcome.error is not None and outcome.error["problem"] == "cannot be read: permission denied"
