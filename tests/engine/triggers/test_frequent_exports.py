"""frequent_exports: many exports in a short window: the work is happening outside the product."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datadir import DataDir
from tests.engine.triggers.helpers import StatementCase, check_statement, signals_of

CASES: list[StatementCase] = [
    (
        "frequent_exports",
        None,
        {"exports": 9, "window_days": 14, "rows": 870000},
        14,
        "exported data 9 times in the last 14 days (870,000 rows)",
        0.7875,
    ),
    (
        "frequent_exports",
        None,
        {"exports": 8, "window_days": 14},
        14,
        "exported data 8 times in the last 14 days",
        0.7,
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_statement_and_strength(case: StatementCase) -> None:
    check_statement(case)


def test_frequent_exports(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for day in range(8):
        datadir.event("acme", "Export Created", day + 0.5, format="csv", rows=100)
    datadir.event("acme", "Export Created", 20, format="csv", rows=100)  # outside 14 days
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "frequent_exports" and signal.figures == {
        "exports": 8,
        "window_days": 14,
        "rows": 800,
    }


def test_seven_exports_are_not_frequent(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for day in range(7):
        datadir.event("acme", "Export Created", day + 0.5, format="csv", rows=100)
    assert signals_of(datadir, tmp_path) == []
