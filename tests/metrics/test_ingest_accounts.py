"""Outcomes for accounts that are not in accounts.csv are refused at ingest, with the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from outreach.errors import DataError
from outreach.metrics.ingest import parse_events
from tests.helpers import make_data_dir


def test_an_unknown_account_stops_the_file_at_its_line(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "data")
    lines = [
        {"kind": "upgrade", "account_id": "a1", "mrr_delta": 100, "occurred_at": "2026-09-01", "offer_id": "business"},
        {"kind": "seat_add", "account_id": "a1-typo", "mrr_delta": 60, "occurred_at": "2026-09-02"},
    ]
    path = tmp_path / "outcomes.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert len(parse_events(path)) == 2  # without a data directory nothing can be checked here (the report lists them)
    with pytest.raises(DataError) as error:
        parse_events(path, accounts_dir=data)
    assert ":2:" in str(error.value) and "account_id" in str(error.value) and "a1-typo" in str(error.value)
    assert error.value.exit_code == 2
    currency = tmp_path / "eur.jsonl"
    currency.write_text(json.dumps({**lines[0], "currency": "EUR"}) + "\n")
    assert parse_events(currency, accounts_dir=data)[0].currency == "EUR"  # type: ignore[union-attr]
