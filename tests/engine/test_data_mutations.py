"""Property tests of the data contract: mutated inputs are decided or refused in one line, never a traceback;
and the fast DuckDB loader and the Python readers read every accounts.csv and tickets.jsonl alike.

Both are bounded (a few dozen examples each) so they run in CI on every change.

1. The demo data with one thing changed - a value's type, an encoding, a truncation, NaN, a huge number, a
   repeated row or key - run through `outreach explain`: exit 0, or exit 2 with exactly one
   ``Error: FILE:LINE: field 'X': problem`` line. On exit 0 the decisions are the ones the Python readers give
   for the same files (the fast loader declines every form it does not read exactly as they do), and a change
   that means nothing (line endings, blank lines, key order, a byte-order mark) gives the demo's own decisions.
2. Small accounts.csv / tickets.jsonl files built from the forms the two readers could disagree on (padding,
   quotes, signs, exponents, dates, emails, JSON types): either both refuse them, or both give the same tables.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from datetime import date
from functools import cache
from pathlib import Path
from unittest import mock

import duckdb
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from outreach.engine import data
from outreach.engine.catalog import load_catalog
from outreach.engine.data import load_accounts, load_dataset, load_tickets
from outreach.engine.decisions import explain_json, rules_for
from outreach.errors import DataError
from tests.engine.badinput import AS_OF, DEMO, demo_copy, explain

# ------------------------------------------------------------------------------------------------ values
RAW = "\x00raw:"  # a JSON value written as this string becomes the bare token after it (NaN, 1e400, …)
JSON_VALUES = st.sampled_from(
    [
        f"{RAW}NaN", f"{RAW}Infinity", f"{RAW}-Infinity", f"{RAW}nan", f"{RAW}1e400", f"{RAW}-1e400", 1e-300,
        0, -1, -0.0, 1.5, 2**64, 10**30, -(2**63) - 1, "", " ", "50", "-5", "nan", "inf", "1e400", True, False,
        None, [], {}, [1, "a"], {"a": {"b": None}}, "x" * 500, "2026-11-01T10:00:00Z", "2026-13-01T00:00:00Z",
        "2026-11-01", "caf\u00e9", "\u3000", "\ud800", "<script>", "a@b.example", "team",
    ]
)  # fmt: skip
CSV_VALUES = st.sampled_from(
    [
        "", " ", "0", "-1", "+5", "007", "1e400", "1e3", "nan", "inf", "-0", "9223372036854775808", "1.5",
        "2026-02-30", "2026-1-5", "2026-W03-4", "2026-01-15T10:00:00Z", "yes", "maybe", "TRUE", "a@b",
        "dana@x.example", "dana@x.local", "x" * 300, "caf\u00e9", "\u3000padded\u3000", '"quoted, value"',
        'half"quote', "a,b", "\t", "null", "Europe/Berlin", "Mars/Base", "team", "platinum",
        "salesforce-sync;nope", "salesforce-sync ; hubspot-sync", "\U0001f600",
    ]
)  # fmt: skip
YAML_VALUES = st.sampled_from(
    [
        ".nan", ".inf", "-.inf", "1e400", "1.0e+400", "-1", "0", "yes", "no", "~", "null", "[]", "{}", "''",
        "'49'", "99999999999999999999", "1.5", "x", "2026-11-20", "*nowhere", "&anchor 5", "[1, [2]]",
        "{a: 1, a: 2}", "'javascript:x'", "http://", "ftp://example.com", "not an email", "\"\\u0000\"",
    ]
)  # fmt: skip


def json_text(value: object) -> str:
    return re.sub(r'"\\u0000raw:([^"]*)"', r"\1", json.dumps(value))


# ------------------------------------------------------------------------------------------------ mutations
Mutation = tuple[str, Callable[[Path], None]]


def lines_change(name: str, change: Callable[[list[str]], None]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / name
        lines = path.read_text(encoding="utf-8").split("\n")
        change(lines)
        path.write_text("\n".join(lines), encoding="utf-8")

    return mutate


def bytes_change(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        (root / name).write_bytes(change((root / name).read_bytes()))

    return mutate


@cache
def demo_lines(name: str) -> list[str]:
    return (DEMO / name).read_text(encoding="utf-8").split("\n")


@st.composite
def json_line_mutation(draw: st.DrawFn, name: str, keys: tuple[str, ...]) -> Mutation:
    lines = demo_lines(name)
    candidates = [i for i, line in enumerate(lines) if line]
    if name == "events.jsonl":  # the events the triggers read numbers from, as often as any other
        numeric = [i for i in candidates if re.search(r'"(used|cap|rows)":', lines[i])]
        candidates = draw(st.sampled_from([candidates, numeric]))
    index = draw(st.sampled_from(candidates))
    key = draw(st.sampled_from(keys))
    value = draw(JSON_VALUES)

    def change(all_lines: list[str]) -> None:
        doc = json.loads(all_lines[index])
        target, _, leaf = key.rpartition(".")
        holder = doc.setdefault(target, {}) if target else doc
        if isinstance(holder, dict):
            holder[leaf] = value
        all_lines[index] = json_text(doc)

    return f"{name}:{index + 1} {key} = {json_text(value)}", lines_change(name, change)


@st.composite
def csv_cell_mutation(draw: st.DrawFn) -> Mutation:
    lines = demo_lines("accounts.csv")
    row = draw(st.integers(1, len([line for line in lines if line]) - 1))
    column = draw(st.integers(0, lines[0].count(",")))
    value = draw(CSV_VALUES)

    def change(all_lines: list[str]) -> None:
        cells = all_lines[row].split(",")
        cells[column] = value
        all_lines[row] = ",".join(cells)

    return f"accounts.csv:{row + 1} column {column} = {value!r}", lines_change("accounts.csv", change)


@st.composite
def yaml_mutation(draw: st.DrawFn) -> Mutation:
    lines = demo_lines("catalog.yaml")
    scalars = [i for i, line in enumerate(lines) if re.match(r"^\s*[a-z_]+: \S", line)]
    index = draw(st.sampled_from(scalars))
    value = draw(YAML_VALUES)

    def change(all_lines: list[str]) -> None:
        all_lines[index] = re.sub(r"^(\s*[a-z_]+:) .*$", lambda m: f"{m.group(1)} {value}", all_lines[index])

    return f"catalog.yaml:{index + 1} = {value}", lines_change("catalog.yaml", change)


@st.composite
def line_mutation(draw: st.DrawFn) -> Mutation:
    """Repeat, drop or truncate a line of any file (duplicates: rows, ticket ids, YAML keys)."""
    name = draw(st.sampled_from(["accounts.csv", "events.jsonl", "tickets.jsonl", "catalog.yaml"]))
    count = len(demo_lines(name))
    index = draw(st.integers(0, count - 2))
    kind = draw(st.sampled_from(["repeat", "drop", "cut"]))

    def change(all_lines: list[str]) -> None:
        if kind == "repeat":
            all_lines.insert(index, all_lines[index])
        elif kind == "drop":
            del all_lines[index]
        else:
            all_lines[index] = all_lines[index][: len(all_lines[index]) // 2]

    return f"{name}:{index + 1} {kind}", lines_change(name, change)


@st.composite
def byte_mutation(draw: st.DrawFn) -> Mutation:
    """Encodings and damage: another encoding, a stray byte, the file cut short."""
    name = draw(st.sampled_from(["accounts.csv", "events.jsonl", "tickets.jsonl", "catalog.yaml"]))
    size = len((DEMO / name).read_bytes())
    kind = draw(st.sampled_from(["utf-16", "latin-1", "stray byte", "truncate", "nul"]))
    offset = draw(st.integers(0, size - 1))

    def change(content: bytes) -> bytes:
        if kind == "utf-16":
            return content.decode("utf-8").encode("utf-16")
        if kind == "latin-1":
            return content.replace(b"e", b"\xe9", 1)
        if kind == "stray byte":
            return content[:offset] + b"\xff" + content[offset:]
        if kind == "nul":
            return content[:offset] + b"\x00" + content[offset:]
        return content[:offset]

    return f"{name} {kind} at {offset}", bytes_change(name, change)


@st.composite
def rules_mutation(draw: st.DrawFn) -> Mutation:
    key = draw(st.sampled_from(["evidence_cap", "triggers:\n  usage_near_limit:\n    pct", "triggers:\n  seat_pressure:\n    pct"]))
    value = draw(YAML_VALUES)
    text = f"{key}: {value}\n"
    return f"rules.yaml {text!r}", lambda root: (root / "rules.yaml").write_text(text)


# Changes that mean nothing: the demo's own decisions must come out.
NEUTRAL: list[Mutation] = [
    ("CRLF accounts.csv", bytes_change("accounts.csv", lambda b: b.replace(b"\n", b"\r\n"))),
    ("CRLF events.jsonl", bytes_change("events.jsonl", lambda b: b.replace(b"\n", b"\r\n"))),
    ("byte-order mark on accounts.csv", bytes_change("accounts.csv", lambda b: b"\xef\xbb\xbf" + b)),
    ("blank lines in events.jsonl", bytes_change("events.jsonl", lambda b: b.replace(b"}\n{", b"}\n\n  \n{", 50))),
    ("blank lines in tickets.jsonl", bytes_change("tickets.jsonl", lambda b: b.replace(b"}\n{", b"}\n\n{", 9))),
    ("event keys reordered", lines_change("events.jsonl", lambda lines: lines.__setitem__(
        slice(0, 200), [json.dumps(dict(reversed(json.loads(line).items()))) for line in lines[:200]]))),
    ("unknown property and field", lines_change("events.jsonl", lambda lines: lines.__setitem__(
        0, lines[0][:-1] + ', "ip": "10.0.0.1", "properties2": {"x": [1e-3]}}'))),
    ("unknown accounts.csv column", lines_change("accounts.csv", lambda lines: lines.__setitem__(
        slice(None), [line + ",extra" if line else line for line in lines]))),
    ("YAML comments", lines_change("catalog.yaml", lambda lines: lines.insert(4, "  # a comment"))),
]

MUTATIONS = st.one_of(
    json_line_mutation("events.jsonl", ("event", "timestamp", "userId", "messageId", "context.groupId",
                                        "properties", "properties.used", "properties.cap", "properties.rows",
                                        "properties.limit", "properties.metric")),
    json_line_mutation("tickets.jsonl", ("id", "account_id", "created_at", "status", "priority", "tags",
                                         "solved_at", "subject", "organization_id")),
    csv_cell_mutation(),
    yaml_mutation(),
    line_mutation(),
    byte_mutation(),
    rules_mutation(),
)  # fmt: skip


@cache
def demo_decisions() -> bytes:
    dataset = load_dataset(DEMO)
    return explain_json(dataset, rules_for(dataset), date.fromisoformat(AS_OF))


def decisions_by_python_readers(root: Path) -> bytes:
    """The decisions with the fast accounts and tickets loaders switched off: the Python readers fill the
    tables (the reference the fast path must equal)."""
    with (
        mock.patch.object(data, "_accounts_in_duckdb", return_value=False),
        mock.patch.object(data, "_tickets_in_duckdb", return_value=False),
    ):
        dataset = load_dataset(root)
        return explain_json(dataset, rules_for(dataset), date.fromisoformat(AS_OF))


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutation=MUTATIONS)
def test_mutated_data_is_decided_or_refused_in_one_line(mutation: Mutation) -> None:
    description, mutate = mutation
    with tempfile.TemporaryDirectory(prefix="outreach-mutation-") as folder:
        root = demo_copy(Path(folder) / "data")
        mutate(root)
        with mock.patch.object(data, "SMALL_FILE_BYTES", 0):  # the demo is small; read it the large-file way
            outcome = explain(root)  # asserts exit 0, or exit 2 and exactly one error line
        event(f"exit {outcome.exit_code}" + (f": {outcome.error['file']}" if outcome.error else ""))
        read_twice = description.startswith(("accounts.csv", "tickets.jsonl"))  # the files with two readers
        if outcome.exit_code == 0 and read_twice:
            assert outcome.stdout == decisions_by_python_readers(root), description


@settings(max_examples=len(NEUTRAL), suppress_health_check=[HealthCheck.too_slow])
@given(mutation=st.sampled_from(NEUTRAL))
def test_changes_that_mean_nothing_keep_the_demo_decisions(mutation: Mutation) -> None:
    description, mutate = mutation
    with tempfile.TemporaryDirectory(prefix="outreach-mutation-") as folder:
        root = demo_copy(Path(folder) / "data")
        mutate(root)
        outcome = explain(root)
        assert outcome.exit_code == 0 and outcome.stdout == demo_decisions(), (description, outcome.stderr)


# ------------------------------------------------------------------------------------------------ differential
# The fast loader types accounts.csv and tickets.jsonl in DuckDB and leaves any form it might read differently
# to the Python readers. Both must agree: the same rows in account_rows / ticket_rows, or the same refusal.

ACCOUNT_COLUMNS = ["account_id", "name", "plan", "seats_purchased", "mrr", "contract_start", "nps", "cs_veto",
                   "addons", "timezone", "champion_email", "owner_email"]  # fmt: skip
ACCOUNT_CELLS = {
    "account_id": st.sampled_from(["acme", "beta", " acme", "caf\u00e9", "acme\u3000"]),
    "name": st.sampled_from(["Acme", '"Acme, Inc"', " Padded ", "", "x" * 40]),
    "plan": st.sampled_from(["team", "starter", " team ", "platinum", "Team"]),
} | {column: CSV_VALUES for column in ACCOUNT_COLUMNS[3:]}


@st.composite
def accounts_csv(draw: st.DrawFn) -> str:
    columns = draw(st.permutations(ACCOUNT_COLUMNS).map(lambda c: c[: len(ACCOUNT_COLUMNS) - 2]))
    rows = draw(st.lists(st.tuples(*(ACCOUNT_CELLS[c] for c in columns)), min_size=1, max_size=4))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    return end.join([",".join(columns), *(",".join(row) for row in rows)]) + end


TICKET_VALUES = {
    "id": st.sampled_from(["T-1", "T-2", 3, 3.5, "", None]),
    "account_id": st.sampled_from(["acme", "beta", "", None, 7]),
    "created_at": st.sampled_from(["2026-11-01T10:00:00Z", "2026-11-01T10:00:00+02:00", "2026-11-01", "soon",
                                   "2026-11-01T10:00:00.123456Z", 1700000000, None]),
    "status": st.sampled_from(["open", "Solved", "", None, "done", 1, "\uff4fpen", "HOLD", "pend\u0130ng"]),
    "priority": st.sampled_from(["high", "URGENT", None, "p1", "\u212aigh"]),
    "tags": st.sampled_from([["Exports"], "billing, sso", [], None, ["caf\u00e9"], [None], [1], {"a": 1},
                             ["a\\b", 'say "hi"']]),
    "subject": st.sampled_from(["Export", "", None, 5, "caf\u00e9 \u2014", 'a "quoted" \\ back/slash\ttab',
                                "\u2028line"]),
    "solved_at": st.sampled_from([None, "", "2026-11-02T00:00:00Z", "later"]),
}  # fmt: skip


@st.composite
def tickets_jsonl(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        keys = draw(st.lists(st.sampled_from(list(TICKET_VALUES)), unique=True, min_size=3))
        doc = {key: draw(TICKET_VALUES[key]) for key in keys}
        lines.append(json.dumps(doc, ensure_ascii=draw(st.booleans())))  # \u escapes, or the characters
    return "".join(line + "\n" for line in lines)


def python_tables(root: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    catalog = load_catalog(root / "catalog.yaml")
    accounts = load_accounts(root / "accounts.csv", catalog)
    tickets = load_tickets(root / "tickets.jsonl", {a.account_id for a in accounts})
    con = duckdb.connect()
    data._account_rows_from_records(con, accounts)
    data._ticket_rows_from_records(con, tickets)
    return tables(con)


def tables(con: duckdb.DuckDBPyConnection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    return (
        con.execute("SELECT * FROM account_rows ORDER BY ord").fetchall(),
        con.execute("SELECT * FROM ticket_rows ORDER BY seq").fetchall(),
    )


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(accounts=accounts_csv(), tickets=tickets_jsonl())
def test_fast_loader_and_python_readers_agree(accounts: str, tickets: str) -> None:
    with tempfile.TemporaryDirectory(prefix="outreach-differential-") as folder:
        root = Path(folder)
        (root / "catalog.yaml").write_bytes((DEMO / "catalog.yaml").read_bytes())
        (root / "accounts.csv").write_text(accounts, newline="")
        (root / "tickets.jsonl").write_text(tickets)
        try:
            expected = python_tables(root)
        except DataError as refusal:
            try:
                fast_load(root)
            except DataError as error:
                assert str(error) == str(refusal)
            else:
                raise AssertionError(f"the fast loader accepted what the Python readers refuse: {refusal}")
            return
        assert tables(fast_load(root).events) == expected


def fast_load(root: Path) -> data.Dataset:
    """load_dataset with the DuckDB pass on however small the files are."""
    with mock.patch.object(data, "SMALL_FILE_BYTES", 0):
        return load_dataset(root)
