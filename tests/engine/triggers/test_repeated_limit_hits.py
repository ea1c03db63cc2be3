"""repeated_limit_hits: the same plan limit hit again and again: the plan's cap is in the way of real work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datadir import DataDir
from tests.engine.triggers.helpers import StatementCase, check_statement, signals_of

CASES: list[StatementCase] = [
    (
        "repeated_limit_hits",
        "reports",
        {"limit": "reports", "hits": 3, "window_days": 30, "cap": 50, "max_used": 50},
        30,
        "hit the reports limit 3 times in the last 30 days (cap 50)",
        1.0,
    ),
    (
        "repeated_limit_hits",
        "api_calls",
        {"limit": "api_calls", "hits": 7, "window_days": 30, "cap": 250000},
        30,
        "hit the api calls limit 7 times in the last 30 days (cap 250,000)",
        2.3333,
    ),
    (
        "repeated_limit_hits",
        "storage_gb",
        {"limit": "storage_gb", "hits": 1, "window_days": 30},
        30,
        "hit the storage gb limit once in the last 30 days",
        0.3333,
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_statement_and_strength(case: StatementCase) -> None:
    check_statement(case)


def test_repeated_limit_hits(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    ids = [datadir.event("acme", "Limit Reached", d, limit="reports", used=50, cap=50) for d in (3, 10, 25)]
    datadir.event("acme", "Limit Reached", 45, limit="reports", used=50, cap=50)  # outside 30 days
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "repeated_limit_hits" and signal.motion == "upsell"
    assert signal.figures == {"limit": "reports", "hits": 3, "window_days": 30, "cap": 50, "max_used": 50}
    assert signal.evidence == ids  # newest first


def test_two_limit_hits_is_not_a_pattern(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in (3, 10):
        datadir.event("acme", "Limit Reached", days, limit="reports", used=50, cap=50)
    assert signals_of(datadir, tmp_path) == []
