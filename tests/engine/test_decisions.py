"""The engine's outputs agree: validated Decision models, plain records, and the JSON `explain --json` prints."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
from pydantic import BaseModel

from outreach import bundled
from outreach.engine.data import Dataset, load_dataset
from outreach.engine.decisions import (
    decide,
    decide_records,
    decisions_to_json,
    explain_json,
    explain_rows,
    rules_for,
)
from outreach.engine.friction import Friction, FrictionRecord
from outreach.engine.health import Gate, GateRecord, Health, HealthRecord
from outreach.engine.offers import Offer, OfferRecord
from outreach.engine.triggers.registry import builtin_kinds

DEMO = bundled.DEMO_DATA
DEMO_AS_OF = date(2026, 11, 20)


@pytest.fixture(scope="module")
def demo_dataset() -> Dataset:
    return load_dataset(DEMO)


def test_records_and_models_give_the_same_json(demo_dataset: Dataset) -> None:
    rules = rules_for(demo_dataset)
    from_models = decisions_to_json(decide(demo_dataset, rules, DEMO_AS_OF))
    from_records = explain_rows(demo_dataset, rules, DEMO_AS_OF)
    assert from_records == from_models
    assert {row["cohort"] for row in from_records} == {"ready", "nurture", "not_fit"}


def test_decide_validates_every_record_into_models(demo_dataset: Dataset) -> None:
    rules = rules_for(demo_dataset)
    records = decide_records(demo_dataset, rules, DEMO_AS_OF)
    decisions = decide(demo_dataset, rules, DEMO_AS_OF)
    assert [d.account_id for d in decisions] == [account.account_id for account, _ in records]
    for decision, (_, record) in zip(decisions, records, strict=True):
        assert isinstance(decision.health, Health)
        assert decision.health.model_dump() == record["health"]
        assert [f.id for f in decision.frictions] == [
            f"{f['kind']}:{f['subject']}" if f["subject"] else f["kind"] for f in record["frictions"]
        ]
        assert (decision.offer is None) == (record["offer"] is None)


def test_explain_json_filters_by_cohort(demo_dataset: Dataset) -> None:
    rules = rules_for(demo_dataset)
    everything = json.loads(explain_json(demo_dataset, rules, DEMO_AS_OF))
    nurture = json.loads(explain_json(demo_dataset, rules, DEMO_AS_OF, cohort="nurture"))
    assert nurture == [row for row in everything if row["cohort"] == "nurture"] and nurture


def test_explain_json_prints_one_account_per_line(demo_dataset: Dataset) -> None:
    rules = rules_for(demo_dataset)
    text = explain_json(demo_dataset, rules, DEMO_AS_OF).decode()
    lines = text.splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and text.endswith("\n")
    rows = [json.loads(line.rstrip(",")) for line in lines[1:-1]]
    assert rows == json.loads(text) == explain_rows(demo_dataset, rules, DEMO_AS_OF)
    assert [row["account_id"] for row in rows] == [a.account_id for a in demo_dataset.accounts]


def test_explain_json_of_an_empty_cohort_is_an_empty_array(demo_dataset: Dataset, tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("triggers:\n  disabled: " + json.dumps(sorted(builtin_kinds())) + "\n")
    rules = rules_for(demo_dataset, rules_file)
    assert explain_json(demo_dataset, rules, DEMO_AS_OF, cohort="ready") == b"[]\n"
    assert {row["cohort"] for row in explain_rows(demo_dataset, rules, DEMO_AS_OF)} == {"not_fit"}


def test_concurrent_runs_on_one_dataset_do_not_mix(demo_dataset: Dataset) -> None:
    """The web app re-checks gates from several threads on one loaded dataset; each run has its own tables."""
    rules = rules_for(demo_dataset)
    ids = [a.account_id for a in demo_dataset.accounts]
    subsets = [set(ids[i::4]) for i in range(4)] * 3

    def run(subset: set[str]) -> list[str]:
        return [d.model_dump_json() for d in decide(demo_dataset, rules, DEMO_AS_OF, account_ids=subset)]

    expected = [run(subset) for subset in subsets]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(run, subsets)) == expected


def test_one_session_decides_every_account_and_a_subset_in_turn(demo_dataset: Dataset) -> None:
    """Every account is a view over the accounts, a subset a table of its own: one session switches both ways."""
    from outreach.engine.decisions import _decide
    from outreach.engine.tables import engine_session

    rules = rules_for(demo_dataset)
    some = {a.account_id for a in demo_dataset.accounts[:3]}
    with engine_session(demo_dataset.events) as con:
        for subset in (some, None, some, None):
            _decide(con, demo_dataset, rules, DEMO_AS_OF, {}, None, subset)
            found = con.execute("SELECT count(*) FROM decision").fetchone()
            assert found == (len(some) if subset else len(demo_dataset.accounts),)


@pytest.mark.parametrize(
    ("record", "model"),
    [(HealthRecord, Health), (GateRecord, Gate), (FrictionRecord, Friction), (OfferRecord, Offer)],
)
def test_each_record_has_exactly_its_models_fields(record: type, model: type[BaseModel]) -> None:
    """The engine's plain records and the validated models are declared side by side; keep them in step."""
    assert set(record.__annotations__) == set(model.model_fields)


def test_accounts_past_one_duckdb_row_group_keep_the_files_order(tmp_path: Path) -> None:
    """Past a few DuckDB row groups (122,880 rows each) a table's row order need not follow the file: the engine numbers
    accounts by their line, and ``explain --json`` lists them in accounts.csv's order (a million accounts once
    came out starting at the 122,881st)."""
    count = 300_000
    (tmp_path / "catalog.yaml").write_bytes((DEMO / "catalog.yaml").read_bytes())
    lines = [f"a{count - i},Account {i},starter" for i in range(count)]  # ids descending: no sort passes by luck
    (tmp_path / "accounts.csv").write_text("account_id,name,plan\n" + "\n".join(lines) + "\n")
    dataset = load_dataset(tmp_path)
    payload = explain_json(dataset, rules_for(dataset), DEMO_AS_OF)
    ids = [json.loads(line.rstrip(b",\n"))["account_id"] for line in payload.splitlines()[1:-1]]
    assert ids == [line.split(",")[0] for line in lines]


def test_deciding_in_ranges_of_accounts_gives_the_same_json(
    demo_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``explain --json`` decides the offers of a range of accounts per statement (bounded memory); ranges that
    split the demo's 40 accounts unevenly give the bytes of one range, cohort filter included."""
    from outreach.engine import decisions

    rules = rules_for(demo_dataset)
    whole = explain_json(demo_dataset, rules, DEMO_AS_OF)
    ready = explain_json(demo_dataset, rules, DEMO_AS_OF, cohort="ready")
    monkeypatch.setattr(decisions, "ACCOUNTS_PER_RANGE", 7)
    assert explain_json(demo_dataset, rules, DEMO_AS_OF) == whole
    assert explain_json(demo_dataset, rules, DEMO_AS_OF, cohort="ready") == ready
    assert b'"cohort":"ready"' in ready and ready.count(b"\n") < whole.count(b"\n")
