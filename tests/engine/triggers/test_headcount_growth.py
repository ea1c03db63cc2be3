"""headcount_growth: the company grew well past its size at contract: more people will need seats and shared
work.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datadir import DataDir
from tests.engine.triggers.helpers import StatementCase, check_statement, signals_of

CASES: list[StatementCase] = [
    (
        "headcount_growth",
        "employees",
        {"employees_at_contract": 40, "employees_now": 52, "growth_pct": 30},
        None,
        "grew from 40 to 52 employees since the contract started (+30%)",
        0.6,
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_statement_and_strength(case: StatementCase) -> None:
    check_statement(case)


def test_headcount_growth(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", employees_at_contract=80, employees_now=100).active("acme")
    datadir.account("beta", employees_at_contract=80, employees_now=99).active("beta")
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "headcount_growth" and signal.figures["growth_pct"] == 25
    assert signals_of(datadir, tmp_path / "b", "beta") == []
