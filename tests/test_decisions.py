"""The engine's two outputs agree: validated Decision models and the plain records `explain --json` prints."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from pydantic import BaseModel

from outreach.data import Dataset, load_dataset
from outreach.decisions import (
    decide,
    decide_records,
    decisions_to_json,
    explain_json,
    explain_rows,
    rules_for,
)
from outreach.friction import Friction, FrictionRecord
from outreach.health import Gate, GateRecord, Health, HealthRecord
from outreach.offers import Offer, OfferRecord

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
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


@pytest.mark.parametrize(
    ("record", "model"),
    [(HealthRecord, Health), (GateRecord, Gate), (FrictionRecord, Friction), (OfferRecord, Offer)],
)
def test_each_record_has_exactly_its_models_fields(record: type, model: type[BaseModel]) -> None:
    """The engine's plain records and the validated models are declared side by side; keep them in step."""
    assert set(record.__annotations__) == set(model.model_fields)
